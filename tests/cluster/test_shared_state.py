"""Everything else the process keeps in Redis, on the cluster: the cache API (multi-key calls over many slots),
rate limits (one script, one key), job locks, process statuses, health and readiness."""

from __future__ import annotations

import json

from django.core.cache import cache

from config import probes, ratelimit
from config.redis_cluster import is_cluster, shared_redis
from recommendations.serving.process_status import process_status_publish, process_status_withdraw, serving_processes
from staff.health import cache_stats, redis_check
from tasks.locks import JobLock


def test_the_cache_api_works_across_slots(on_cluster):
    assert is_cluster(shared_redis())
    values = {f"key-{i}": {"n": i} for i in range(50)}  # 50 keys: many slots on every master
    cache.set_many(values, 60)
    assert cache.get_many(list(values)) == values
    assert cache.add("key-0", "other") is False and cache.get("key-0") == {"n": 0}
    cache.set("counter", 1)
    assert cache.incr("counter", 2) == 3
    cache.delete_many(list(values))
    assert cache.get_many(list(values)) == {}


def test_rate_limits_are_shared_on_the_cluster(on_cluster):
    ratelimit.local_buckets.clear()
    decisions = [ratelimit.take("client-a", rate=0.01, capacity=3) for _ in range(4)]
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert all(d.shared for d in decisions) and decisions[-1].retry_after > 0
    assert not ratelimit.local_buckets._buckets  # counted in the cluster, not in this process


def test_job_locks_on_the_cluster(on_cluster):
    first, second = JobLock("cluster-job", ttl_seconds=30), JobLock("cluster-job", ttl_seconds=30)
    assert first.acquire() and not second.acquire()
    assert first.holder() == first.token and first.renew() and not second.renew()
    second.release()  # not its lock: nothing happens
    assert first.holder() == first.token
    first.release()
    assert first.holder() is None and second.acquire()
    second.release()


def test_process_statuses_on_the_cluster(on_cluster):
    process_status_publish(status={"host": "web-1", "pid": 11, "role": "master", "models": []})
    process_status_publish(status={"host": "web-2", "pid": 22, "role": "worker", "models": []})
    assert [(s["host"], s["pid"]) for s in serving_processes()] == [("web-1", 11), ("web-2", 22)]
    raw = shared_redis().hgetall(cache.make_key("serving:processes"))
    assert json.loads(raw[b"web-1:11"])["role"] == "master"
    process_status_withdraw(host="web-1", pid=11)
    assert [s["host"] for s in serving_processes()] == ["web-2"]


def test_health_and_readiness_on_a_healthy_cluster(on_cluster):
    check = redis_check()
    assert check["status"] == "ok" and check["detail"].startswith("cluster: 3 of 3 masters answer")
    assert sum(node["role"] == "primary" for node in check["nodes"]) == 3 and all(n["ok"] for n in check["nodes"])
    assert probes._redis_state() == "ok"
    cache.get("a-key-nobody-set")
    assert cache_stats()["misses"] >= 1
