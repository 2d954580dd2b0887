"""Events reach serving: a play and completion make the profile's cached recommendations stale at once."""

from __future__ import annotations

import datetime as dt

from django.core.cache import cache

from features.services import content_features_refresh, user_features_refresh
from recommendations.serving.context import UserContext
from recommendations.serving.engine import RecommendationEngine
from tests.events.helpers import event, post
from users.models import Profile, ViewingEvent


def test_a_completed_title_ends_the_cached_recommendations_and_leaves_them(serving_world, api):
    cache.clear()
    profile = Profile.objects.get(pk=ViewingEvent.objects.order_by("-profile_id").values("profile_id")[0]["profile_id"])
    engine = RecommendationEngine(use_cache=True)
    context = UserContext(profile_id=profile.pk)
    content_features_refresh()  # answers without features are degraded, and those are never cached
    user_features_refresh(profile_id_start=profile.pk, profile_id_end=profile.pk + 1)

    first = engine.recommend(context=context, n=20, with_rows=False)
    second = engine.recommend(context=context, n=20, with_rows=False)
    watched = first.items[0].content_id
    started = dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)
    response = post(
        api,
        [
            event(
                "play", profile.pk, content_id=watched, started_at=started.isoformat(), occurred_at=started.isoformat()
            ),
            event("complete", profile.pk, content_id=watched, started_at=started.isoformat()),
        ],
    )
    third = engine.recommend(context=context, n=20, with_rows=False)

    assert response.status_code == 200 and response.json()["accepted"] == 2
    assert (first.cached, second.cached, third.cached) == (False, True, False)
    assert [item.content_id for item in second.items] == [item.content_id for item in first.items]
    assert watched not in [item.content_id for item in third.items]
