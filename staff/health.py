"""Health of the moving parts: database, Redis, broker, worker, active models, what each web process serves,
feature freshness, cache.

Each check is bounded in time (sub-second timeouts) and never raises: a failure is reported, not thrown.
`health_report()` is what /staff/health.json returns and the health page draws.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
from django.conf import settings
from django.db import connection
from django.db.models import Max, Min
from django.utils import timezone

from catalog.models import Title
from config.redis_cluster import is_cluster, shared_redis
from features.ml.definitions import CONTENT, TRENDING_WINDOW_DAYS, USER
from features.store import DEFAULT_TTL_SECONDS, FeatureBatch, FeatureStore, ttl_for
from recommendations.models import ModelVersion
from recommendations.serving.process_status import serving_processes
from staff import selectors
from staff.selectors import age_of
from users.models import Profile

log = logging.getLogger(__name__)

FRESHNESS_SAMPLE = 1_000  # profiles (and titles) sampled: ±3 points on the share at 95 %, one MGET of 1,000 keys
VIEW_COUNT_CHECKS = 200  # sampled titles whose 7-day count is recounted: one GROUP BY over their week's viewings
# What the default schedules promise (tasks/schedules.py): title features every 5 min, every profile hourly.
SCHEDULED_REFRESH_SECONDS = DEFAULT_TTL_SECONDS
WORKER_PING_SECONDS = 0.25  # a worker answers a ping in milliseconds unless it is down or busy in a solo pool
BROKER_TIMEOUT_SECONDS = 0.5
OK, DEGRADED, DOWN, NOT_USED = "ok", "degraded", "down", "not used"


def health_report(*, store: FeatureStore | None = None, sample_seed: int | None = None) -> dict[str, Any]:
    """Every check, with an overall status: "down" if the database is, "degraded" if any other check fails."""
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=1) as pool:
        worker = pool.submit(_timed, worker_check)  # waits on the network, so it overlaps the other checks
        checks = {
            "database": _timed(database_check),
            "redis": _timed(redis_check),
            "broker": _timed(broker_check),
            "replicas": _timed(replicas_check),
        }
        checks["worker"] = worker.result()
    store = store or FeatureStore()
    freshness = {
        USER: feature_freshness(entity_type=USER, store=store, seed=sample_seed),
        CONTENT: feature_freshness(entity_type=CONTENT, store=store, seed=sample_seed),
    }
    models = active_models()

    def serving_processes_listed() -> dict[str, Any]:
        return serving_processes_check(active=models)

    processes = _timed(serving_processes_listed)
    statuses = [c["status"] for c in checks.values()] + [processes["status"]]
    overall = (
        DOWN
        if checks["database"]["status"] == DOWN
        else (DEGRADED if DOWN in statuses or DEGRADED in statuses or not models else OK)
    )
    return {
        "status": overall,
        "checked_at": timezone.now().isoformat(timespec="seconds"),
        "checks": checks,
        "models": models,
        "processes": processes,
        "feature_freshness": freshness,
        "cache": cache_stats(),
        "duration_ms": round((time.perf_counter() - started) * 1000, 1),
    }


def _timed(check: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        result = check()
    except Exception as error:  # a health check reports every failure, whatever its kind
        log.warning("health check %s failed", check.__name__, exc_info=True)
        result = {"status": DOWN, "detail": f"{type(error).__name__}: {error}"}
    result["ms"] = round((time.perf_counter() - started) * 1000, 1)
    return result


def database_check() -> dict[str, Any]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return {"status": OK, "detail": connection.vendor}


def redis_check() -> dict[str, Any]:
    client = shared_redis()
    if client is None:
        return {"status": NOT_USED, "detail": "no REDIS_URL: local-memory caches, online features in the database"}
    if not is_cluster(client):
        client.ping()
        return {"status": OK, "detail": "ping answered"}
    nodes = _cluster_nodes_pinged(client)
    masters = [n for n in nodes if n["role"] == "primary"]
    down = [n["node"] for n in masters if not n["ok"]]
    status = DOWN if len(down) == len(masters) else DEGRADED if down else OK
    detail = f"cluster: {len(masters) - len(down)} of {len(masters)} masters answer" + (
        f"; unreachable: {', '.join(down)} (the profiles on their slots are served degraded)" if down else ""
    )
    return {"status": status, "detail": detail, "nodes": nodes}


def _cluster_nodes_pinged(client) -> list[dict[str, Any]]:
    """Every node of the client's slot map, masters first, each pinged on its own connection (its breaker)."""
    nodes = []
    for node in sorted(client.get_nodes(), key=lambda n: (n.server_type != "primary", n.name)):
        try:
            node.redis_connection.ping()
            ok, error = True, ""
        except Exception as failure:  # reported per node
            ok, error = False, f"{type(failure).__name__}: {failure}"
        nodes.append({"node": node.name, "role": node.server_type, "ok": ok, "error": error})
    return nodes


def replicas_check() -> dict[str, Any]:
    """This process's view of the read replicas (config/db/replicas.py's background monitor): never a query
    here, so a lagging replica cannot slow the page. A replica out of use sends its reads to the primary:
    nothing is lost, the primary carries more."""
    from config.db.replicas import lag_limit_seconds, monitor, replica_aliases

    aliases = replica_aliases()
    if not aliases:
        return {"status": NOT_USED, "detail": "no DATABASE_REPLICA_URLS: every read on the primary"}
    states = {state.alias: state for state in monitor.states()}
    replicas = [
        {
            "alias": alias,
            "usable": state.usable,
            "lag_ms": None if state.lag_seconds is None else round(state.lag_seconds * 1000, 1),
            "error": state.error,
        }
        if (state := states.get(alias))
        else {"alias": alias, "usable": False, "lag_ms": None, "error": "not checked yet by this process"}
        for alias in aliases
    ]
    out = [r["alias"] for r in replicas if not r["usable"]]
    detail = f"{len(aliases) - len(out)} of {len(aliases)} replicas serve reads (lag limit {lag_limit_seconds():g} s)"
    if out:
        detail += f"; out of use: {', '.join(out)} (their reads go to the primary)"
    return {"status": DEGRADED if out else OK, "detail": detail, "replicas": replicas}


def broker_check() -> dict[str, Any]:
    if not settings.CELERY_BROKER_URL:
        return {"status": NOT_USED, "detail": "no CELERY_BROKER_URL: tasks run eagerly in the web process"}
    from config.celery import app

    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, interval_start=0, timeout=BROKER_TIMEOUT_SECONDS)
        conn.default_channel  # opens a channel: the broker really answers  # noqa: B018
    return {"status": OK, "detail": conn.as_uri()}


def worker_check() -> dict[str, Any]:
    if not settings.CELERY_BROKER_URL:
        return {"status": NOT_USED, "detail": "eager mode: no worker needed"}
    from config.celery import app

    replies = app.control.ping(timeout=WORKER_PING_SECONDS, limit=1)
    if not replies:
        return {"status": DOWN, "detail": f"no worker answered a ping within {WORKER_PING_SECONDS} s"}
    return {"status": OK, "detail": ", ".join(name for reply in replies for name in reply)}


def active_models() -> list[dict[str, Any]]:
    """The active version of each kind and how old it is (since activation, and since training)."""
    now = timezone.now()
    return [
        {
            "kind": v.kind,
            "version": v.version,
            "activated_at": v.activated_at and v.activated_at.isoformat(),
            "age": age_of(v.activated_at, now=now),
            "trained_age": age_of(v.created_at, now=now),
            "ndcg_at_10": v.metrics.get("ndcg_at_10"),
        }
        for v in ModelVersion.objects.filter(status=ModelVersion.Status.ACTIVE).order_by("kind")
    ]


def serving_processes_check(*, active: list[dict[str, Any]]) -> dict[str, Any]:
    """What each web process says it serves (versions, checksums, failed loads, changed files), published to the
    cache by its monitor within the last two minutes; "degraded" if one reports a failed load or a changed
    file. `behind` names the kinds a process serves at another version than the active one (a swap under
    way, or an idle worker that has not checked yet)."""
    processes = serving_processes()
    wanted = {m["kind"]: m["version"] for m in active}
    degraded = 0
    for process in processes:
        serving = {m["kind"]: m["version"] for m in process.get("models", [])}
        process["behind"] = sorted(kind for kind, version in wanted.items() if serving.get(kind) != version)
        process["status"] = DEGRADED if process.get("failures") or process.get("problems") else OK
        degraded += process["status"] == DEGRADED
        for model in process.get("models", []):
            model["checksum_short"] = model.get("checksum", "")[:12]
    if not processes:
        detail = (
            "no web process has published its status within two minutes (their monitor runs under "
            "gunicorn -c config/gunicorn.py; on local-memory caches a process sees only itself)"
        )
    else:
        detail = f"{len(processes)} processes on {len({p.get('host') for p in processes})} hosts" + (
            f"; {degraded} report a failed load or a changed artifact" if degraded else ""
        )
    return {"status": DEGRADED if degraded else OK, "detail": detail, "list": processes}


def feature_freshness(*, entity_type: str, store: FeatureStore, seed: int | None = None) -> dict[str, Any]:
    """Of a random sample of profiles (or titles): the share whose online features are present, the share
    refreshed recently enough (within the TTL where a beat refreshes them; within the default schedule's
    interval where none runs), and the median age. For titles, also whether the stored 7-day view counts still
    match the history. Three indexed queries and one MGET, whatever the table's size."""
    model = Profile if entity_type == USER else Title
    ttl = ttl_for(entity_type)
    beat = bool(settings.CELERY_BROKER_URL)  # without a broker no beat runs: the embedded TTL is a week
    fresh_within = ttl if beat else min(ttl, SCHEDULED_REFRESH_SECONDS[entity_type])
    result: dict[str, Any] = {
        "sampled": 0,
        "present_share": None,
        "fresh_share": None,
        "median_age_seconds": None,
        "ttl_seconds": ttl,
        "fresh_within_seconds": fresh_within,
        "beat": beat,
    }
    bounds = model.objects.aggregate(low=Min("id"), high=Max("id"))
    if bounds["low"] is None:
        return result
    rng = np.random.default_rng(seed)
    draws = rng.integers(bounds["low"], bounds["high"] + 1, size=FRESHNESS_SAMPLE)
    ids = list(model.objects.filter(pk__in=np.unique(draws).tolist()).values_list("id", flat=True))
    batch = store.get_many(entity_type, ids)
    found = batch.found
    ages = time.time() - batch.computed_at  # NaN where not found, which counts as not fresh
    fresh = found & (np.nan_to_num(ages, nan=np.inf) <= fresh_within)
    result.update(
        {
            "sampled": len(ids),
            "present_share": round(float(found.mean()), 4) if len(ids) else None,
            "fresh_share": round(float(fresh.mean()), 4) if len(ids) else None,
            "median_age_seconds": round(float(np.median(ages[found])), 1) if found.any() else None,
            "store_unavailable": batch.store_unavailable,
        }
    )
    if entity_type == CONTENT and found.any():
        result["view_counts"] = view_counts_check(batch, rng=rng)
    return result


def view_counts_check(
    batch: FeatureBatch, *, rng: np.random.Generator, now: dt.datetime | None = None
) -> dict[str, Any]:
    """Up to VIEW_COUNT_CHECKS present titles: their stored view_count_7d against the history's 7 days to now
    (new viewings, or the week moving on since the refresh, make it stale whatever the TTL says)."""
    now = now or timezone.now()
    present = np.flatnonzero(batch.found)
    present = rng.permutation(present)[:VIEW_COUNT_CHECKS]
    ids, stored = batch.ids[present], np.rint(batch.column("view_count_7d")[present]).astype(np.int64)
    counted = selectors.title_views_between(
        title_ids=ids.tolist(), start=now - dt.timedelta(days=TRENDING_WINDOW_DAYS), end=now
    )
    actual = np.array([counted.get(int(title_id), 0) for title_id in ids], dtype=np.int64)
    stale = stored != actual
    worst = None
    if stale.any():
        at = int(np.argmax(np.abs(stored - actual)))
        worst = {
            "title_id": int(ids[at]),
            "name": Title.objects.filter(pk=int(ids[at])).values_list("name", flat=True).first(),
            "stored": int(stored[at]),
            "actual": int(actual[at]),
        }
    return {
        "checked": len(ids),
        "stale": int(stale.sum()),
        "stale_share": round(float(stale.mean()), 4),
        "worst": worst,
    }


def cache_stats() -> dict[str, Any]:
    """Redis's own keyspace hit rate since it started (every cache read: responses, features, rules versions).

    The response cache keeps no counters of its own, so this is the server-wide rate."""
    try:
        client = shared_redis()
        if client is None:
            return {"hit_rate": None, "detail": "local-memory caches keep no statistics"}
        if is_cluster(client):  # the masters that answer, summed
            per_node = []
            for node in client.get_primaries():
                try:
                    per_node.append(node.redis_connection.info("stats"))
                except Exception:
                    log.info("cache stats: %s unreachable", node.name)
        else:
            per_node = [client.info("stats")]
    except Exception as error:  # reported, like every check
        return {"hit_rate": None, "detail": f"{type(error).__name__}: {error}"}
    hits = sum(int(stats.get("keyspace_hits", 0)) for stats in per_node)
    misses = sum(int(stats.get("keyspace_misses", 0)) for stats in per_node)
    rate = hits / (hits + misses) if hits + misses else math.nan
    return {
        "hit_rate": None if math.isnan(rate) else round(rate, 4),
        "hits": hits,
        "misses": misses,
        "detail": "Redis keyspace hits / (hits + misses) since the server started",
    }
