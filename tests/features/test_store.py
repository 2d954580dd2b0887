"""FeatureStore: round trips, defaults, TTLs, schema versions, one round trip per request, Redis down."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import math
import socket
import time

import numpy as np
import pytest
import redis

from features.keys import feature_key
from features.ml import codec
from features.ml.definitions import CONTENT_FEATURES, FEATURE_SETS, GENRE_SLOTS, USER_FEATURES
from features.store import FeatureStore


def user_features(seed: float = 1.0) -> dict:
    return {
        "total_watch_hours": 12.5 * seed,
        "avg_session_duration": 48.0,
        "favorite_genres": [7, 3, -1],
        "completion_rate": 0.75,
        "binge_watching_score": 0.25,
        "genre_affinity": np.linspace(0, 1, GENRE_SLOTS) / np.linspace(0, 1, GENRE_SLOTS).sum(),
    }


def content_matrix(n: int) -> np.ndarray:
    values = np.tile(CONTENT_FEATURES.defaults, (n, 1))
    values[:, CONTENT_FEATURES.slices["view_count_7d"]] = np.arange(n)[:, None]
    return values


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # nothing listens once the probe closes


def test_round_trip_keeps_every_value_and_computed_at(store):
    computed_at = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    store.set_batch_features("user", 42, user_features(), computed_at=computed_at)
    row = store.get_online_features("user", 42, ["total_watch_hours", "favorite_genres", "genre_affinity"])
    assert row.values["total_watch_hours"] == 12.5
    assert list(row.values["favorite_genres"]) == [7, 3, -1]
    np.testing.assert_allclose(row.values["genre_affinity"], user_features()["genre_affinity"], rtol=1e-6)
    assert set(row.values) == {"total_watch_hours", "favorite_genres", "genre_affinity"}
    assert row.defaulted == frozenset() and not row.store_unavailable
    assert row.computed_at == computed_at


def test_missing_entity_returns_declared_defaults_flagged(store):
    row = store.get_online_features("user", 404, None)
    assert row.defaulted == frozenset(USER_FEATURES.names)
    assert row.computed_at is None and not row.store_unavailable
    assert row.values["total_watch_hours"] == 0.0 and math.isnan(row.values["completion_rate"])
    assert list(row.values["favorite_genres"]) == [-1, -1, -1]


def test_many_entities_in_one_batch(store):
    assert store.set_many("content", [1, 2, 3], content_matrix(3)) == 3
    batch = store.get_many("content", [3, 99, 1])
    assert list(batch.found) == [True, False, True]
    assert list(batch.column("view_count_7d")) == [2, 0, 0]
    assert batch.row(1).defaulted == frozenset(CONTENT_FEATURES.names)


def test_writes_refuse_incomplete_or_unknown_features(store):
    features = user_features()
    del features["completion_rate"]
    with pytest.raises(ValueError, match="missing \\['completion_rate'\\]"):
        store.set_batch_features("user", 1, features)
    with pytest.raises(ValueError, match="unknown entity type"):
        store.get_online_features("household", 1)
    with pytest.raises(ValueError, match="no 'shoe_size'"):
        store.get_online_features("user", 1, ["shoe_size"])


def test_expired_features_read_as_defaults(store):
    store.set_batch_features("user", 7, user_features(), ttl_seconds=1)
    assert store.get_online_features("user", 7).defaulted == frozenset()
    time.sleep(1.5)
    assert store.get_online_features("user", 7).defaulted == frozenset(USER_FEATURES.names)


def test_default_ttl_comes_from_settings(redis_store, settings):
    settings.FEATURE_TTL_SECONDS = {"user": 1234, "content": 56}
    redis_store.set_batch_features("user", 8, user_features())
    redis_store.set_many("content", [8], content_matrix(1))
    client = redis_store.backend.client
    assert 1230 <= client.ttl(feature_key("user", 8, namespace=redis_store.namespace)) <= 1234
    assert 50 <= client.ttl(feature_key("content", 8, namespace=redis_store.namespace)) <= 56


def test_payload_is_compact_binary(redis_store):
    redis_store.set_batch_features("user", 9, user_features())
    payload = redis_store.backend.client.get(feature_key("user", 9, namespace=redis_store.namespace))
    assert len(payload) == 12 + 4 * USER_FEATURES.width  # header + float32 values; no JSON, no pickle
    values = np.frombuffer(payload, "<f4", offset=12)
    assert values[USER_FEATURES.slices["total_watch_hours"]][0] == 12.5


def test_a_schema_bump_never_reads_old_payloads(store, monkeypatch):
    store.set_batch_features("user", 5, user_features())
    monkeypatch.setitem(FEATURE_SETS, "user", dataclasses.replace(USER_FEATURES, schema_version=2))
    assert feature_key("user", 5) == "fs:{p5}:user:v2"
    assert store.get_online_features("user", 5).defaulted == frozenset(USER_FEATURES.names)


def test_a_payload_of_another_schema_under_the_key_counts_as_missing():
    old = dataclasses.replace(USER_FEATURES, schema_version=1)
    new = dataclasses.replace(USER_FEATURES, schema_version=2)
    payloads = [*codec.encode_many(old, USER_FEATURES.defaults[None, :] + 1, computed_at=0.0), b"short", None]
    values, found, _ = codec.decode_many(new, payloads)
    assert not found.any()
    np.testing.assert_array_equal(values, np.tile(USER_FEATURES.defaults, (3, 1)))


def test_a_title_matrix_round_trips_sorted_and_refuses_other_layouts():
    ids = np.array([30, 10, 20])
    values = content_matrix(3)
    payload = codec.encode_matrix(CONTENT_FEATURES, ids, values, computed_at=123.5)
    decoded_ids, decoded, computed_at = codec.decode_matrix(CONTENT_FEATURES, payload)
    assert list(decoded_ids) == [10, 20, 30] and computed_at == 123.5
    np.testing.assert_array_equal(decoded, values[[1, 2, 0]])
    other = dataclasses.replace(CONTENT_FEATURES, schema_version=CONTENT_FEATURES.schema_version + 1)
    assert codec.decode_matrix(other, payload) is None
    assert codec.decode_matrix(CONTENT_FEATURES, payload[:-4]) is None
    assert codec.decode_matrix(CONTENT_FEATURES, b"short") is None


def _count_sends(client, monkeypatch) -> list:
    client.ping()  # the connection is open before counting
    connection_class = client.connection_pool.connection_class
    sends = []
    original = connection_class.send_packed_command

    def counting(self, command, check_health=True):
        sends.append(command)
        return original(self, command, check_health)

    monkeypatch.setattr(connection_class, "send_packed_command", counting)
    return sends


def test_profile_and_500_titles_in_one_round_trip_without_a_title_matrix(redis_store, monkeypatch):
    redis_store.set_batch_features("user", 1, user_features())
    redis_store.set_many("content", range(500), content_matrix(500))
    redis_store.get_request_features(1, [1])  # the first read looks for an announced matrix: there is none
    sends = _count_sends(redis_store.backend.client, monkeypatch)
    read = redis_store.get_request_features(1, range(500))
    assert len(sends) == 1
    assert read.user.values["total_watch_hours"] == 12.5 and read.content.found.all()
    assert list(read.content.column("view_count_7d")[:3]) == [0, 1, 2]


def test_with_a_title_matrix_a_request_reads_only_the_profile_payload(redis_store, monkeypatch):
    redis_store.set_batch_features("user", 1, user_features())
    redis_store.publish_matrix("content", np.arange(499, -1, -1), content_matrix(500)[::-1])
    redis_store.titles.expire_check()
    redis_store.get_request_features(1, [1])  # loads the announced matrix
    sends = _count_sends(redis_store.backend.client, monkeypatch)
    read = redis_store.get_request_features(1, [7, 3, 123456])
    assert len(sends) == 1 and b"{p1}:user" in sends[0][0] and b"content" not in sends[0][0]
    assert read.user.values["total_watch_hours"] == 12.5
    assert list(read.content.found) == [True, True, False]
    assert list(read.content.column("view_count_7d")[:2]) == [7, 3]
    np.testing.assert_array_equal(read.content.values[2], CONTENT_FEATURES.defaults)
    assert math.isnan(read.content.computed_at[2]) and read.content.computed_at[0] > 0


def test_a_stale_title_matrix_falls_back_to_the_per_title_keys(redis_store, settings):
    old = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=301)
    settings.FEATURE_TTL_SECONDS = {"user": 3600, "content": 300}
    redis_store.publish_matrix("content", np.arange(3), content_matrix(3), computed_at=old)
    redis_store.titles.expire_check()
    read = redis_store.get_request_features(1, [0, 1, 2])
    assert redis_store.titles.matrix is not None  # loaded, but too old to serve
    assert not read.content.found.any()  # no per-title keys either: defaults, as the engine flags them


def test_unreachable_redis_serves_flagged_defaults_and_never_raises(caplog):
    store = FeatureStore.from_url(f"redis://127.0.0.1:{closed_port()}/0", socket_timeout=0.2)
    with caplog.at_level(logging.WARNING, logger="features.store"):
        started = time.perf_counter()
        row = store.get_online_features("user", 1)
        read = store.get_request_features(1, [1, 2])
        assert time.perf_counter() - started < 2
    assert row.store_unavailable and row.defaulted == frozenset(USER_FEATURES.names)
    assert read.user.store_unavailable and read.content.store_unavailable and not read.content.found.any()
    assert "feature store unavailable" in caplog.text


def test_unreachable_redis_fails_writes_so_jobs_retry():
    store = FeatureStore.from_url(f"redis://127.0.0.1:{closed_port()}/0", socket_timeout=0.2)
    with pytest.raises(redis.exceptions.ConnectionError):
        store.set_batch_features("user", 1, user_features())


def test_configured_store_uses_redis_when_redis_url_is_set(settings):
    store = FeatureStore()
    assert store.backend.name == ("redis" if settings.REDIS_URL else "database")


def test_packed_writes_set_every_key_with_its_ttl_and_a_refused_one_raises(redis_store, monkeypatch):
    import features.store

    monkeypatch.setattr(features.store, "PIPELINE_SETS", 7)  # several packed chunks
    ids = np.arange(1, 31, dtype=np.int64)
    redis_store.set_many("content", ids, content_matrix(30), ttl_seconds=120)
    client = redis_store.backend.client
    keys = [feature_key("content", int(i), namespace=redis_store.namespace) for i in ids]
    assert all(0 < client.ttl(key) <= 120 for key in keys)
    assert list(redis_store.get_many("content", ids).column("view_count_7d")) == list(range(30))

    with pytest.raises(redis.exceptions.ResponseError):  # EX 0 is refused: the error reaches the job
        redis_store.backend.set([(keys[0], b"x")], 0)
    redis_store.set_many("content", ids[:1], content_matrix(1), ttl_seconds=60)  # the pool still works
    assert 0 < client.ttl(keys[0]) <= 60
