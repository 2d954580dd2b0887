"""A killed master on the cluster: only the profiles on its slots degrade (flagged, at once, no hang), the
others stay full, and all are full again once its replica is promoted; readiness and health say so."""

from __future__ import annotations

import time

import numpy as np

from config import probes
from features.keys import feature_key
from features.ml.definitions import CONTENT_FEATURES, USER_FEATURES
from staff.health import redis_check
from tests.faultkit import wait_until

PROFILES = 300
RECOVERY_BOUND_SECONDS = 15  # the bound for full answers after a killed master


def test_a_killed_master_degrades_only_its_profiles_until_its_replica_takes_over(cluster_store, cluster):
    ids = np.arange(1, PROFILES + 1)
    values = np.tile(USER_FEATURES.defaults, (PROFILES, 1))
    cluster_store.set_many("user", ids, values)
    cluster_store.publish_matrix("content", np.arange(1, 4), np.tile(CONTENT_FEATURES.defaults, (3, 1)))
    slots = cluster.slot_map()
    owner = {
        int(i): cluster.node_for_key(feature_key("user", int(i), namespace=cluster_store.namespace), slots) for i in ids
    }
    victim = cluster.masters()[0]
    on_victim = {i for i, node in owner.items() if node is victim}
    assert 0 < len(on_victim) < PROFILES
    wait_until(lambda: _replicated(cluster, victim), seconds=5, what="the victim's replica caught up")

    def read_all() -> tuple[set[int], set[int], float]:
        degraded, full, slowest = set(), set(), 0.0
        for profile_id in ids.tolist():
            started = time.perf_counter()
            read = cluster_store.get_request_features(profile_id, [1, 2, 3])
            slowest = max(slowest, time.perf_counter() - started)
            if read.user.store_unavailable:
                degraded.add(profile_id)
            elif read.user.computed_at is not None:
                full.add(profile_id)
        return degraded, full, slowest

    assert read_all()[0] == set()
    killed_at = time.monotonic()
    cluster.kill(victim)
    degraded, full, slowest = read_all()
    assert degraded <= on_victim and degraded  # flagged, never an exception
    assert full == set(ids.tolist()) - on_victim  # every other profile is served in full
    assert slowest < 1.0  # a refused connection fails at once; no read waits out a timeout
    assert probes._redis_state() != "ok"

    recovered_at = None
    while time.monotonic() - killed_at < RECOVERY_BOUND_SECONDS + 5:
        degraded, full, _ = read_all()
        if len(full) == PROFILES:
            recovered_at = time.monotonic()
            break
        assert full >= set(ids.tolist()) - on_victim
        time.sleep(0.1)
    assert recovered_at is not None, "the promoted replica never served the killed master's profiles"
    seconds = recovered_at - killed_at
    print(
        f"\nfull answers again {seconds:.1f} s after the master was killed ({len(on_victim)} of {PROFILES} "
        "profiles were on it)"
    )
    assert seconds < RECOVERY_BOUND_SECONDS
    assert probes._redis_state() == "ok"  # the dead node holds no slots any more
    assert redis_check()["detail"].startswith("cluster: 3 of 3 masters answer")

    cluster.restart(victim)  # it rejoins as a replica: the session's cluster is whole again for later tests
    cluster.wait_ok(seconds=15)


def _replicated(cluster, master) -> bool:
    info = cluster.info(master, "replication")
    offset = int(info["master_repl_offset"])
    return any(f"offset={offset}," in value for key, value in info.items() if key.startswith("slave"))


def test_a_hung_master_costs_its_profiles_one_timeout_and_others_nothing(cluster_store, cluster):
    """Without a title matrix, so the titles' fallback read is on one node and the profile's on another."""
    ids = list(range(1, PROFILES + 1))
    cluster_store.set_many("user", ids, np.tile(USER_FEATURES.defaults, (PROFILES, 1)))
    cluster_store.set_many("content", [1], np.tile(CONTENT_FEATURES.defaults, (1, 1)))
    slots = cluster.slot_map()
    victim = cluster.masters()[-1]
    on_victim = {
        i
        for i in ids
        if cluster.node_for_key(feature_key("user", i, namespace=cluster_store.namespace), slots) is victim
    }
    cluster.freeze(victim)
    try:
        started = time.perf_counter()
        reads = {i: cluster_store.get_request_features(i, [1]) for i in ids}
        elapsed = time.perf_counter() - started
    finally:
        cluster.thaw(victim)  # within the node timeout: no failover, the same master answers again
    degraded = {i for i, read in reads.items() if read.user.store_unavailable}
    assert degraded == on_victim  # its breaker opened at the first timeout (0.5 s here), the rest failed at once
    assert all(reads[i].user.computed_at is not None for i in set(ids) - on_victim)
    titles_on_victim = (
        cluster.node_for_key(feature_key("content", 1, namespace=cluster_store.namespace), slots) is victim
    )
    assert all(read.content.store_unavailable == titles_on_victim for read in reads.values())
    assert all(read.content.found.all() != titles_on_victim for read in reads.values())
    assert elapsed < 2.0, elapsed  # one socket timeout, not one per profile (300 × 0.5 s)
    wait_until(
        lambda: not cluster_store.get_request_features(min(on_victim), [1]).user.store_unavailable,
        seconds=5,
        interval=0.05,
        what="the thawed master served again",
    )
    cluster.wait_ok(seconds=15)
