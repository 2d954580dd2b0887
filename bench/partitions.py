#!/usr/bin/env python
"""Benchmark the monthly partitions of viewing history: load time, partition sizes, the two history queries.

    .venv/bin/python bench/partitions.py --load --events 5000000 --accounts 40000 --titles 20000   # ~2 min here
    .venv/bin/python bench/partitions.py --load                      # 100K titles, ~1M profiles, 50M events
    .venv/bin/python bench/partitions.py --database-url postgres://reco:reco@127.0.0.1:5432/reco_bench

--load (re)creates the database of --database-url, migrates it and runs generate_synthetic into it (COPY into
the partitioned parent; PostgreSQL routes the rows), timing the whole load. Without --load it measures the
database as it is. --convert also times the migration that turns a populated plain table into the partitioned
one (users 0004 backwards, then forwards): the cost per million rows.

Then, over --repeats runs each, p50/p95/p99 of the two queries as Django sends them (client-side parameters,
so every run is planned): a profile's history (its newest 100 viewings, over --profiles random profiles with
history) and a title's views in the 7 days before the newest viewing (the --titles-measured busiest titles of
that week), once as loaded and once after VACUUM ANALYZE of the month partitions the week touches (what
autovacuum's insert threshold does by itself soon after a load, and cheaply: one month, not the whole history).
Also the partitions each plan reads, the partition sizes and the machine calibration (bench/_machine.py).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

HISTORY = "SELECT * FROM users_viewingevent WHERE profile_id = %s ORDER BY last_watched_at DESC LIMIT 100"
_PARTITION = re.compile(r" on (users_viewingevent_(?:p\d{4}_\d{2}|default))\b")
WEEK_OF_VIEWS = "SELECT count(*) FROM users_viewingevent WHERE title_id = %s AND started_at >= %s AND started_at < %s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default="postgres://reco:reco@127.0.0.1:5432/reco_partitions_bench")
    parser.add_argument("--load", action="store_true", help="recreate the database and load a synthetic world")
    parser.add_argument("--convert", action="store_true", help="also time converting the loaded table")
    parser.add_argument("--titles", type=int, default=100_000)
    parser.add_argument("--accounts", type=int, default=400_000)
    parser.add_argument("--events", type=int, default=50_000_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--profiles", type=int, default=500, help="random profiles whose history is read")
    parser.add_argument(
        "--titles-measured", type=int, default=20, help="busiest titles of the week whose views are counted"
    )
    parser.add_argument("--repeats", type=int, default=1000, help="runs of each query (default 1000)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    from bench._machine import calibration

    figures: dict = {"database": args.database_url.rsplit("/", 1)[1], "calibration_before": calibration()}
    env = {**os.environ, "DATABASE_URL": args.database_url, "DJANGO_SETTINGS_MODULE": "config.settings.base"}
    if args.load:
        _recreate(args.database_url)
        _run([sys.executable, "manage.py", "migrate", "-v", "0"], env)
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
        figures["load"] = {
            "command": " ".join(command[1:]),
            "wall_seconds": round(time.perf_counter() - started, 1),
            "phases": _phases(output),
        }
    with psycopg.connect(args.database_url, autocommit=True) as conn:
        rows = conn.execute("SELECT count(*) FROM users_viewingevent").fetchone()[0]
        figures["viewing_events"] = rows
        newest = conn.execute("SELECT max(started_at) FROM users_viewingevent").fetchone()[0]
        week = (newest - dt.timedelta(days=7), newest + dt.timedelta(seconds=1))
        profiles = [
            r[0]
            for r in conn.execute(
                "SELECT DISTINCT profile_id FROM users_viewingevent TABLESAMPLE SYSTEM (1) LIMIT %s", [args.profiles]
            )
        ]
        titles = [
            r[0]
            for r in conn.execute(
                "SELECT title_id FROM users_viewingevent WHERE started_at >= %s AND started_at < %s "
                "GROUP BY 1 ORDER BY count(*) DESC LIMIT %s",
                [*week, args.titles_measured],
            )
        ]
        figures["week"] = [moment.isoformat() for moment in week]
        figures["as_loaded"] = _measure(conn, profiles, titles, week, args.repeats)
        if args.convert:
            figures["convert"] = _convert(env, rows)
        figures["partitions"] = _sizes(conn)
        started = time.perf_counter()
        for name in _partitions_of_week(conn, titles[0], week):
            conn.execute(f'VACUUM (ANALYZE) "{name}"')
        figures["vacuum_week_seconds"] = round(time.perf_counter() - started, 2)
        figures["after_vacuum"] = _measure(conn, profiles, titles, week, args.repeats)
    figures["calibration_after"] = calibration()
    print(json.dumps(figures, indent=2))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


def _recreate(url: str) -> None:
    server, database = url.rsplit("/", 1)
    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{database}"')


def _run(command: list[str], env: dict[str, str]) -> str:
    result = subprocess.run(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True, timeout=3 * 3600)
    sys.stdout.write(result.stdout)
    if result.returncode:
        sys.exit(f"{' '.join(command)} failed with exit code {result.returncode}")
    return result.stdout


def _phases(output: str) -> dict[str, float]:
    phase = re.compile(r"^\s+(?P<name>[a-z ]+?)\s+(?P<seconds>[\d.]+) s$")
    return {m["name"]: float(m["seconds"]) for line in output.splitlines() if (m := phase.match(line))}


def _convert(env: dict[str, str], rows: int) -> dict:
    """users 0004 backwards (one plain table) and forwards again: the forward is what a deployment runs."""
    started = time.perf_counter()
    _run([sys.executable, "manage.py", "migrate", "users", "0003", "-v", "0"], env)
    backwards = time.perf_counter() - started
    started = time.perf_counter()
    _run([sys.executable, "manage.py", "migrate", "users", "0004", "-v", "0"], env)
    forwards = time.perf_counter() - started
    return {
        "to_plain_seconds": round(backwards, 1),
        "to_partitioned_seconds": round(forwards, 1),
        "to_partitioned_seconds_per_million_rows": round(forwards / max(rows, 1) * 1e6, 2),
    }


def _sizes(conn: psycopg.Connection) -> list[dict]:
    return [
        {"name": name, "rows": int(rows), "heap_mib": round(heap / 2**20, 1), "indexes_mib": round(index / 2**20, 1)}
        for name, rows, heap, index in conn.execute(
            """
            SELECT c.relname, c.reltuples, pg_table_size(c.oid), pg_indexes_size(c.oid)
            FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
            WHERE i.inhparent = 'users_viewingevent'::regclass ORDER BY c.relname
            """
        )
    ]


def _partitions_of_week(conn: psycopg.Connection, title: int, week) -> list[str]:
    plan = "\n".join(r[0] for r in conn.execute(f"EXPLAIN {WEEK_OF_VIEWS}", [title, *week]))
    return sorted(set(_PARTITION.findall(plan)))


def _measure(conn: psycopg.Connection, profiles: list[int], titles: list[int], week, repeats: int) -> dict:
    cursor = psycopg.ClientCursor(conn)  # as Django sends queries: parameters inlined, planned every time
    history = _timed(cursor, HISTORY, [[profiles[i % len(profiles)]] for i in range(repeats)])
    views = _timed(cursor, WEEK_OF_VIEWS, [[titles[i % len(titles)], *week] for i in range(max(repeats // 10, 50))])
    busiest = _timed(cursor, WEEK_OF_VIEWS, [[titles[0], *week]] * 21)  # the figure bench/load_data.py reports
    plan = "\n".join(r[0] for r in conn.execute(f"EXPLAIN (ANALYZE, BUFFERS) {WEEK_OF_VIEWS}", [titles[0], *week]))
    planning = [
        float(x)
        for x in re.findall(
            r"Planning Time: ([\d.]+)",
            "\n".join(r[0] for r in conn.execute(f"EXPLAIN (ANALYZE) {HISTORY}", [profiles[0]])),
        )
    ]
    return {
        "profile_history_100_ms": history,
        "profile_history_planning_ms": planning[0] if planning else None,
        "title_views_7_days_ms": views,
        "busiest_title_views_7_days_median_ms": busiest["p50"],
        "title_views_7_days_partitions": sorted(set(_PARTITION.findall(plan))),
        "title_views_7_days_heap_fetches": sum(int(x) for x in re.findall(r"Heap Fetches: (\d+)", plan)),
        "title_views_7_days_heap_blocks": sum(int(x) for x in re.findall(r"Heap Blocks: exact=(\d+)", plan)),
    }


def _timed(cursor: psycopg.ClientCursor, sql: str, params: list[list]) -> dict[str, float]:
    for p in params[:20]:  # warm the caches
        cursor.execute(sql, p).fetchall()
    times = []
    for p in params:
        started = time.perf_counter()
        cursor.execute(sql, p).fetchall()
        times.append((time.perf_counter() - started) * 1000)
    p50, p95, p99 = np.percentile(times, [50, 95, 99])
    return {"p50": round(float(p50), 3), "p95": round(float(p95), 3), "p99": round(float(p99), 3), "runs": len(times)}


if __name__ == "__main__":
    main()
