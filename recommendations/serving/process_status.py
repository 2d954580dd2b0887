"""What each serving process says it serves, shared through the cache so that the staff health page lists them.

Every web process (gunicorn's master and each worker) publishes {host, pid, role, started_at, the versions and
checksums it serves, failed loads with their next retry, changed files, recent errors} every
RECO_PROCESS_STATUS_SECONDS and at once after a change (recommendations/serving/monitor.py). On Redis the
statuses are fields of one hash (one HSET per publish, no read-modify-write between processes), refreshed
with a TTL of PROCESS_STATUS_TTL_SECONDS; a field not published for that long is dropped when read, so a
process that died leaves the list within two minutes. On local-memory caches each process sees only itself.
"""

from __future__ import annotations

import json
import time
from typing import Any

from django.core.cache import cache

from config.redis_cluster import shared_redis

PROCESS_STATUS_KEY = "serving:processes"
PROCESS_STATUS_TTL_SECONDS = 120


def _redis():
    """The raw Redis client under the default cache (one server or a cluster: the hash is one key, so one
    node), or None on another backend."""
    return shared_redis()


def _field(status: dict[str, Any]) -> str:
    return f"{status['host']}:{status['pid']}"


def process_status_publish(*, status: dict[str, Any]) -> None:
    """Store this process's status (a JSON-able dict with host and pid); raises if the cache is unreachable."""
    status = {**status, "published_at": time.time()}
    key = cache.make_key(PROCESS_STATUS_KEY)
    client = _redis()
    if client is None:
        statuses = cache.get(PROCESS_STATUS_KEY) or {}
        statuses[_field(status)] = status
        cache.set(PROCESS_STATUS_KEY, statuses, PROCESS_STATUS_TTL_SECONDS)
        return
    with client.pipeline(transaction=False) as pipe:
        pipe.hset(key, _field(status), json.dumps(status, default=str))
        pipe.expire(key, PROCESS_STATUS_TTL_SECONDS)
        pipe.execute()


def process_status_withdraw(*, host: str, pid: int) -> None:
    """Remove a process's status (it is exiting)."""
    field = f"{host}:{pid}"
    client = _redis()
    if client is None:
        statuses = cache.get(PROCESS_STATUS_KEY) or {}
        if statuses.pop(field, None) is not None:
            cache.set(PROCESS_STATUS_KEY, statuses, PROCESS_STATUS_TTL_SECONDS)
        return
    client.hdel(cache.make_key(PROCESS_STATUS_KEY), field)


def serving_processes() -> list[dict[str, Any]]:
    """The statuses published within PROCESS_STATUS_TTL_SECONDS, by host, role (master first) and pid."""
    horizon = time.time() - PROCESS_STATUS_TTL_SECONDS
    client = _redis()
    if client is None:
        statuses = list((cache.get(PROCESS_STATUS_KEY) or {}).values())
    else:
        key = cache.make_key(PROCESS_STATUS_KEY)
        statuses, stale = [], []
        for field, value in client.hgetall(key).items():
            try:
                status = json.loads(value)
            except ValueError:
                status = {}
            if status.get("published_at", 0) >= horizon:
                statuses.append(status)
            else:
                stale.append(field)
        if stale:
            client.hdel(key, *stale)
    fresh = [s for s in statuses if s.get("published_at", 0) >= horizon]
    for status in fresh:
        status["age_seconds"] = round(time.time() - status["published_at"], 1)
    return sorted(fresh, key=lambda s: (s.get("host", ""), s.get("role") != "master", s.get("pid", 0)))
