#!/usr/bin/env python
"""Benchmark /api/recs over HTTP: gunicorn on this machine, an open-loop load at fixed rates.

    .venv/bin/python bench/http_load.py                          # reco_bench, 2 workers, 50 rps then a ramp
    .venv/bin/python bench/http_load.py --workers 1 2 4 --rates 50 --seconds 20   # memory per worker count

For each worker count: start gunicorn with config/gunicorn.py (sync workers forked from a master that has
loaded the models; --no-preload: workers that load their own) on the database, issue an API key, warm every
worker up, then send requests at each --rates value (open loop: a request leaves on schedule whether or not the
last one came back, so queueing shows in the latency) for --seconds, over random profiles, the response
cache off (--cache to leave it on). Prints p50/p95/p99, achieved throughput and errors per rate, the
highest rate whose p99 (and every lower rate's) stayed under --p99-budget ms, and the memory of the workers
and their master: RSS and PSS (proportional set size: pages shared between processes, such as the memory-mapped
models and what the master loaded before forking, are split among them), from /proc.

Slow requests (over --slow-ms) are explained per rate: how many, when (seconds into the run, to see whether
they cluster), how much of their latency the engine itself spent (the Server-Timing total) and how much was
spent waiting (queued behind a busy worker, in the kernel, in this client), beside the longest garbage
collection in this client, the CPU time the hypervisor took from this VM (steal, /proc/stat) and the buffers
PostgreSQL's checkpoints wrote during the rate.
"""

from __future__ import annotations

import argparse
import gc
import http.client
import json
import os
import queue
import signal
import sys
import threading
import time
from pathlib import Path

import numpy as np
from _machine import calibration  # bench/, on sys.path as the script's folder
from _server import add_service_arguments, service_env, start_gunicorn, wait_ready

ROOT = Path(__file__).resolve().parent.parent
PORT = 8765
WARM_UP_RATE, WARM_UP_SECONDS = 20, 10  # the discarded load that ends the warm-up
KEY = "bench-http-load-key-0123456789"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_service_arguments(parser)
    parser.add_argument("--workers", type=int, nargs="+", default=[2])
    parser.add_argument("--rates", type=int, nargs="+", default=[50, 75, 100, 125, 150, 200])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--p99-budget", type=float, default=50.0)
    parser.add_argument("--cache", action="store_true", help="leave the response cache on")
    parser.add_argument(
        "--no-preload",
        action="store_true",
        help="workers load the app and models themselves, instead of forking a warm master",
    )
    parser.add_argument("--slow-ms", type=float, default=100.0, help="a request slower than this is explained")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    env = service_env(
        args,
        LOG_LEVEL="WARNING",
        RECO_RESPONSE_CACHE_SECONDS="600" if args.cache else "0",
        GUNICORN_PRELOAD="0" if args.no_preload else "1",
    )
    profiles = _profiles(env)
    _issue_key(env)
    results = {
        "database": args.database_url.rsplit("/", 1)[1],
        "cache": args.cache,
        "machine": calibration(),
        "runs": [],
    }
    print(f"machine calibration: {results['machine']}")
    for workers in args.workers:
        server = start_gunicorn(PORT, workers, env, "--log-level", "warning")
        try:
            wait_ready(PORT)
            _warm_up(profiles, workers)
            run = {"workers": workers, "rates": []}
            for rate in args.rates:
                figures = _load(profiles, rate, args.seconds, args.slow_ms)
                run["rates"].append(figures)
                print(json.dumps({"workers": workers, **figures}))
            run["memory"] = _memory(server.pid)
            run["max_rate_within_budget"] = _max_rate_within(run["rates"], args.p99_budget)
            results["runs"].append(run)
            print(
                json.dumps(
                    {
                        "workers": workers,
                        "memory": run["memory"],
                        "max_rate_within_budget": run["max_rate_within_budget"],
                    }
                )
            )
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n")


def _max_rate_within(rates: list[dict], p99_budget: float) -> int | None:
    """The highest rate such that it and every lower rate measured kept p99 under budget with no errors."""
    best = None
    for figures in sorted(rates, key=lambda r: r["rate"]):
        if figures["p99_ms"] >= p99_budget or figures["errors"]:
            break
        best = figures["rate"]
    return best


def _django(env: dict) -> None:
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def _profiles(env: dict) -> np.ndarray:
    _django(env)
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT id FROM users_profile TABLESAMPLE SYSTEM (2)")
        return np.array([r[0] for r in cursor.fetchall()], np.int64)


def _issue_key(env: dict) -> None:
    from recommendations.models import ApiClient

    ApiClient.objects.filter(name="bench-http-load").delete()
    ApiClient.issue("bench-http-load", key=KEY, rate="1000000/min")


def _get(connection: http.client.HTTPConnection, profile_id: int) -> tuple[int, float]:
    """The status and the engine's own milliseconds (the Server-Timing total; NaN without one)."""
    connection.request("GET", f"/api/recs?profile_id={profile_id}&n=20", headers={"X-Api-Key": KEY})
    response = connection.getresponse()
    response.read()
    timing = response.getheader("Server-Timing") or ""
    total = next((part.split("dur=")[1] for part in timing.split(", ") if part.startswith("total;")), "nan")
    return response.status, float(total)


def _warm_up(profiles: np.ndarray, workers: int) -> None:
    """Every worker loads the models and catalog (first requests are slow by design), then 10 s of
    discarded concurrent load, so that no worker meets the first measured rate cold (page faults into the
    memory-mapped arrays, the catalog's masks)."""
    connection = http.client.HTTPConnection("127.0.0.1", PORT, timeout=120)
    for profile_id in profiles[: 40 * workers]:
        _get(connection, int(profile_id))
        connection.close()  # a new connection: likely another worker
    _load(profiles[::-1], WARM_UP_RATE, WARM_UP_SECONDS)


def _load(profiles: np.ndarray, rate: int, seconds: float, slow_ms: float = 100.0) -> dict:
    """Open loop: `rate` requests a second on schedule, served by a pool of client threads."""
    total = int(rate * seconds)
    rng = np.random.default_rng(rate)
    chosen = rng.choice(profiles, size=total)
    jobs: queue.Queue = queue.Queue()
    samples, errors, lock = [], [0], threading.Lock()  # (scheduled, latency ms, engine ms)

    def client() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", PORT, timeout=30)
        while (job := jobs.get()) is not None:
            scheduled, profile_id = job
            try:
                status, engine_ms = _get(connection, profile_id)
            except OSError:
                connection = http.client.HTTPConnection("127.0.0.1", PORT, timeout=30)
                status, engine_ms = 0, float("nan")
            elapsed = (time.perf_counter() - scheduled) * 1000  # from the scheduled send: queueing included
            with lock:
                samples.append((scheduled, elapsed, engine_ms))
                errors[0] += status != 200

    threads = [threading.Thread(target=client, daemon=True) for _ in range(32)]
    for thread in threads:
        thread.start()
    steal_before, checkpoints_before = _steal_seconds(), _checkpoints()
    client_pauses = _GcPauses()
    start = time.perf_counter()
    for i, profile_id in enumerate(chosen):
        scheduled = start + i / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        jobs.put((scheduled, int(profile_id)))
    for _ in threads:
        jobs.put(None)
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    scheduled, values, engine_ms = (np.array(column) for column in zip(*samples, strict=True))
    return {
        "rate": rate,
        "requests": total,
        "achieved_rps": round(total / elapsed, 1),
        "errors": errors[0],
        "p50_ms": round(float(np.percentile(values, 50)), 2),
        "p95_ms": round(float(np.percentile(values, 95)), 2),
        "p99_ms": round(float(np.percentile(values, 99)), 2),
        "slow": _slow_requests(scheduled - start, values, engine_ms, slow_ms),
        "client_gc_ms_max": client_pauses.stop(),
        "steal_seconds": round(_steal_seconds() - steal_before, 2),
        "checkpoint_buffers_written": _checkpoints() - checkpoints_before,
    }


def _slow_requests(offsets: np.ndarray, latencies: np.ndarray, engine_ms: np.ndarray, slow_ms: float) -> dict:
    """How many requests took over slow_ms, when they left (seconds into the run), and their latency split
    into the engine's own time and the rest (queueing, kernel, client)."""
    slow = latencies > slow_ms
    if not slow.any():
        return {"count": 0}
    engine = np.nan_to_num(engine_ms[slow])
    return {
        "count": int(slow.sum()),
        "first_s": round(float(offsets[slow].min()), 2),
        "last_s": round(float(offsets[slow].max()), 2),
        "max_ms": round(float(latencies[slow].max()), 1),
        "engine_ms_median": round(float(np.median(engine)), 1),
        "engine_ms_max": round(float(engine.max()), 1),
        "waiting_ms_median": round(float(np.median(latencies[slow] - engine)), 1),
    }


class _GcPauses:
    """The longest garbage collection of this client process while it runs (a pause here delays every
    request in flight and would be charged to the server)."""

    def __init__(self) -> None:
        self.longest, self._started = 0.0, 0.0
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.longest = max(self.longest, time.perf_counter() - self._started)

    def stop(self) -> float:
        gc.callbacks.remove(self._callback)
        return round(self.longest * 1000, 1)


def _steal_seconds() -> float:
    """CPU seconds the hypervisor has taken from this VM since boot (all CPUs; /proc/stat's steal column)."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    return int(fields[8]) / os.sysconf("SC_CLK_TCK")


def _checkpoints() -> int:
    """Buffers PostgreSQL's checkpoints have written since its statistics were reset."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT buffers_checkpoint FROM pg_stat_bgwriter")
        return int(cursor.fetchone()[0])


def _memory(master_pid: int) -> dict:
    """RSS and PSS (MiB) of each worker and of the master, and the total PSS of them all: what the web tier
    costs (a preloaded master holds pages its workers share, so PSS splits them among all of them)."""

    def usage(pid: int | str) -> dict:
        rollup = Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()
        fields = {line.split(":")[0]: int(line.split()[1]) for line in rollup[1:] if line.split()[1].isdigit()}
        return {
            "rss_mib": round(fields["Rss"] / 1024, 1),
            "pss_mib": round(fields["Pss"] / 1024, 1),
            "shared_mib": round((fields.get("Shared_Clean", 0) + fields.get("Shared_Dirty", 0)) / 1024, 1),
        }

    workers = [usage(pid) for pid in Path(f"/proc/{master_pid}/task/{master_pid}/children").read_text().split()]
    master = usage(master_pid)
    return {
        "workers": workers,
        "master": master,
        "total_rss_mib": round(sum(w["rss_mib"] for w in workers), 1),
        "total_pss_mib": round(master["pss_mib"] + sum(w["pss_mib"] for w in workers), 1),
    }


if __name__ == "__main__":
    main()
