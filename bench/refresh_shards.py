#!/usr/bin/env python
"""Benchmark the sharded full user-feature refresh on real workers: 1 worker process against 2.

    .venv/bin/python bench/refresh_shards.py                                   # reco_bench, every profile
    .venv/bin/python bench/refresh_shards.py --database-url postgres://reco:reco@127.0.0.1:5432/reco_h2 \\
        --redis-url redis://127.0.0.1:6379/4 --profiles 150000 --json bench/results/refresh_shards_150k.json

For each --processes count it starts one `celery worker --pool prefork --concurrency N` on the broker
(RabbitMQ by default, durable quorum queues with a per-run name prefix, deleted at the end), sends
tasks.features.refresh_user_features for the first --profiles profiles in about --shards shards, and waits
for its parent JobRun to finish. Prints (and with --json writes) per count: the parent's seconds (fan-out to
last shard), rows/s, p50/p95/max shard seconds, the workers' peak RSS (main process plus pool, sampled every
0.2 s), the CPU seconds the pool used, how many cores the whole machine was busy on meanwhile (the workers,
PostgreSQL, Redis and anything else running: on a shared box the figure that says whether a run was
starved), and the ratio to one process; and the machine calibration (bench/_machine.py). A warm-up refresh of
the same profiles runs first, unmeasured, so that every count reads the history from a warm cache; with
--repeat the counts alternate (1, 2, 1, 2, ...) and the median run of each count is reported.
The features go to --redis-url (default namespace, expiring with their TTL).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DELAYED_DELIVERY = [f"celery_delayed_{level}" for level in range(28)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default="postgres://reco:reco@127.0.0.1:5432/reco_bench")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/14", help="the online store (and locks)")
    parser.add_argument("--broker-url", default="amqp://guest:guest@127.0.0.1:5672//")
    parser.add_argument("--profiles", type=int, help="refresh the first N profiles by id (default: all)")
    parser.add_argument("--shards", type=int, default=40, help="about this many shards (default 40)")
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2], help="worker process counts (1 2)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per process count, alternating (3)")
    parser.add_argument("--no-warm-up", action="store_true", help="skip the unmeasured first refresh")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds to wait for one refresh")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    prefix = f"reco-bench-{uuid.uuid4().hex[:6]}-"
    env = {
        **os.environ,
        "DATABASE_URL": args.database_url,
        "REDIS_URL": args.redis_url,
        "CELERY_BROKER_URL": args.broker_url,
        "CELERY_EXCHANGE": f"{prefix}jobs",
        "CELERY_DEFAULT_QUEUE": f"{prefix}default",
        **{
            f"CELERY_{group.upper()}_QUEUE": f"{prefix}{group}"
            for group in ("features", "training", "experiments", "housekeeping")
        },
        "DJANGO_SETTINGS_MODULE": "config.settings.base",
        "OMP_NUM_THREADS": "1",  # one thread per pool process: the processes are the parallelism
        "OPENBLAS_NUM_THREADS": "1",
    }
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from bench._machine import calibration

    figures: dict = {"database": args.database_url.rsplit("/", 1)[1], "broker": args.broker_url.split(":", 1)[0]}
    figures["calibration_before"] = calibration()
    profile_id_end, profiles = _profile_bound(args.profiles)
    shard_size = max(1, math.ceil((profile_id_end - _lowest_profile_id()) / args.shards))
    figures.update(profiles=profiles, shard_size=shard_size, profile_id_end=profile_id_end)
    existed = _delayed_delivery_exists(args.broker_url)
    try:
        if not args.no_warm_up:
            print(f"warm-up: {profiles:,} profiles with {max(args.processes)} processes", file=sys.stderr)
            _measure(env, prefix, max(args.processes), shard_size, profile_id_end, args.timeout)
        every: dict[int, list[dict]] = {count: [] for count in args.processes}
        for _ in range(args.repeat):
            for count in args.processes:
                run = _measure(env, prefix, count, shard_size, profile_id_end, args.timeout)
                every[count].append(run)
                print(
                    f"{count} process(es): {run['seconds']} s, machine busy on {run['machine_busy_cores']} cores",
                    file=sys.stderr,
                )
    finally:
        _delete_broker_entities(args.broker_url, prefix, delayed_delivery=not existed)
    runs = {count: sorted(done, key=lambda run: run["seconds"])[len(done) // 2] for count, done in every.items()}
    one = runs.get(1, {}).get("seconds")
    for run in runs.values():
        run["ratio_to_one_process"] = round(run["seconds"] / one, 3) if one else None
    figures["runs"] = {str(count): run for count, run in runs.items()}  # the median run of each count
    figures["all_seconds"] = {str(count): [run["seconds"] for run in done] for count, done in every.items()}
    figures["calibration_after"] = calibration()
    print(json.dumps(figures, indent=2))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


def _profile_bound(limit: int | None) -> tuple[int, int]:
    """(the id below which the first `limit` profiles lie, how many profiles that is)."""
    from django.db.models import Count, Max

    from users.models import Profile

    if limit:
        nth = Profile.objects.order_by("id").values_list("id", flat=True)[limit - 1 : limit]
        if nth:
            return nth[0] + 1, limit
    bounds = Profile.objects.aggregate(high=Max("id"), count=Count("id"))
    if not bounds["count"]:
        raise SystemExit("no profiles in this database: load a world first (manage.py generate_synthetic)")
    return bounds["high"] + 1, bounds["count"]


def _lowest_profile_id() -> int:
    from users.models import Profile

    return Profile.objects.order_by("id").values_list("id", flat=True).first()


def _measure(env: dict, prefix: str, processes: int, shard_size: int, profile_id_end: int, timeout: float) -> dict:
    from config.celery import app
    from config.queues import celery_queues
    from tasks.models import JobRun

    (features,) = celery_queues([f"{prefix}features"], exchange=f"{prefix}jobs", delivery_limit=10)
    with tempfile.NamedTemporaryFile(prefix="refresh-shards-", suffix=".log", delete=False) as log:
        worker = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "--pool",
                "prefork",
                "--concurrency",
                str(processes),
                "--queues",
                features.name,
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "--loglevel",
                "WARNING",
                "--hostname",
                f"{prefix}{processes}@%h",
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _wait_ready(worker, processes, Path(log.name))
        result = app.send_task(
            "tasks.features.refresh_user_features",
            kwargs={"shard_size": shard_size, "profile_id_end": profile_id_end},
            queue=features,
        )
        parent, peak_rss = None, 0
        cpu_before, machine_before = _group_cpu_seconds(worker.pid), _machine_busy_seconds()
        wall_started = time.monotonic()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            peak_rss = max(peak_rss, _group_rss(worker.pid))
            parent = JobRun.objects.filter(task_id=result.id, shards_total__gt=0).first()
            if parent is not None and parent.status != JobRun.Status.RUNNING:
                break
            if worker.poll() is not None:
                raise RuntimeError(f"the worker died:\n{Path(log.name).read_text()[-3000:]}")
            time.sleep(0.2)
        else:
            raise RuntimeError(f"the refresh did not finish within {timeout} s")
        wall = time.monotonic() - wall_started
        pool_cpu = _group_cpu_seconds(worker.pid) - cpu_before
        machine_busy = (_machine_busy_seconds() - machine_before) / wall
    finally:
        _stop(worker)
    if parent.status != JobRun.Status.SUCCEEDED:
        raise RuntimeError(f"the refresh ended {parent.status}: {parent.error[:2000]}")
    seconds = np.array(list(parent.shards.values_list("duration_seconds", flat=True)), dtype=float)
    return {
        "processes": processes,
        "seconds": round(parent.duration_seconds, 2),
        "rows": parent.rows_written,
        "rows_per_second": round(parent.rows_written / parent.duration_seconds),
        "shards": parent.shards_total,
        "shard_seconds_p50": round(float(np.percentile(seconds, 50)), 2),
        "shard_seconds_p95": round(float(np.percentile(seconds, 95)), 2),
        "shard_seconds_max": round(float(seconds.max()), 2),
        "peak_rss_mib": round(peak_rss / 2**20),
        "pool_cpu_seconds": round(pool_cpu, 1),
        "machine_busy_cores": round(machine_busy, 2),
        "parent_run": parent.pk,
    }


def _wait_ready(worker: subprocess.Popen, processes: int, log: Path) -> None:
    deadline = time.monotonic() + 120
    while len(_children(worker.pid)) < processes or not _consuming(log):
        if worker.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the worker did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.2)


def _consuming(log: Path) -> bool:
    # At WARNING the worker logs no "ready" line; the pool is up once its children exist, and the
    # consumer once the banner is out (written before the consumer starts; a message sent now waits).
    return "[queues]" in log.read_text(errors="replace")


def _children(pid: int) -> list[int]:
    try:
        return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except FileNotFoundError:
        return []


def _group_rss(pid: int) -> int:
    """Resident bytes of the worker and its pool processes."""
    total = 0
    for member in [pid, *_children(pid)]:
        try:
            status = Path(f"/proc/{member}/status").read_text()
        except FileNotFoundError:
            continue
        total += next((int(line.split()[1]) * 1024 for line in status.splitlines() if line.startswith("VmRSS:")), 0)
    return total


def _group_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of the worker and its pool processes so far."""
    ticks = 0
    for member in [pid, *_children(pid)]:
        try:
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def _machine_busy_seconds() -> float:
    """CPU seconds every core of the machine spent busy (not idle, not waiting for I/O) since boot."""
    user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, Path("/proc/stat").read_text().split()[1:9])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _stop(worker: subprocess.Popen) -> None:
    if worker.poll() is None:
        os.killpg(worker.pid, signal.SIGTERM)
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(timeout=10)


def _delayed_delivery_exists(broker_url: str) -> bool:
    if not broker_url.startswith("amqp"):
        return True  # nothing of the kind on Redis
    from amqp.exceptions import NotFound
    from kombu import Connection

    with Connection(broker_url, connect_timeout=5) as connection:
        channel = connection.channel()
        try:
            channel.queue_declare(DELAYED_DELIVERY[0], passive=True)
            return True
        except NotFound:
            return False


def _delete_broker_entities(broker_url: str, prefix: str, *, delayed_delivery: bool) -> None:
    """This run's queues and exchange; RabbitMQ's delayed-delivery ones too when this run created them."""
    from kombu import Connection

    with Connection(broker_url, connect_timeout=5) as connection:
        channel = connection.channel()
        for group in ("default", "features", "training", "experiments", "housekeeping"):
            channel.queue_delete(f"{prefix}{group}")
        channel.exchange_delete(f"{prefix}jobs")
        if delayed_delivery and broker_url.startswith("amqp"):
            for name in DELAYED_DELIVERY:
                channel.queue_delete(name)
                channel.exchange_delete(name)
            channel.exchange_delete("celery_delayed_delivery")


if __name__ == "__main__":
    main()
