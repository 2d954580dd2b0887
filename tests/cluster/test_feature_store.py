"""The online feature store on a Redis Cluster: round trips, one command on one node per profile read, writes
spread over every master, and the in-process title features following the announced version."""

from __future__ import annotations

import numpy as np

from features.keys import feature_key
from features.ml.definitions import CONTENT_FEATURES, USER_FEATURES
from tests.faultkit import wait_until


def user_rows(n: int, seed: float = 1.0) -> np.ndarray:
    values = np.tile(USER_FEATURES.defaults, (n, 1))
    values[:, USER_FEATURES.slices["total_watch_hours"]] = (np.arange(n) * seed)[:, None]
    return values


def title_rows(n: int, offset: float = 0.0) -> np.ndarray:
    values = np.tile(CONTENT_FEATURES.defaults, (n, 1))
    values[:, CONTENT_FEATURES.slices["view_count_7d"]] = (np.arange(n) + offset)[:, None]
    return values


def test_store_round_trip_on_the_cluster(cluster_store, cluster):
    assert cluster_store.backend.name == "redis-cluster"
    ids = np.arange(1, 3001)
    assert cluster_store.set_many("user", ids, user_rows(3000)) == 3000
    cluster_store.set_many("content", np.arange(500), title_rows(500))
    batch = cluster_store.get_many("user", ids)
    assert batch.found.all() and not batch.store_unavailable
    np.testing.assert_array_equal(batch.column("total_watch_hours"), np.arange(3000))
    titles = cluster_store.get_many("content", range(500))
    assert titles.found.all()
    # profiles spread over every master; the titles share one slot ({titles}), so one node holds them all
    slots = cluster.slot_map()
    owners = {
        cluster.node_for_key(feature_key("user", i, namespace=cluster_store.namespace), slots).name for i in ids[:60]
    }
    assert owners == {m.name for m in cluster.masters()}
    title_owners = {
        cluster.node_for_key(feature_key("content", i, namespace=cluster_store.namespace), slots).name
        for i in range(0, 500, 50)
    }
    assert len(title_owners) == 1


def test_a_profile_read_is_one_command_on_the_one_node_of_its_slot(cluster_store, cluster, settings):
    cluster_store.set_many("user", np.arange(1, 31), user_rows(30))
    cluster_store.publish_matrix("content", np.arange(500), title_rows(500))
    settings.RECO_TITLE_FEATURES_CHECK_SECONDS = 60  # no announcement check inside the counted reads
    cluster_store.titles.expire_check()
    cluster_store.get_request_features(1, [1])  # the title matrix is loaded, connections are open
    slots = cluster.slot_map()
    for profile_id in range(1, 31):
        cluster.reset_stats()
        read = cluster_store.get_request_features(profile_id, np.arange(500))
        assert read.user.values["total_watch_hours"] == profile_id - 1 and read.content.found.all()
        calls = {node: stats for node, stats in cluster.commandstats().items() if stats}
        owner = cluster.node_for_key(feature_key("user", profile_id, namespace=cluster_store.namespace), slots).name
        assert calls == {owner: {"get": 1}}, (profile_id, calls)


def test_without_a_title_matrix_the_titles_come_from_one_node(cluster_store, cluster, settings):
    cluster_store.set_many("user", [7], user_rows(1))
    cluster_store.set_many("content", np.arange(500), title_rows(500))
    settings.RECO_TITLE_FEATURES_CHECK_SECONDS = 60
    cluster_store.get_request_features(7, [1])
    cluster.reset_stats()
    read = cluster_store.get_request_features(7, np.arange(500))
    assert read.content.found.all() and read.user.computed_at is not None
    calls = {node: stats for node, stats in cluster.commandstats().items() if stats}
    titles_node = cluster.node_for_key(feature_key("content", 0, namespace=cluster_store.namespace)).name
    assert calls[titles_node].get("mget") == 1 and sum(sum(s.values()) for s in calls.values()) == 2


def test_batch_writes_reach_every_master_through_cluster_pipelines(cluster_store, cluster, monkeypatch):
    from redis.cluster import ClusterPipeline

    executed = []
    original = ClusterPipeline.execute

    def counting(self, *args, **kwargs):
        executed.append(self)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(ClusterPipeline, "execute", counting)
    cluster.reset_stats()
    cluster_store.set_many("user", np.arange(1, 25_001), user_rows(25_000))
    assert len(executed) == 3  # PIPELINE_SETS (10,000) per pipeline, each sent grouped by node by redis-py
    masters = {m.name for m in cluster.masters()}
    sets = {node: stats.get("set", 0) for node, stats in cluster.commandstats().items() if node in masters}
    assert sum(sets.values()) == 25_000 and all(count > 5_000 for count in sets.values())


def test_title_features_follow_the_announced_version(cluster_store, settings):
    cluster_store.publish_matrix("content", np.arange(100), title_rows(100))
    cluster_store.titles.expire_check()
    first = cluster_store.get_request_features(1, [5]).content.column("view_count_7d")[0]
    assert first == 5
    version = cluster_store.publish_matrix("content", np.arange(100), title_rows(100, offset=1000))

    def moved() -> bool:
        return cluster_store.get_request_features(1, [5]).content.column("view_count_7d")[0] == 1005

    wait_until(moved, seconds=3, interval=0.05, what="the new title matrix served")
    assert cluster_store.titles.matrix.version == version
