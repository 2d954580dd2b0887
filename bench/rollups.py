#!/usr/bin/env python
"""The content refresh from the daily title rollups against the whole-history GROUP BY (default reco_bench).

    .venv/bin/python bench/rollups.py --json bench/results/content_rollups_50m.json

Migrates, then at the newest viewing's time T: the whole-history aggregates (today's query, once); a rollup
rebuild as of the day before T (what the first refresh does); the daily close to T's day (the first refresh
of a day); --reads reads of the aggregates from the rollups (the 5-minute refresh's query) with p50/p95/p99,
checked equal to the GROUP BY's; --refreshes whole content refreshes as the 5-minute job runs them (rollup
probe, aggregates, catalog, features, per-title Redis writes, matrix, trending list) with p50/p95/p99 and each
phase's median; and the busiest title's 7-day views from the rollup against the plain count. The features go
to --redis-url (its own DB: not the one a serving bench reads).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np
from _machine import calibration

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default="postgres://reco:reco@127.0.0.1:5432/reco_bench")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/11")
    parser.add_argument("--reads", type=int, default=10)
    parser.add_argument("--refreshes", type=int, default=10, help="whole content refreshes timed (default 10)")
    parser.add_argument("--skip-rebuild", action="store_true", help="rollups already at the newest day: no rebuild")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    os.environ.update(
        DATABASE_URL=args.database_url,
        REDIS_URL=args.redis_url,
        LOG_LEVEL="WARNING",
        DJANGO_SETTINGS_MODULE="config.settings.base",
    )
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from features import rollups, selectors
    from features.ml import compute
    from features.services import content_features_refresh
    from features.store import FeatureStore

    call_command("migrate", verbosity=0)
    machine = calibration()
    print(f"machine calibration: {machine}", flush=True)
    with connection.cursor() as cursor:
        cursor.execute("SELECT max(started_at), count(*) FROM users_viewingevent")
        newest, viewings = cursor.fetchone()
    as_of = newest + dt.timedelta(seconds=1)
    figures: dict = {"database": args.database_url.rsplit("/", 1)[1], "viewings": viewings, "as_of": as_of.isoformat()}

    def timed(name: str, step):
        started = time.perf_counter()
        value = step()
        figures[f"{name}_s"] = round(time.perf_counter() - started, 3)
        print(f"{name}: {figures[f'{name}_s']} s", flush=True)
        return value

    expected = timed("whole_history_group_by", lambda: selectors.content_aggregates(as_of=as_of))
    if not args.skip_rebuild:
        timed("rollup_rebuild", lambda: rollups.title_rollups_advance(as_of=as_of - dt.timedelta(days=1)))
        timed("daily_close", lambda: rollups.title_rollups_advance(as_of=as_of))
    timed("probe_within_the_day", lambda: rollups.title_rollups_advance(as_of=as_of))
    reads = []
    for _ in range(args.reads):
        started = time.perf_counter()
        got = rollups.content_aggregates_rolled(as_of=as_of)
        reads.append((time.perf_counter() - started) * 1000)
    got, expected = got.sort_values("title_id"), expected.sort_values("title_id")
    assert list(got["title_id"]) == list(expected["title_id"]), "the rollups name other titles"
    worst = {
        name: float(
            np.max(
                np.abs(got[name].to_numpy(float) - expected[name].to_numpy(float))
                / np.maximum(1.0, np.abs(expected[name].to_numpy(float)))
            )
        )
        for name in compute.CONTENT_AGGREGATES
    }
    ms = np.array(reads)
    figures["rolled_read_ms"] = {f"p{q}": round(float(np.percentile(ms, q)), 1) for q in (50, 95, 99)}
    figures["largest_relative_difference"] = worst
    store = FeatureStore()
    # The 5-minute job as it runs now (the wall clock, after every viewing): the first one also closes the days up
    # to today (timed apart), the rest are the steady state.
    timed("content_refresh_first", lambda: content_features_refresh(store=store))
    refreshes, phases = [], []
    for _ in range(args.refreshes):
        timings: dict = {}
        started = time.perf_counter()
        content_features_refresh(store=store, timings=timings)
        refreshes.append((time.perf_counter() - started) * 1000)
        phases.append(timings)
    ms = np.array(refreshes)
    figures["content_refresh_ms"] = {f"p{q}": round(float(np.percentile(ms, q)), 1) for q in (50, 95, 99)} | {
        "refreshes": len(ms),
        "per_hour_at_5_minutes_s": round(float(ms.mean()) * 12 / 1000, 1),
    }
    figures["content_refresh_phase_ms_p50"] = {
        name: round(float(np.median([p[name] for p in phases])) * 1000, 1) for name in phases[0]
    }
    print(f"content refresh: {figures['content_refresh_ms']}, phases {figures['content_refresh_phase_ms_p50']}")
    with connection.cursor() as cursor:
        cursor.execute("SELECT title_id FROM features_title_day GROUP BY title_id ORDER BY sum(views) DESC LIMIT 1")
        (busiest,) = cursor.fetchone()

    def plain_count() -> int:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM users_viewingevent WHERE title_id = %s AND started_at >= %s AND started_at < %s",
                [busiest, as_of - dt.timedelta(days=7), as_of],
            )
            return cursor.fetchone()[0]

    plain = timed("busiest_title_7d_plain", plain_count)
    recent = timed("busiest_title_7d_rollup", lambda: rollups.title_views_recent(title_id=busiest, as_of=as_of))
    assert plain == recent, (plain, recent)
    figures |= {
        "busiest_title": busiest,
        "busiest_title_7d_views": recent,
        "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
        "machine": machine,
    }
    print(json.dumps(figures, indent=2))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
