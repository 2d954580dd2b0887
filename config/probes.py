"""Liveness and readiness for load balancers and orchestrators; public, and they say nothing secret.

- `/healthz` (liveness): the process answers. Never touches a dependency, so a database outage does not
  get healthy web processes restarted.
- `/readyz` (readiness): 200 when this process can serve full answers' source of truth, the database
  (one `SELECT 1` under the request deadline); 503 when it cannot. Redis is reported but does not fail
  readiness: without it the API still answers, degraded. On a Redis Cluster it says how many masters of the
  slot map are skipped by their breakers (their profiles' answers degraded), from this process's state only.
"""

from __future__ import annotations

from django.db import DatabaseError, connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from config.breakers import OPEN, breaker_states
from config.redis_cluster import cluster_nodes_state, is_cluster, shared_redis


@never_cache
@require_GET
def liveness(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


@never_cache
@require_GET
def readiness(request: HttpRequest) -> JsonResponse:
    checks = {"database": _database_ok(), "redis": _redis_state()}
    ready = checks["database"] == "ok"
    response = JsonResponse(
        {"status": "ready" if ready else "unavailable", "checks": checks}, status=200 if ready else 503
    )
    if not ready:
        response["Retry-After"] = "2"
    return response


def _database_ok() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError:
        return "unreachable"
    return "ok"


def _redis_state() -> str:
    try:
        client = shared_redis()
    except Exception:
        return "unreachable (answers degraded)"
    if client is None:
        return "not configured"
    if is_cluster(client):
        masters = [n for n in cluster_nodes_state(client) if n["role"] == "primary"]
        down = sum(n["unreachable"] for n in masters)
        if not down:
            return "ok"
        if down == len(masters):
            return "unreachable (answers degraded)"
        return f"{down} of {len(masters)} masters unreachable (their profiles' answers degraded)"
    if any(state.name.startswith("redis") and state.state == OPEN for state in breaker_states()):
        return "unreachable (answers degraded)"
    return "ok"
