"""Issue #16's page defects: old completions, reasons that match the rows, context that changes the page, and
onboarding genres that reach the cold start."""

from __future__ import annotations

import datetime as dt
import uuid

import numpy as np
import pytest

from catalog.models import Genre, Title
from features.services import content_features_refresh
from features.store import FeatureStore
from ranking.ml import postprocess
from recommendations.ml import sources
from recommendations.serving.candidate_inputs import candidates_generate
from recommendations.serving.context import HISTORY_LIMIT, UserContext, profile_state_load
from recommendations.serving.engine import RecommendationEngine
from recommendations.serving.state import serving_state
from tests.conftest import SERVING_NOW
from tests.factories.users import AccountFactory, ProfileFactory
from users.models import DeviceType, Profile, ViewingEvent
from users.services import new_viewers_ensure

PROFILES = 25


@pytest.fixture
def engine(serving_world):
    store = FeatureStore(namespace=f"fs-test-{uuid.uuid4().hex[:12]}")
    content_features_refresh(as_of=SERVING_NOW, store=store)
    return RecommendationEngine(store=store, use_cache=False)


def _viewing(profile: Profile, title_id: int, started: dt.datetime, share: float) -> ViewingEvent:
    return ViewingEvent(
        profile=profile,
        title_id=title_id,
        started_at=started,
        watch_percentage=share,
        watch_seconds=int(share * 3600),
        last_watched_at=started + dt.timedelta(hours=1),
        device_type=DeviceType.TV,
        completed=share >= 0.9,
    )


def _shown(result) -> set[int]:
    return {i.content_id for i in result.items} | {i.content_id for row in result.rows for i in row.items}


def _profiles_with_history(count: int = PROFILES) -> list[int]:
    return list(ViewingEvent.objects.order_by("profile_id").values_list("profile_id", flat=True).distinct()[:count])


def test_a_title_completed_before_the_newest_200_viewings_never_comes_back(engine):
    profile = ProfileFactory(account=AccountFactory(subscription_tier=3, country="US"))
    models = serving_state.models()
    catalog = models.catalog
    allowed = np.flatnonzero(catalog.allowed(tier=3, country="US", maturity_cap=18))
    by_popularity = allowed[np.argsort(-models.popularity[allowed], kind="stable")]
    finished = [int(catalog.content_ids[r]) for r in by_popularity[:5]]  # the most popular: always candidates
    others = [int(catalog.content_ids[r]) for r in by_popularity[-(HISTORY_LIMIT + 20) :]]
    start = SERVING_NOW - dt.timedelta(days=60)
    ViewingEvent.objects.bulk_create(
        [_viewing(profile, t, start + dt.timedelta(hours=i), 0.97) for i, t in enumerate(finished)]
        + [_viewing(profile, t, start + dt.timedelta(days=1, hours=i), 0.95) for i, t in enumerate(others)]
    )
    state = profile_state_load(profile_id=profile.pk)
    assert state.history_truncated and not set(finished) & set(state.history_title_ids.tolist())
    candidates = candidates_generate(state, models, serving_state.trending(models, engine.store), now=SERVING_NOW)
    assert set(finished) <= set(candidates.content_ids.tolist())  # the sources still propose them

    result = engine.recommend(context=UserContext(profile_id=profile.pk), n=100)
    assert not set(finished) & _shown(result)


def test_top_picks_carry_personal_reasons_and_each_row_its_own(engine):
    personal = generic = because_profiles = 0
    for profile_id in _profiles_with_history():
        result = engine.recommend(context=UserContext(profile_id=profile_id), n=20)
        rows = {row.key: row for row in result.rows}
        for item in rows["top_picks"].items:
            if item.reason == postprocess.REASON_TOP_PICK or item.reason.startswith(postprocess.REASON_BECAUSE):
                personal += 1
            elif item.reason in (postprocess.REASON_NEW, postprocess.REASON_TRENDING):
                generic += 1
        for key, reason in (
            (postprocess.TRENDING_NOW, postprocess.REASON_TRENDING),
            (postprocess.NEW_RELEASES, postprocess.REASON_NEW),
        ):
            if key in rows:
                assert {i.reason for i in rows[key].items} <= {reason, postprocess.REASON_CONTINUE}
        for item in result.items:  # a title item similarity proposed names its anchor (histories are within cap)
            if sources.SIMILAR_TO_WATCHED in item.sources and item.reason != postprocess.REASON_CONTINUE:
                assert item.reason.startswith(postprocess.REASON_BECAUSE)
        because_profiles += any(i.reason.startswith(postprocess.REASON_BECAUSE) for i in result.items)
    assert personal > 3 * generic
    assert because_profiles >= PROFILES // 2


def test_reasons_follow_the_source_that_proposed_the_title():
    n = 5
    page = postprocess.PageInput(
        ordered=np.arange(n),
        in_progress=np.array([1, 0, 0, 0, 0], bool),
        new_release=np.array([1, 1, 1, 0, 0], bool),
        trending=np.array([1, 1, 1, 1, 0], bool),
        similar=np.array([0, 1, 0, 0, 0], bool),
        because_rows=np.array([-1, 7, -1, -1, -1]),
        because_names={7: "Seven"},
        genre_slot=np.full(n, -1),
        genre_names=(),
        personal=np.array([1, 1, 1, 0, 0], bool),
    )
    assert postprocess.reasons(page, np.arange(n)) == [
        postprocess.REASON_CONTINUE,
        "Because you watched Seven",
        postprocess.REASON_TOP_PICK,
        postprocess.REASON_TRENDING,
        postprocess.REASON_TOP_PICK,
    ]
    assert postprocess.reasons(page, np.arange(1, 4), postprocess.TRENDING_NOW) == [postprocess.REASON_TRENDING] * 3
    assert postprocess.reasons(page, np.arange(1, 3), postprocess.NEW_RELEASES) == [postprocess.REASON_NEW] * 2


def test_device_and_hour_change_the_page(engine):
    models = serving_state.models()
    overlaps, share_4k = {"device": [], "hour": []}, {"tv": [], "mobile": []}
    for profile_id in _profiles_with_history():

        def top(device: int, hour: int, profile_id: int = profile_id) -> list[int]:
            result = engine.recommend(
                context=UserContext(profile_id=profile_id, device_type=device, time_of_day=hour), n=20, with_rows=False
            )
            return [item.content_id for item in result.items]

        tv, mobile, morning = top(DeviceType.TV, 21), top(DeviceType.MOBILE, 21), top(DeviceType.TV, 8)
        overlaps["device"].append(len(set(tv) & set(mobile)))
        overlaps["hour"].append(len(set(tv) & set(morning)))
        for name, ids in (("tv", tv), ("mobile", mobile)):
            rows, _ = models.catalog.positions(np.array(ids))
            share_4k[name].append(models.catalog.has_4k[rows].mean())
    assert np.mean(overlaps["device"]) < 17 and np.mean(overlaps["hour"]) < 18.5
    assert np.mean(share_4k["tv"]) > np.mean(share_4k["mobile"]) + 0.1


def test_synthetic_profiles_have_onboarding_genres_and_a_new_one_starts_from_them(engine):
    with_genres = Profile.objects.filter(onboarding_genres__isnull=False).distinct().count()
    assert 0.25 < with_genres / Profile.objects.count() < 0.55
    comedy = Genre.objects.get(name="Comedy")
    ids = new_viewers_ensure(name="New viewer", genre_picks=[("Comedy",), ("Drama", "Horror")])
    assert len(ids) == 2 and new_viewers_ensure(name="New viewer", genre_picks=[("Comedy",)]) == ids
    profile = Profile.objects.get(pk=ids[0])
    assert list(profile.onboarding_genres.all()) == [comedy] and not profile.viewing_events.exists()

    result = engine.recommend(context=UserContext(profile_id=profile.pk), n=20)
    from_genres = [i for i in result.items if sources.POPULAR_IN_GENRES in i.sources]
    assert len(from_genres) >= 10
    comedies = set(Title.objects.filter(genres=comedy).values_list("pk", flat=True))
    assert all(i.content_id in comedies for i in from_genres)
