#!/usr/bin/env python
"""Benchmark POST /api/events over HTTP: gunicorn on this machine, closed-loop clients, then a loss count.

    .venv/bin/python bench/events.py                                  # reco_bench, 2 workers, 4 clients, 20 s
    .venv/bin/python bench/events.py --clients 8 --batch 400 --seconds 30

Starts gunicorn (sync workers) on the database, issues an API key, and has --clients threads POST batches
of --batch events as fast as the server answers, for --seconds. The mix is a homepage's: impressions of
20 titles (one stored row per title), clicks, and viewings that play, progress and complete (folded into
viewing history); an impression that would take a body past the API's row cap (MAX_ROWS) is sent as a
click instead. After each batch a client re-sends an earlier one with probability --resend, as a
retrying app would; those must come back all duplicates. A failed request is retried until it succeeds.
Prints rows stored a second (the ingest rate), events a second as posted, request p50/p95/p99 and errors,
and the CPU seconds the Django workers, their PostgreSQL backends and this load generator spent (other jobs
share the cores, so CPU per 1,000 events says more than the rate); then counts the run's rows in PostgreSQL
and fails unless every row sent is there exactly once.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import numpy as np
from _machine import calibration  # bench/, on sys.path as the script's folder
from _server import wait_ready

ROOT = Path(__file__).resolve().parent.parent
PORT = 8766
KEY = "bench-events-key-0123456789abcdef"
APP_NAME = "reco-bench-events"
CLIENT_NAME = "bench-events"
IMPRESSION_ITEMS = 20
# Shares of the events in a batch, by type (impressions dominate rows: 20 each).
MIX = {"impression": 0.2, "click": 0.2, "play": 0.15, "progress": 0.35, "complete": 0.1}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default="postgres://reco:reco@127.0.0.1:5432/reco_bench")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/12")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--batch", type=int, default=200, help="events a request")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--resend", type=float, default=0.1, help="share of batches sent a second time")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", type=Path, default=ROOT / "bench" / "results" / "events_ingest.json")
    args = parser.parse_args()

    # The server's connections name themselves, so their PostgreSQL backends' CPU can be told apart.
    server_database_url = (
        args.database_url + ("&" if "?" in args.database_url else "?") + f"application_name={APP_NAME}"
    )
    env = {
        **os.environ,
        "DATABASE_URL": args.database_url,
        "REDIS_URL": args.redis_url,
        "DJANGO_SETTINGS_MODULE": "config.settings.base",
        "LOG_LEVEL": "WARNING",
    }
    load_average = _load_average()  # other jobs share these cores
    machine = calibration()
    print(f"machine calibration: {machine}", flush=True)
    profile_ids, title_ids = _sample_ids(env)
    client_id = _issue_key()
    from events.api.parsing import MAX_ROWS

    run = f"b{uuid.uuid4().hex[:10]}"  # every event id of this run starts with it
    batches = _Batches(run, profile_ids, title_ids, size=args.batch, seed=args.seed, max_rows=MAX_ROWS)
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "config.wsgi:application",
            "--bind",
            f"127.0.0.1:{PORT}",
            "--workers",
            str(args.workers),
            "--worker-class",
            "sync",
            "--timeout",
            "60",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env={**env, "DATABASE_URL": server_database_url},
    )
    try:
        wait_ready(PORT)
        for _ in range(4 * args.workers):  # load Django in every worker; these rows are counted too
            _send_until_stored(http.client.HTTPConnection("127.0.0.1", PORT, timeout=60), batches.next()[1], [])
        processes = _server_processes(server.pid)
        cpu_before = _cpu_seconds(processes)
        figures = _load(batches, clients=args.clients, seconds=args.seconds, resend=args.resend, seed=args.seed)
        cpu = {role: round(_cpu_seconds(processes)[role] - cpu_before[role], 2) for role in cpu_before}
        figures["cpu_seconds"] = cpu
        figures["cpu_ms_per_1000_events"] = {
            role: round(1e6 * value / figures["events"], 1) for role, value in cpu.items()
        }
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    stored, distinct = _count_stored(client_id, run)
    figures |= {
        "rows_sent": batches.rows,
        "rows_in_database": stored,
        "distinct_ids_in_database": distinct,
        "lost": batches.rows - distinct,
        "stored_twice": stored - distinct,
    }
    result = {
        "database": args.database_url.rsplit("/", 1)[1],
        "workers": args.workers,
        "clients": args.clients,
        "batch_events": args.batch,
        "mix": MIX,
        "impression_items": IMPRESSION_ITEMS,
        "cpus": os.cpu_count(),
        "load_average_before": load_average,
        "machine": machine,
        **figures,
    }
    print(json.dumps(result, indent=2))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    if figures["lost"] or figures["stored_twice"] or figures["resent_rows_accepted"]:
        raise SystemExit("events were lost or stored twice")


def _django(env: dict) -> None:
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def _sample_ids(env: dict) -> tuple[np.ndarray, np.ndarray]:
    _django(env)
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT id FROM users_profile TABLESAMPLE SYSTEM (2)")
        profiles = np.array([r[0] for r in cursor.fetchall()], np.int64)
        cursor.execute("SELECT id FROM catalog_title")
        titles = np.array([r[0] for r in cursor.fetchall()], np.int64)
    return profiles, titles


def _issue_key() -> int:
    """The bench's API client, kept across runs (its events protect it from deletion), with KEY as its key."""
    from recommendations.models import API_KEY_PREFIX_LENGTH, ApiClient, api_key_digest

    client, _ = ApiClient.objects.update_or_create(
        name=CLIENT_NAME,
        defaults={
            "key_prefix": KEY[:API_KEY_PREFIX_LENGTH],
            "key_digest": api_key_digest(KEY),
            "rate": "1000000/min",
            "is_active": True,
        },
    )
    return client.pk


class _Batches:
    """Request bodies of `size` events with unique ids, made on demand (thread-safe); counts the rows sent."""

    def __init__(
        self, run: str, profile_ids: np.ndarray, title_ids: np.ndarray, *, size: int, seed: int, max_rows: int
    ) -> None:
        self.run, self.profile_ids, self.title_ids, self.size = run, profile_ids, title_ids, size
        self.max_rows = max_rows
        self.rng = np.random.default_rng(seed)
        self.lock = threading.Lock()
        self.count = 0
        self.rows = 0
        self.types = np.array(list(MIX))
        self.shares = np.array(list(MIX.values()))

    def next(self) -> tuple[int, bytes]:
        """(rows the batch stores, JSON body)."""
        with self.lock:
            number = self.count
            self.count += 1
            types = self.rng.choice(self.types, size=self.size, p=self.shares)
            profiles = self.rng.choice(self.profile_ids, size=self.size)
            titles = self.rng.choice(self.title_ids, size=(self.size, IMPRESSION_ITEMS))
            percentages = self.rng.uniform(0.05, 1.0, self.size).round(3)
        now = dt.datetime.now(dt.UTC)
        started = (now - dt.timedelta(minutes=30)).isoformat()
        events, rows = [], 0
        for i, event_type in enumerate(types):
            if event_type == "impression" and rows + IMPRESSION_ITEMS + (self.size - i - 1) > self.max_rows:
                event_type = "click"
            event = {
                "event_id": f"{self.run}-{number}-{i}",
                "type": str(event_type),
                "profile_id": int(profiles[i]),
                "occurred_at": (now - dt.timedelta(seconds=i)).isoformat(),
                "device_type": "tv",
            }
            if event_type == "impression":
                event |= {
                    "request_id": uuid.uuid4().hex,
                    "experiment": "home-rows",
                    "arm": "ranker",
                    "items": [
                        {
                            "content_id": int(t),
                            "position": p,
                            "row": "top-picks",
                            "propensity": 0.05,
                            "policy": "ranker",
                        }
                        for p, t in enumerate(titles[i], 1)
                    ],
                }
                rows += IMPRESSION_ITEMS
            else:
                event["content_id"] = int(titles[i, 0])
                if event_type in ("play", "progress", "complete"):
                    event["started_at"] = started
                if event_type == "progress":
                    event["watch_percentage"] = float(percentages[i])
                rows += 1
            events.append(event)
        body = json.dumps({"events": events}).encode()
        with self.lock:
            self.rows += rows
        return rows, body


def _post(connection: http.client.HTTPConnection, body: bytes) -> tuple[int, dict]:
    connection.request("POST", "/api/events", body=body, headers={"X-Api-Key": KEY, "Content-Type": "application/json"})
    response = connection.getresponse()
    payload = response.read()
    return response.status, (json.loads(payload) if response.status in (200, 400, 413) else {})


def _send_until_stored(
    connection: http.client.HTTPConnection, body: bytes, failures: list
) -> tuple[dict, http.client.HTTPConnection]:
    """POST until a 200 (a retry after a timeout may find the batch already stored: that is the point)."""
    while True:
        try:
            status, answer = _post(connection, body)
            if status == 200:
                return answer, connection
            if status in (400, 413):  # the same body would be refused again
                raise SystemExit(f"the API refused a batch: {status} {answer}")
            failures.append(status)
        except (OSError, http.client.HTTPException) as error:
            failures.append(type(error).__name__)
            connection.close()
            connection = http.client.HTTPConnection("127.0.0.1", PORT, timeout=60)
        time.sleep(0.1)


def _load(batches: _Batches, *, clients: int, seconds: float, resend: float, seed: int) -> dict:
    latencies, failures, totals = (
        [],
        [],
        {
            "accepted": 0,
            "duplicates": 0,
            "rejected": 0,
            "events": 0,
            "resent_batches": 0,
            "resent_rows": 0,
            "resent_rows_accepted": 0,
        },
    )
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds

    def client(number: int) -> None:
        rng = random.Random(seed + number)
        connection = http.client.HTTPConnection("127.0.0.1", PORT, timeout=60)
        sent: list[tuple[int, bytes]] = []
        while time.perf_counter() < deadline:
            rows, body = batches.next()
            resending = bool(sent) and rng.random() < resend
            for current_rows, current_body in [(rows, body)] + ([rng.choice(sent)] if resending else []):
                start = time.perf_counter()
                answer, connection = _send_until_stored(connection, current_body, failures)
                elapsed = (time.perf_counter() - start) * 1000
                with lock:
                    latencies.append(elapsed)
                    for key in ("accepted", "duplicates", "rejected"):
                        totals[key] += answer[key]
                    if current_body is not body:
                        totals["resent_batches"] += 1
                        totals["resent_rows"] += current_rows
                        totals["resent_rows_accepted"] += answer["accepted"]
                    else:
                        totals["events"] += batches.size
            sent.append((rows, body))

    threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(clients)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    values = np.array(latencies)
    return {
        "seconds": round(elapsed, 2),
        "requests": len(latencies),
        "rows_stored_per_s": round(totals["accepted"] / elapsed, 1),
        "events_per_s": round(totals["events"] / elapsed, 1),
        "p50_ms": round(float(np.percentile(values, 50)), 1),
        "p95_ms": round(float(np.percentile(values, 95)), 1),
        "p99_ms": round(float(np.percentile(values, 99)), 1),
        "errors": len(failures),
        "error_kinds": sorted({str(f) for f in failures}),
        **totals,
    }


def _count_stored(client_id: int, run: str) -> tuple[int, int]:
    from django.db import connection

    with connection.cursor() as cursor:
        # A range on the unique index's (client_id, client_event_id, item_position): the run's rows only.
        cursor.execute(
            "SELECT count(*), count(DISTINCT (client_event_id, item_position)) FROM events_event "
            "WHERE client_id = %s AND client_event_id >= %s AND client_event_id < %s",
            [client_id, f"{run}-", f"{run}."],
        )
        return cursor.fetchone()


def _server_processes(master_pid: int) -> dict[str, list[int]]:
    """Process ids by role: the gunicorn workers, their PostgreSQL backends, and this load generator."""
    from django.db import connection

    workers = [int(pid) for pid in Path(f"/proc/{master_pid}/task/{master_pid}/children").read_text().split()]
    with connection.cursor() as cursor:
        cursor.execute("SELECT pid FROM pg_stat_activity WHERE application_name = %s", [APP_NAME])
        backends = [row[0] for row in cursor.fetchall()]
    return {"django_workers": workers, "postgres_backends": backends, "load_generator": [os.getpid()]}


def _cpu_seconds(processes: dict[str, list[int]]) -> dict[str, float]:
    """User + system CPU seconds of each role's processes so far (/proc/PID/stat fields 14 and 15)."""
    ticks = os.sysconf("SC_CLK_TCK")
    totals = {}
    for role, pids in processes.items():
        total = 0
        for pid in pids:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:  # a backend that closed: its time is lost to the sum, not an error
                continue
            total += int(fields[11]) + int(fields[12])
        totals[role] = total / ticks
    return totals


def _load_average() -> list[float]:
    return [round(value, 2) for value in os.getloadavg()]


if __name__ == "__main__":
    main()
