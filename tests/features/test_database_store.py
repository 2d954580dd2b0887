"""The embedded online store (no REDIS_URL): features in a database table, shared by every process."""

from __future__ import annotations

import uuid

import numpy as np
import pytest
from django.db import connection

from features.keys import feature_key
from features.models import OnlineFeature
from features.store import DatabaseBackend, FeatureStore
from tests.features.test_store import content_matrix, user_features

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def db_store():
    return FeatureStore(namespace=f"fs-db-{uuid.uuid4().hex[:12]}", backend=DatabaseBackend())


def test_round_trip_through_the_table(db_store):
    db_store.set_batch_features("user", 7, user_features(seed=2.0))
    row = db_store.get_online_features("user", 7)
    assert row.values["total_watch_hours"] == 25.0 and row.defaulted == frozenset()
    assert OnlineFeature.objects.filter(key__startswith=db_store.namespace).count() == 1


def test_a_second_write_replaces_the_first(db_store):
    db_store.set_batch_features("user", 7, user_features(seed=1.0))
    db_store.set_batch_features("user", 7, user_features(seed=3.0))
    assert db_store.get_online_features("user", 7).values["total_watch_hours"] == 37.5
    assert OnlineFeature.objects.filter(key__startswith=db_store.namespace).count() == 1


def test_many_keys_read_in_batches_keep_their_order(db_store):
    ids = np.arange(1, 1_201, dtype=np.int64)  # more than one statement's worth of keys
    db_store.set_many("content", ids, content_matrix(len(ids)))
    wanted = np.array([1_200, 3, 999_999, 600], dtype=np.int64)
    batch = db_store.get_many("content", wanted)
    assert batch.found.tolist() == [True, True, False, True]
    assert batch.column("view_count_7d")[[0, 1, 3]].tolist() == [1_199, 2, 599]


def test_expired_rows_read_as_missing_and_are_deleted_by_the_next_write(db_store):
    db_store.set_batch_features("user", 1, user_features(), ttl_seconds=-1)  # expired at once
    assert db_store.get_many("user", [1]).found.tolist() == [False]
    db_store.set_batch_features("user", 2, user_features())
    kept = OnlineFeature.objects.filter(key__startswith=db_store.namespace).values_list("key", flat=True)
    assert list(kept) == [feature_key("user", 2, namespace=db_store.namespace)]


def test_rankings_round_trip(db_store):
    db_store.set_ranking("trending", np.array([5, 3, 9]), np.array([3.0, 2.0, 1.0]), ttl_seconds=60)
    ranking = db_store.get_ranking("trending")
    assert ranking.ids.tolist() == [5, 3, 9] and ranking.scores.tolist() == [3.0, 2.0, 1.0]


def test_a_missing_table_reads_as_unavailable_defaults_not_an_error(db_store):
    with connection.schema_editor() as editor:
        editor.delete_model(OnlineFeature)
    try:
        read = db_store.get_request_features(1, [1, 2])
        assert read.user.store_unavailable and not read.content.found.any()
    finally:
        with connection.schema_editor() as editor:
            editor.create_model(OnlineFeature)
