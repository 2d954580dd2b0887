#!/usr/bin/env python
"""Benchmark the data loaders on a fresh PostgreSQL database: wall time per phase, rows/s, peak memory.

    .venv/bin/python bench/load_data.py ml-100k                  # import_movielens ../shared/data/ml-100k
    .venv/bin/python bench/load_data.py synthetic                # 100K titles, ~1M profiles, 50M events
    .venv/bin/python bench/load_data.py synthetic --events 5000000 --accounts 40000

It creates (and afterwards keeps, for the other benchmarks) the database named by --database, runs the
loader as its own process, and prints a summary; `--json PATH` also writes the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
ML100K = ROOT.parent / "shared" / "data" / "ml-100k"
PHASE = re.compile(r"^\s+(?P<name>[a-z ]+?)\s+(?P<seconds>[\d.]+) s$")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset", choices=["ml-100k", "synthetic"])
    parser.add_argument("--server", default="postgres://reco:reco@127.0.0.1:5432", help="PostgreSQL server URL")
    parser.add_argument("--database", default="reco_bench", help="database to (re)create (default reco_bench)")
    parser.add_argument("--titles", type=int, default=100_000)
    parser.add_argument("--accounts", type=int, default=400_000)
    parser.add_argument("--events", type=int, default=50_000_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    url = f"{args.server}/{args.database}"
    _recreate(args.server, args.database)
    env = {**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "config.settings.base"}
    _run([sys.executable, "manage.py", "migrate", "-v", "0"], env)

    if args.dataset == "ml-100k":
        command = [sys.executable, "manage.py", "import_movielens", str(ML100K), "-v", "1"]
    else:
        command = [
            sys.executable,
            "manage.py",
            "generate_synthetic",
            "--titles",
            str(args.titles),
            "--accounts",
            str(args.accounts),
            "--events",
            str(args.events),
            "--seed",
            str(args.seed),
            "-v",
            "2",
        ]
    started = time.perf_counter()
    output = _run(command, env)
    seconds = time.perf_counter() - started
    peak_gib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20

    with psycopg.connect(url) as conn:
        counts = {
            table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in ("catalog_title", "users_account", "users_profile", "users_viewingevent", "catalog_credit")
        }
        size_gib = conn.execute("SELECT pg_database_size(current_database())").fetchone()[0] / 2**30
        queries = _query_latencies(conn)

    figures = {
        "dataset": args.dataset,
        "command": " ".join(command[1:]),
        "wall_seconds": round(seconds, 1),
        "events_per_second": round(counts["users_viewingevent"] / seconds),
        "peak_rss_gib": round(peak_gib, 2),
        "database_gib": round(size_gib, 2),
        "rows": counts,
        "phases_seconds": {m["name"]: float(m["seconds"]) for line in output.splitlines() if (m := PHASE.match(line))},
        "query_ms": queries,
    }
    print(json.dumps(figures, indent=2))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


def _recreate(server: str, database: str) -> None:
    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{database}"')


def _run(command: list[str], env: dict[str, str]) -> str:
    """Run with the progress bar on the terminal (stderr) and capture stdout for the phase timings."""
    result = subprocess.run(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    sys.stdout.write(result.stdout)
    if result.returncode:
        sys.exit(f"{' '.join(command)} failed with exit code {result.returncode}")
    return result.stdout


def _query_latencies(conn: psycopg.Connection) -> dict[str, float]:
    """Median of 20 runs of each index-backed history query, for the busiest profile and title."""
    conn.execute("ANALYZE users_viewingevent")
    profile = conn.execute(
        "SELECT profile_id FROM users_viewingevent GROUP BY 1 ORDER BY count(*) DESC LIMIT 1"
    ).fetchone()[0]
    title = conn.execute(
        "SELECT title_id FROM users_viewingevent GROUP BY 1 ORDER BY count(*) DESC LIMIT 1"
    ).fetchone()[0]
    week_ago = conn.execute(
        "SELECT max(started_at) - interval '7 days' FROM users_viewingevent WHERE title_id = %s", [title]
    ).fetchone()[0]
    queries = {
        "profile_history_100": (
            "SELECT * FROM users_viewingevent WHERE profile_id = %s ORDER BY last_watched_at DESC LIMIT 100",
            [profile],
        ),
        "profile_in_progress_10": (
            "SELECT * FROM users_viewingevent WHERE profile_id = %s AND watch_percentage >= 0.1 "
            "AND watch_percentage <= 0.9 ORDER BY last_watched_at DESC LIMIT 10",
            [profile],
        ),
        "title_views_last_7_days": (
            "SELECT count(*) FROM users_viewingevent WHERE title_id = %s AND started_at >= %s",
            [title, week_ago],
        ),
    }
    latencies = {}
    for name, (sql, params) in queries.items():
        runs = []
        for _ in range(20):
            started = time.perf_counter()
            conn.execute(sql, params).fetchall()
            runs.append((time.perf_counter() - started) * 1000)
        latencies[name] = round(sorted(runs)[len(runs) // 2], 2)
    return latencies


if __name__ == "__main__":
    main()
