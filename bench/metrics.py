#!/usr/bin/env python
"""What the Prometheus metrics cost and whether they say what Server-Timing says (#18).

    flock /tmp/reco-heavy.lock .venv/bin/python bench/metrics.py --json bench/results/metrics.json

1. In-process: the same profiles through RecommendationEngine (response cache off) with metrics recorded and
   not (RECO_METRICS flipped between the two passes of every profile, the order alternating), p50/p95/p99 of
   each and the p50 difference; and the recording calls alone, timed in a loop.
2. Over HTTP: gunicorn as production runs it (config/gunicorn.py, 2 workers, PROMETHEUS_MULTIPROC_DIR),
   --http-requests to /api/recs while a thread scrapes /metrics every second; each stage's histogram sum
   (the growth between the first and the last scrape) against the sum of that stage in the Server-Timing
   headers, and the same for the request count.
Needs a database with active models (default reco_h3; bench/train_models.py or `manage.py train_models`).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
from _machine import calibration  # bench/, on sys.path as the script's folder
from _server import start_gunicorn, wait_ready

ROOT = Path(__file__).resolve().parent.parent
KEY = "bench-metrics-key-0123456789abcdef"
PORT = 8093


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default="postgres://reco:reco@127.0.0.1:5432/reco_h3")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/5")
    parser.add_argument("--artifact-dir", default="/tmp/reco-h3-artifacts")
    parser.add_argument("--serving-cache-dir", default="/tmp/reco-h3-serving-cache")
    parser.add_argument("--requests", type=int, default=4_000, help="in-process profiles (each served twice)")
    parser.add_argument("--http-requests", type=int, default=1_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    os.environ.update(
        DATABASE_URL=args.database_url,
        REDIS_URL=args.redis_url,
        RECO_ARTIFACT_DIR=args.artifact_dir,
        RECO_SERVING_CACHE_DIR=args.serving_cache_dir,
        DJANGO_SETTINGS_MODULE="config.settings.base",
        LOG_LEVEL="WARNING",
        RECO_RESPONSE_CACHE_SECONDS="0",
    )
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    machine = calibration()
    print(f"machine calibration: {machine}")
    profiles = _profiles(args)
    figures = {
        "database": args.database_url.rsplit("/", 1)[1],
        "machine": machine,
        "in_process": _in_process(profiles[: args.requests]),
        "http": _over_http(args, profiles[: args.http_requests]),
    }
    figures["memory_max_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(json.dumps(figures, indent=2))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


def _profiles(args) -> list[int]:
    """Random profiles with their user features refreshed (and every title's)."""
    from django.db import connection

    from features import services as feature_services
    from features.store import FeatureStore

    with connection.cursor() as cursor:
        cursor.execute("SELECT min(id), max(id), count(*) FROM users_profile")
        low, high, _ = cursor.fetchone()
        cursor.execute("SELECT max(last_watched_at) FROM users_viewingevent")
        (newest,) = cursor.fetchone()
        cursor.execute("SELECT id FROM users_profile")
        ids = np.array([row[0] for row in cursor.fetchall()], np.int64)
    store = FeatureStore()
    feature_services.content_features_refresh(as_of=newest, store=store)
    feature_services.user_features_refresh(profile_id_start=low, profile_id_end=high + 1, as_of=newest, store=store)
    rng = np.random.default_rng(args.seed)
    return [int(i) for i in rng.choice(ids, size=min(len(ids), max(args.requests, args.http_requests)), replace=False)]


def _summary(values) -> dict[str, float]:
    values = np.asarray(values, float)
    return {
        "p50": round(float(np.percentile(values, 50)), 3),
        "p95": round(float(np.percentile(values, 95)), 3),
        "p99": round(float(np.percentile(values, 99)), 3),
        "mean": round(float(values.mean()), 3),
        "n": len(values),
    }


def _in_process(profiles: list[int]) -> dict:
    from django.conf import settings

    from config.observability import metrics
    from recommendations.serving.context import UserContext
    from recommendations.serving.engine import RecommendationEngine
    from recommendations.serving.state import serving_state

    engine = RecommendationEngine(use_cache=False)
    for profile_id in profiles[:50]:  # warm-up: models loaded, pages touched
        engine.recommend(context=UserContext(profile_id=profile_id), n=20)
    timed: dict[bool, list[float]] = {True: [], False: []}
    started = time.perf_counter()
    for number, profile_id in enumerate(profiles):
        for recording in (True, False) if number % 2 else (False, True):
            settings.RECO_METRICS = recording
            t0 = time.perf_counter()
            result = engine.recommend(context=UserContext(profile_id=profile_id), n=20)
            timed[recording].append((time.perf_counter() - t0) * 1000)
    wall = time.perf_counter() - started
    settings.RECO_METRICS = True
    # The recording calls alone, on the last answer's figures, as in an answer whose inputs are sampled.
    models = serving_state.models()
    loops = 20_000
    proposed = np.ones((500, 5), bool)
    t0 = time.perf_counter()
    for _ in range(loops):
        metrics.recommendation_observe(result.timings_ms, cache_state="off", degraded=result.degraded)
        metrics.candidates_observe(
            ("collaborative", "trending", "continue_watching", "similar_to_watched", "new_releases"),
            proposed.sum(axis=0),
        )
        metrics.feature_age_observe("user", time.time() - 60)
        metrics.feature_age_observe("content", time.time() - 60)
        metrics.models_served(models)  # unchanged: an identity check
    calls_us = (time.perf_counter() - t0) / loops * 1e6
    on, off = _summary(timed[True]), _summary(timed[False])
    paired = np.array(timed[True]) - np.array(timed[False])  # the same profile, one pass each way
    return {
        "with_metrics_ms": on,
        "without_metrics_ms": off,
        "p50_added_ms": round(on["p50"] - off["p50"], 3),
        "median_paired_difference_ms": round(float(np.median(paired)), 3),
        "recording_calls_sampled_answer_us": round(calls_us, 2),
        "input_sample": settings.RECO_METRICS_INPUT_SAMPLE,
        "answers_per_second": round(2 * len(profiles) / wall, 1),
    }


def _get(path: str, headers: dict | None = None) -> tuple[int, dict, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", PORT, timeout=10)
    try:
        connection.request("GET", path, headers=headers or {})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def _stage_sums(text: str) -> tuple[dict[str, float], float]:
    from prometheus_client.parser import text_string_to_metric_families

    sums, count = {}, 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "reco_engine_stage_seconds_sum":
                sums[sample.labels["stage"]] = sample.value * 1000
            elif (
                sample.name == "reco_http_request_duration_seconds_count"
                and sample.labels.get("endpoint") == "/api/recs"
            ):
                count += sample.value
    return sums, count


def _over_http(args, profiles: list[int]) -> dict:
    import tempfile

    from recommendations.models import ApiClient

    ApiClient.objects.filter(name="bench-metrics").delete()
    ApiClient.issue("bench-metrics", key=KEY, rate="1000000/min")
    metrics_dir = tempfile.mkdtemp(prefix="reco-bench-prometheus-")
    env = {
        **os.environ,
        "PROMETHEUS_MULTIPROC_DIR": metrics_dir,
        "RECO_RESPONSE_CACHE_SECONDS": "0",
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "GUNICORN_CMD_ARGS": "--no-control-socket",
    }
    server = start_gunicorn(PORT, 2, env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    scrapes: list[tuple[float, str]] = []
    done = threading.Event()

    def scrape() -> None:
        while True:
            status, _, body = _get("/metrics")
            assert status == 200, body[:300]
            scrapes.append((time.monotonic(), body.decode()))
            if done.wait(1.0):
                return

    try:
        wait_ready(PORT, seconds=120)
        for profile_id in profiles[:20]:  # both workers warm
            _get(f"/api/recs?profile_id={profile_id}&n=20", {"X-Api-Key": KEY})
        status, _, body = _get("/metrics")
        first_sums, first_count = _stage_sums(body.decode())
        scraper = threading.Thread(target=scrape, daemon=True)
        scraper.start()
        said: dict[str, float] = {}
        latency = []
        for profile_id in profiles:
            t0 = time.perf_counter()
            status, headers, _ = _get(f"/api/recs?profile_id={profile_id}&n=20", {"X-Api-Key": KEY})
            latency.append((time.perf_counter() - t0) * 1000)
            assert status == 200, status
            for part in headers["Server-Timing"].split(", "):
                name, ms = part.split(";dur=")
                said[name] = said.get(name, 0.0) + float(ms)
        done.set()
        scraper.join()
        status, _, body = _get("/metrics")
        last_sums, last_count = _stage_sums(body.decode())
    finally:
        server.terminate()
        server.wait(timeout=30)
    stages = {}
    rounding = 0.005 * len(profiles)  # the header prints each stage to 0.01 ms
    for stage, ms in said.items():
        if stage == "total":
            continue
        scraped = last_sums.get(stage, 0.0) - first_sums.get(stage, 0.0)
        stages[stage] = {
            "server_timing_ms": round(ms, 2),
            "metrics_ms": round(scraped, 2),
            "difference_pct": round(100 * (scraped - ms) / ms, 3) if ms else None,
            "within_10pct_or_rounding": abs(scraped - ms) <= max(0.1 * ms, rounding),
        }
    return {
        "requests": len(profiles),
        "scrapes_during_run": len(scrapes),
        "requests_counted": last_count - first_count,
        "header_rounding_bound_ms": rounding,
        "stages": stages,
        "all_stages_match": all(s["within_10pct_or_rounding"] for s in stages.values()),
        "client_latency_ms": _summary(latency),
    }


if __name__ == "__main__":
    main()
