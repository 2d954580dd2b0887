"""Batch refresh over factory-built data writes the hand-computed features; request-time reads."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from features import selectors, services
from features.generators import ContentFeatureGenerator, UserFeatureGenerator
from features.ml.definitions import INTERACTION_FEATURES, USER_FEATURES
from tests.factories.users import ProfileFactory, ViewingEventFactory
from tests.features.histories import AS_OF, CONTENT_EXPECTED, USER_EXPECTED
from tests.features.ml.test_compute import assert_content_row, assert_user_row
from users.models import ViewingEvent


def genre_ids(catalog_rows) -> dict[str, int]:
    genres, _ = catalog_rows
    return {name: genre.id for name, genre in genres.items()}


def test_user_refresh_writes_hand_computed_features(user_histories, catalog_rows, store):
    ids = sorted(p.id for p in user_histories.values())
    written = services.user_features_refresh(
        profile_id_start=ids[0], profile_id_end=ids[-1] + 1, as_of=AS_OF, store=store
    )
    assert written == len(ids)
    for name, profile in user_histories.items():
        row = store.get_online_features("user", profile.id)
        assert row.defaulted == frozenset()
        assert_user_row(row.values, USER_EXPECTED[name], genre_ids(catalog_rows))


def test_user_refresh_covers_only_its_shard(user_histories, store):
    ids = sorted(p.id for p in user_histories.values())
    services.user_features_refresh(profile_id_start=ids[1], profile_id_end=ids[2], as_of=AS_OF, store=store)
    found = store.get_many("user", ids).found
    assert list(found) == [False, True, False, False]


def test_refreshing_twice_gives_the_same_features(user_histories, store):
    ids = sorted(p.id for p in user_histories.values())
    services.user_features_refresh(profile_id_start=ids[0], profile_id_end=ids[-1] + 1, as_of=AS_OF, store=store)
    first = store.get_many("user", ids).values
    services.user_features_refresh(profile_id_start=ids[0], profile_id_end=ids[-1] + 1, as_of=AS_OF, store=store)
    np.testing.assert_array_equal(store.get_many("user", ids).values, first)


def test_shards_cover_every_profile_once(db):
    profiles = ProfileFactory.create_batch(5)
    shards = services.user_features_shards(shard_size=2)
    covered = [pid for start, end in shards for pid in range(start, end)]
    assert sorted(p.id for p in profiles) == [pid for pid in covered if pid in {p.id for p in profiles}]
    assert len(covered) == len(set(covered))
    assert all(end - start <= 2 for start, end in shards)


def test_recent_refresh_touches_only_active_profiles(user_histories, catalog_rows, store):
    since = dt.datetime(2026, 1, 6, 14, 30, tzinfo=dt.UTC)  # "paused" last watched at 15:00, "binger" on the 11th
    written = services.user_features_refresh_recent(since=since, as_of=AS_OF, store=store)
    assert written == 2
    found = store.get_many("user", [user_histories[n].id for n in ("binger", "gaps", "paused", "newcomer")]).found
    assert list(found) == [True, False, True, False]
    for name in ("binger", "paused"):  # whole histories as of AS_OF, not just the recent viewings
        row = store.get_online_features("user", user_histories[name].id)
        assert_user_row(row.values, USER_EXPECTED[name], genre_ids(catalog_rows))


def test_content_refresh_writes_hand_computed_features(content_histories, catalog_rows, store):
    assert services.content_features_refresh(as_of=AS_OF, store=store) == len(content_histories)
    for name, title in content_histories.items():
        if name in CONTENT_EXPECTED:
            row = store.get_online_features("content", title.id)
            assert_content_row(row.values, CONTENT_EXPECTED[name], genre_ids(catalog_rows))


def test_content_refresh_announces_a_title_matrix_that_serving_reads_from_memory(
    content_histories, catalog_rows, store
):
    """Also on the embedded database store: the matrix and its announcement are two more keys."""
    services.content_features_refresh(as_of=AS_OF, store=store)
    store.titles.expire_check()
    ids = np.array([t.id for t in content_histories.values()], dtype=np.int64)
    read = store.get_request_features(1, ids)
    assert store.titles.matrix is not None and read.content.found.all()
    stored = store.get_many("content", ids)
    np.testing.assert_array_equal(read.content.values, stored.values)  # memory and per-title keys agree
    np.testing.assert_array_equal(read.content.computed_at, stored.computed_at)
    first = store.titles.matrix.version
    services.content_features_refresh(as_of=AS_OF, store=store)
    store.titles.expire_check()
    store.get_request_features(1, ids[:1])
    assert store.titles.matrix.version != first  # a new refresh, a new version, loaded at the next check


def test_sql_aggregates_match_the_pandas_twin(content_histories):
    from features.ml.compute import content_aggregates

    viewings = pd.DataFrame(
        list(ViewingEvent.objects.values_list("title_id", "started_at", "watch_percentage", "completed")),
        columns=["title_id", "started_at", "watch_percentage", "completed"],
    )
    expected = content_aggregates(viewings, as_of=AS_OF).set_index("title_id").sort_index()
    actual = selectors.content_aggregates(as_of=AS_OF).set_index("title_id").sort_index()
    pd.testing.assert_frame_equal(actual, expected, check_dtype=False, rtol=1e-9)


def test_candidate_features_combine_store_and_history(user_histories, catalog_rows, store):
    _, titles = catalog_rows
    binger = user_histories["binger"]
    services.user_features_refresh(profile_id_start=binger.id, profile_id_end=binger.id + 1, as_of=AS_OF, store=store)
    services.content_features_refresh(as_of=AS_OF, store=store)
    candidates = [titles["film"].id, titles["unseen"].id]
    result = services.candidate_features(profile_id=binger.id, title_ids=candidates, as_of=AS_OF, store=store)
    assert not result.store_unavailable and result.content.found.all()
    column = {n: result.interactions[:, INTERACTION_FEATURES.slices[n]][:, 0] for n in INTERACTION_FEATURES.names}
    assert list(column["has_watched"]) == [1, 0]
    assert column["watch_percentage"][0] == pytest.approx(1.0)
    last_watched = dt.datetime(2026, 1, 1, 21, 40, tzinfo=dt.UTC)
    assert column["days_since_watched"][0] == pytest.approx((AS_OF - last_watched).total_seconds() / 86400)
    affinity = np.asarray(result.user.values["genre_affinity"], dtype=np.float64)
    drama_only = affinity[0] / np.linalg.norm(affinity)
    assert column["genre_affinity"][0] == pytest.approx(drama_only, rel=1e-5)


def test_generators_compute_and_store_one_entity(user_histories, content_histories, catalog_rows, store):
    profile = user_histories["binger"]
    row = UserFeatureGenerator(store).update_user_features(
        profile.id, ViewingEvent.objects.filter(profile=profile), as_of=AS_OF
    )
    assert_user_row(row.values, USER_EXPECTED["binger"], genre_ids(catalog_rows))
    assert store.get_online_features("user", profile.id).values["total_watch_hours"] == pytest.approx(13200 / 3600)

    film = content_histories["film"]
    stats = ViewingEvent.objects.filter(title=film).exclude(profile__in=user_histories.values())
    row = ContentFeatureGenerator(store).update_content_features(film.id, film, stats, as_of=AS_OF)
    assert_content_row(row.values, CONTENT_EXPECTED["film"], genre_ids(catalog_rows))
    assert store.get_online_features("content", film.id).defaulted == frozenset()


def test_batch_refresh_of_a_synthetic_world_matches_the_pure_computation(db, store):
    """Factories at volume: the SQL read path feeds compute exactly what the ORM sees."""
    from features.ml.compute import user_features

    profiles = ProfileFactory.create_batch(3)
    for i in range(30):
        ViewingEventFactory(
            profile=profiles[i % 3], started_at=AS_OF - dt.timedelta(hours=7 * i + 1), watch_percentage=(i % 10) / 10
        )
    ids = sorted(p.id for p in profiles)
    services.user_features_refresh(profile_id_start=ids[0], profile_id_end=ids[-1] + 1, as_of=AS_OF, store=store)
    viewings = pd.DataFrame(
        list(
            ViewingEvent.objects.values_list(
                "profile_id",
                "title_id",
                "started_at",
                "last_watched_at",
                "watch_seconds",
                "watch_percentage",
                "completed",
            )
        ),
        columns=[
            "profile_id",
            "title_id",
            "started_at",
            "last_watched_at",
            "watch_seconds",
            "watch_percentage",
            "completed",
        ],
    )
    expected = user_features(viewings, selectors.catalog_arrays(), as_of=AS_OF)
    np.testing.assert_array_equal(store.get_many("user", ids).values, expected.values)
    assert expected.values.shape == (3, USER_FEATURES.width)


def test_recent_refresh_can_be_sharded(user_histories, store):
    since = dt.datetime(2026, 1, 5, tzinfo=dt.UTC)  # everyone but "newcomer" watched after this
    paused = user_histories["paused"].id
    written = services.user_features_refresh_recent(
        since=since, as_of=AS_OF, profile_id_start=paused, profile_id_end=paused + 1, store=store
    )
    assert written == 1
    assert list(store.get_many("user", [p.id for p in user_histories.values()]).found) == [False, False, True, False]
