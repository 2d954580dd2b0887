#!/usr/bin/env python
"""Benchmark the feature store on a loaded database: full and incremental refresh, request-path reads.

    .venv/bin/python bench/features.py                                   # reco_bench (1M profiles, 50M events)
    .venv/bin/python bench/features.py --database-url postgres://reco:reco@127.0.0.1:5432/reco_feat_bench

Prints (and with --json writes) the full refresh time (the content refresh as its 5-minute job runs it, from
the daily title rollups, then every user shard of USER_CHUNK_PROFILES profiles over --processes worker
processes, as the sharded Celery refresh spreads them) and its peak memory, the incremental refresh of the profiles active in the hour before --as-of, and
p50/p95/p99 of one profile plus --titles titles read in one round trip, over --reads reads. --as-of
defaults to the newest last_watched_at in the data, so "the last hour" has viewers in a loaded dataset.
Features go to the Redis named by --redis-url under --namespace, and expire with their TTLs.

The request-path read is measured twice: with the title features in process memory (the matrix the content
refresh announces; a request then reads only its profile's payload) and without (the per-title MGET):

    .venv/bin/python bench/features.py --synthetic 100000 --reads 5000            # one Redis, no database work
    .venv/bin/python bench/features.py --synthetic 100000 --reads 5000 --cluster  # a private 3+3 Redis Cluster

--synthetic N writes N titles and 10,000 profiles of made-up features straight into the store (no database
reads, no refresh): the read latency at catalog scale in well under a minute.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import multiprocessing as mp
import os
import resource
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default="postgres://reco:reco@127.0.0.1:5432/reco_bench")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/14")
    parser.add_argument("--namespace", default="fs-bench", help="key namespace in Redis (default fs-bench)")
    parser.add_argument("--as-of", type=dt.datetime.fromisoformat, help="ISO time, UTC (default: newest viewing)")
    parser.add_argument("--reads", type=int, default=2_000)
    parser.add_argument("--processes", type=int, default=2, help="processes sharing the user shards (default 2)")
    parser.add_argument("--titles", type=int, default=500, help="titles per request read (default 500)")
    parser.add_argument("--snapshots", action="store_true", help="also time the offline Parquet snapshots")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument(
        "--synthetic",
        type=int,
        metavar="TITLES",
        help="only time request reads, on this many made-up titles (and 10,000 profiles)",
    )
    parser.add_argument("--cluster", action="store_true", help="on a private 3+3 Redis Cluster the script starts")
    args = parser.parse_args()

    os.environ.update(
        DATABASE_URL=args.database_url, REDIS_URL=args.redis_url, DJANGO_SETTINGS_MODULE="config.settings.base"
    )
    sys.path.insert(0, str(ROOT))
    with contextlib.ExitStack() as stack:
        if args.cluster:
            from tests.clusterkit import redis_cluster

            os.environ["REDIS_CLUSTER_URLS"] = ",".join(stack.enter_context(redis_cluster()).urls)
        import django

        django.setup()
        if args.synthetic:
            figures = _synthetic_reads(args)
        else:
            figures = _loaded(args)
    print(json.dumps(figures, indent=2))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


def _loaded(args) -> dict:
    from features import selectors, services
    from features.store import FeatureStore

    store = FeatureStore(namespace=args.namespace)
    counts = _counts()
    as_of = args.as_of.replace(tzinfo=dt.UTC) if args.as_of else _newest_viewing()
    figures: dict = {"database": args.database_url.rsplit("/", 1)[1], "rows": counts, "as_of": as_of.isoformat()}
    baseline_gib = _peak_gib()

    from bench._machine import calibration

    figures["machine"] = calibration()
    started = time.perf_counter()
    content_phases: dict = {}
    content_rows = services.content_features_refresh(store=store, timings=content_phases)  # the job's path: now
    content_seconds = time.perf_counter() - started
    shards = services.user_features_shards(shard_size=services.USER_CHUNK_PROFILES)
    from django.db import connections

    connections.close_all()  # before forking: each pool process opens its own
    with ProcessPoolExecutor(args.processes, mp_context=mp.get_context("fork")) as pool:
        done = list(pool.map(_user_shard, [(start, end, as_of, args.namespace) for start, end in shards]))
    full_seconds = time.perf_counter() - started
    user_rows = sum(rows for rows, _, _ in done)
    figures["full_refresh"] = {
        "seconds": round(full_seconds, 1),
        "content_seconds": round(content_seconds, 1),
        "content_phases_s": content_phases,
        "user_seconds": round(full_seconds - content_seconds, 1),
        "processes": args.processes,
        "shards": len(shards),
        "shard_seconds_p50": round(float(np.median([seconds for _, seconds, _ in done])), 2),
        "content_rows": content_rows,
        "user_rows": user_rows,
        "peak_rss_gib": round(_peak_gib(), 2),
        "worker_peak_rss_gib": round(max(peak for _, _, peak in done), 2),
        "peak_rss_before_gib": round(baseline_gib, 2),
    }
    print(json.dumps(figures["full_refresh"]), flush=True)

    started = time.perf_counter()
    recent_rows = services.user_features_refresh_recent(since=as_of - dt.timedelta(hours=1), as_of=as_of, store=store)
    figures["incremental_refresh_last_hour"] = {"seconds": round(time.perf_counter() - started, 2), "rows": recent_rows}

    figures["request_read_ms"] = _request_reads(store, args.reads, args.titles, selectors)
    if args.snapshots:
        with tempfile.TemporaryDirectory() as directory:
            figures["offline_snapshot_seconds"] = {
                entity: _timed(
                    lambda e=entity: services.offline_snapshot_write(entity_type=e, as_of=as_of, location=directory)
                )
                for entity in ("content", "user")
            }
    figures["peak_rss_gib"] = round(_peak_gib(), 2)
    return figures


def _user_shard(job: tuple) -> tuple[int, float, float]:
    """One shard in a pool process: (rows written, seconds, the process's peak RSS GiB)."""
    from features import services
    from features.store import FeatureStore

    start, end, as_of, namespace = job
    started = time.perf_counter()
    rows = services.user_features_refresh(
        profile_id_start=start, profile_id_end=end, as_of=as_of, store=FeatureStore(namespace=namespace)
    )
    return rows, time.perf_counter() - started, _peak_gib()


def _synthetic_reads(args) -> dict:
    """Request reads against N made-up titles and 10,000 profiles written straight into the store."""
    from features.ml.definitions import CONTENT_FEATURES, USER_FEATURES
    from features.store import FeatureStore

    store = FeatureStore(namespace=f"{args.namespace}-{os.getpid()}")
    rng = np.random.default_rng(0)
    title_ids = np.arange(1, args.synthetic + 1, dtype=np.int64)
    profile_ids = np.arange(1, 10_001, dtype=np.int64)
    titles = rng.random((len(title_ids), CONTENT_FEATURES.width), dtype=np.float32)
    store.set_many("user", profile_ids, rng.random((len(profile_ids), USER_FEATURES.width), dtype=np.float32))
    store.set_many("content", title_ids, titles)
    figures: dict = {"backend": store.backend.name, "titles": len(title_ids), "profiles": len(profile_ids)}
    figures["request_read_mget_ms"] = _request_reads(store, args.reads, args.titles, None, title_ids, profile_ids)
    started = time.perf_counter()
    store.publish_matrix("content", title_ids, titles)
    figures["matrix_publish_seconds"] = round(time.perf_counter() - started, 3)
    store.titles.expire_check()
    started = time.perf_counter()
    store.titles.current(store.backend)
    figures["matrix_load_seconds"] = round(time.perf_counter() - started, 3)
    figures["request_read_in_process_titles_ms"] = _request_reads(
        store, args.reads, args.titles, None, title_ids, profile_ids
    )
    matrix = store.titles.matrix
    figures["matrix_mib"] = round((matrix.values.nbytes + matrix.ids.nbytes) / 2**20, 1)
    client = store.backend.client  # the made-up features go again (they would expire with their TTLs anyway)
    for keys in _batched(client.scan_iter(f"{store.namespace}:*", count=10_000), 10_000):
        client.delete(*keys)
    return figures


def _batched(items, size: int):
    batch = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _request_reads(store, reads: int, titles: int, selectors, title_ids=None, profile_ids=None) -> dict:
    """Latency of get_request_features: one random profile plus `titles` random titles (from process memory when
    a fresh title matrix is announced, else one MGET)."""
    rng = np.random.default_rng(0)
    if title_ids is None:
        from catalog.models import Title

        title_ids = np.fromiter(Title.objects.values_list("id", flat=True), dtype=np.int64)
        low, high = selectors.profile_id_bounds()
    else:
        low, high = int(profile_ids[0]), int(profile_ids[-1])
    for _ in range(20):  # warm the connection and the code paths
        store.get_request_features(int(rng.integers(low, high + 1)), rng.choice(title_ids, titles, replace=False))
    timings = np.empty(reads)
    found = 0
    for i in range(reads):
        profile_id = int(rng.integers(low, high + 1))
        candidates = rng.choice(title_ids, min(titles, len(title_ids)), replace=False)
        started = time.perf_counter()
        read = store.get_request_features(profile_id, candidates)
        timings[i] = time.perf_counter() - started
        found += int(read.content.found.sum())
    p50, p95, p99 = np.percentile(timings * 1000, [50, 95, 99])
    return {
        "reads": reads,
        "titles": titles,
        "p50": round(p50, 2),
        "p95": round(p95, 2),
        "p99": round(p99, 2),
        "content_found_share": round(found / (reads * titles), 3),
    }


def _counts() -> dict:
    from django.db import connection

    with connection.cursor() as cursor:
        counts = {}
        for table in ("catalog_title", "users_profile"):
            cursor.execute(f"SELECT count(*) FROM {table}")
            counts[table] = cursor.fetchone()[0]
        # The planner's estimate (after ANALYZE): count(*) over 50M rows takes a while.
        cursor.execute("SELECT reltuples::bigint FROM pg_class WHERE relname = 'users_viewingevent'")
        counts["users_viewingevent (estimate)"] = int(cursor.fetchone()[0])
    return counts


def _newest_viewing() -> dt.datetime:
    from django.db import connection

    # One index probe per profile (viewing_profile_recent_idx) instead of scanning 50M rows.
    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT max(newest) FROM users_profile p CROSS JOIN LATERAL (
                   SELECT last_watched_at AS newest FROM users_viewingevent v WHERE v.profile_id = p.id
                   ORDER BY v.last_watched_at DESC LIMIT 1) latest"""
        )
        return cursor.fetchone()[0]


def _timed(work) -> float:
    started = time.perf_counter()
    work()
    return round(time.perf_counter() - started, 1)


def _peak_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


if __name__ == "__main__":
    main()
