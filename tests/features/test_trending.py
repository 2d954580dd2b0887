"""The content refresh also writes the trending list: titles by time-decayed views, best first."""

from __future__ import annotations

import datetime as dt

from features import services
from features.store import FeatureStore
from tests.factories.catalog import TitleFactory
from tests.factories.users import ProfileFactory, ViewingEventFactory

AS_OF = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)


def test_trending_ranks_recent_views_above_old_ones(db, store):
    old_hit, new_hit, quiet, unwatched = TitleFactory.create_batch(4)
    profiles = ProfileFactory.create_batch(5)
    for profile in profiles:  # five views 60 days ago: 5 * 0.9 ** 60 ≈ 0.009
        ViewingEventFactory(profile=profile, title=old_hit, started_at=AS_OF - dt.timedelta(days=60))
    for profile in profiles[:3]:  # three views a day ago: 3 * 0.9 ≈ 2.7
        ViewingEventFactory(profile=profile, title=new_hit, started_at=AS_OF - dt.timedelta(days=1, hours=1))
    ViewingEventFactory(profile=profiles[0], title=quiet, started_at=AS_OF - dt.timedelta(days=3))  # ≈ 0.73

    services.content_features_refresh(as_of=AS_OF, store=store)
    ranking = store.get_ranking(services.TRENDING)

    assert list(ranking.ids) == [new_hit.id, quiet.id, old_hit.id]
    assert ranking.scores[0] > ranking.scores[1] > ranking.scores[2] > 0
    assert unwatched.id not in ranking.ids


def test_missing_ranking_is_empty(db):
    ranking = FeatureStore(namespace="fs-test-empty").get_ranking("nothing-here")
    assert len(ranking.ids) == 0 and not ranking.store_unavailable
