"""The rehearsal's CI-sized form: the multi-host deployment of tests/hostkit.py (the code bench/rehearsal.py
runs) with a small world, the Redis Cluster and the PostgreSQL replica, and each fault once.

One deployment for the module (building it takes most of the time: about a minute); the faults run in the
bench's order, each leaving the deployment whole again for the next. Skipped, saying why, only where network
namespaces cannot be made (not root, or `ip netns add` refused); a missing haproxy, redis-server,
rabbitmq-server or PostgreSQL fails the test, as any missing service does.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from tests import hostkit

pytestmark = pytest.mark.rehearsal

PERMITTED, WHY_NOT = hostkit.netns_permitted()
# The load's p99 is measured and printed but bounded loosely here: on a CI machine shared with other jobs the
# 50 ms figure at 100/s is the bench's (bench/rehearsal.py, on a quiet machine), not a test's.
CI_P99_MS = 500.0


@pytest.fixture(scope="module")
def rehearsal():
    if not PERMITTED:
        pytest.skip(f"the multi-host rehearsal needs network namespaces: {WHY_NOT}")
    with hostkit.deployment(hostkit.World()) as deployment:
        yield (
            deployment,
            hostkit.rehearse(
                deployment,
                faults=list(hostkit.FAULTS),
                timing=hostkit.Timing(),
                rate=hostkit.CI_RATE,
                baseline_rate=hostkit.CI_RATE,
                baseline_seconds=8.0,
            ),
        )


def _missed(results: dict, prefix: str) -> list[str]:
    return [c["figure"] for c in results["checks"] if c["figure"].startswith(prefix) and not c["met"]]


def test_the_balancer_serves_two_web_hosts_from_the_cluster_and_the_replica(rehearsal):
    deployment, results = rehearsal
    base = results["baseline"]
    assert base["server_errors"] == base["no_response"] == 0 and base["ok"] == base["requests"] > 0
    assert base["replica_rows_returned"] > 0  # the request path read the replica
    assert len(base["keys_per_master"]) == 3 and all(base["keys_per_master"].values())
    assert base["p99_ms"] < CI_P99_MS
    assert set(deployment.haproxy.server_states()) == {"web1", "web2"}


@pytest.mark.parametrize("fault", list(hostkit.FAULTS))
def test_each_fault_meets_its_figures(rehearsal, fault):
    _, results = rehearsal
    assert fault in results["faults"]
    assert _missed(results, f"{fault}:") == []


def test_the_killed_workers_shards_were_redelivered_and_counted_once(rehearsal):
    _, results = rehearsal
    worker = results["faults"]["worker-killed-mid-refresh"]
    assert worker["killed_shard_attempts"] and worker["shards_done_at_kill"] < worker["shards_total"]
    assert worker["status"] == "succeeded" and worker["rows_written"] == worker["profiles"]


def test_no_ready_host_is_a_json_503_from_the_balancer(rehearsal):
    """Every host out (as when /readyz fails on all of them: the database down): the API's error shape."""
    deployment, _ = rehearsal
    hosts = sorted(deployment.haproxy.server_states())
    try:
        for name in hosts:
            deployment.haproxy.admin(f"disable server web/{name}")
        with pytest.raises(urllib.error.HTTPError) as answer:
            urllib.request.urlopen(f"{deployment.haproxy.url}/api/recs?profile_id=1", timeout=5)
        assert answer.value.code == 503 and answer.value.headers["Retry-After"] == "2"
        assert answer.value.headers["Content-Type"] == "application/json"
        body = json.loads(answer.value.read())
        assert set(body) == {"code", "message", "details"} and body["code"] == "service_unavailable"
    finally:
        for name in hosts:
            deployment.haproxy.admin(f"enable server web/{name}")
