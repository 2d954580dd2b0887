#!/usr/bin/env python
"""Server time of each staff page on a loaded database (default reco_bench: 100K titles, 1M profiles).

    .venv/bin/python bench/pages.py --requests 30 --json bench/results/pages.json

Renders every page through Django's test Client as a signed-in superuser (middleware, view, queries, template:
all the server does, without the network) --requests times, after one warm-up request per page (the first
preview loads the models: reported apart as cold_start_ms), and prints p50/p95/p99 and the SQL queries of one
request per page. The homepage previews use a different random profile each time.

Everything it writes (the staff user, 100K synthetic job runs, 50 model versions per kind, experiments with
results, and the experiment tables themselves while their app has no migration) happens inside one
transaction that is rolled back at the end: the database is left as it was.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
JOB_RUNS = 100_000
VERSIONS_PER_KIND = 50
TARGET_MS = 300


class Rollback(Exception):
    pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default="postgres://reco:reco@127.0.0.1:5432/reco_bench")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/14")
    parser.add_argument("--artifact-dir", default="/tmp/reco-bench-artifacts")
    parser.add_argument("--requests", type=int, default=30, help="timed requests per page")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    os.environ.update(
        DATABASE_URL=args.database_url,
        REDIS_URL=args.redis_url,
        RECO_ARTIFACT_DIR=args.artifact_dir,
        DJANGO_SETTINGS_MODULE="config.settings.base",
        LOG_LEVEL="WARNING",
    )
    os.environ.pop("CELERY_BROKER_URL", None)  # eager, as in the README's default: no worker to ping
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.db import transaction

    figures: dict = {}
    try:
        with transaction.atomic():
            figures = _run(args)
            raise Rollback
    except Rollback:
        pass
    print(json.dumps(figures, indent=2))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


def _run(args: argparse.Namespace) -> dict:
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.db.models import Max, Min
    from django.test import Client

    from catalog.models import Title
    from users.models import Profile

    rng = np.random.default_rng(args.seed)
    user = get_user_model().objects.create_superuser("bench-pages", "bench@example.com", "unused-password")
    client = Client()
    client.force_login(user)

    started = time.perf_counter()
    runs = _job_runs(rng)
    _model_versions(rng)
    experiments = _experiments(rng)
    print(
        f"seeded {runs:,} job runs, {VERSIONS_PER_KIND} versions per kind, {experiments} experiments "
        f"in {time.perf_counter() - started:.1f} s (rolled back at the end)"
    )

    bounds = Profile.objects.aggregate(low=Min("id"), high=Max("id"))
    low, high = bounds["low"], bounds["high"]
    profiles = iter(rng.integers(low, high + 1, size=args.requests * 10).tolist())
    middle_run = _middle_job_run()

    def profile() -> int:
        while True:
            candidate = next(profiles)
            if Profile.objects.filter(pk=candidate).exists():
                return candidate

    pages = {
        "index": lambda: "/staff/",
        "preview_search_by_name": lambda: "/staff/preview/?q=maya",
        "preview_search_no_match": lambda: "/staff/preview/?q=nobody-has-this-name",
        "preview": lambda: f"/staff/preview/?profile={profile()}&device=1&hour=21",
        "preview_compare_no_rules": lambda: f"/staff/preview/?profile={profile()}&device=2&hour=8&compare=no_rules",
        "preview_compare_no_diversify": lambda: f"/staff/preview/?profile={profile()}&compare=no_diversify",
        "models": lambda: "/staff/models/",
        "jobs": lambda: "/staff/jobs/",
        "jobs_older_page": lambda: f"/staff/jobs/?before={middle_run}",
        "experiments": lambda: "/staff/experiments/",
        "health": lambda: "/staff/health/",
        "health_json": lambda: "/staff/health.json",
    }
    t0 = time.perf_counter()
    response = client.get(pages["preview"]())
    cold_ms = (time.perf_counter() - t0) * 1000
    assert response.status_code == 200, response.status_code

    results = {}
    for name, url_of in pages.items():
        url = url_of()
        captured = _QueryCounter()
        with connection.execute_wrapper(captured):
            response = client.get(url)  # the warm-up, and its query count
        assert response.status_code == 200, (name, response.status_code, response.content[:500])
        times = []
        for _ in range(args.requests):
            url = url_of()
            t0 = time.perf_counter()
            response = client.get(url)
            times.append((time.perf_counter() - t0) * 1000)
            assert response.status_code == 200, (name, url, response.status_code)
        summary = _summary(np.array(times))
        results[name] = summary | {"queries": len(captured), "bytes": len(response.content)}
        print(
            f"{name:32s} p50 {summary['p50']:7.1f}  p95 {summary['p95']:7.1f}  p99 {summary['p99']:7.1f} ms"
            f"  {len(captured):3d} queries"
        )
    return {
        "database": connection.settings_dict["NAME"],
        "titles": Title.objects.count(),
        "profiles": Profile.objects.count(),
        "job_runs_seeded": runs,
        "requests_per_page": args.requests,
        "target_ms": TARGET_MS,
        "cold_start_preview_ms": round(cold_ms, 1),
        "pages_ms": results,
        "over_target_p95": sorted(name for name, r in results.items() if r["p95"] > TARGET_MS),
        "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "load_average_1_5_15": [round(x, 2) for x in os.getloadavg()],  # 2 cores, shared with other jobs
    }


class _QueryCounter(list):
    """An execute wrapper that keeps every SQL statement (the test Client resets connection.queries_log)."""

    def __call__(self, execute, sql, params, many, context):
        self.append(sql)
        return execute(sql, params, many, context)


def _job_runs(rng: np.random.Generator) -> int:
    """Synthetic job runs up to JOB_RUNS, 2 % failed, spread over three months."""
    from django.utils import timezone

    from tasks.models import JobRun
    from tasks.schedules import DEFAULT_SCHEDULES

    missing = JOB_RUNS - JobRun.objects.count()
    if missing <= 0:
        return 0
    jobs = sorted({s.task for s in DEFAULT_SCHEDULES.values()})
    now = timezone.now()
    offsets = np.sort(rng.uniform(0, 90 * 86400, size=missing))[::-1]
    statuses = rng.choice(
        [JobRun.Status.SUCCEEDED, JobRun.Status.FAILED, JobRun.Status.SKIPPED], size=missing, p=[0.95, 0.02, 0.03]
    )
    rows = []
    for i in range(missing):
        started = now - dt.timedelta(seconds=float(offsets[i]))
        duration = float(rng.gamma(2.0, 30.0))
        rows.append(
            JobRun(
                job=jobs[i % len(jobs)],
                status=str(statuses[i]),
                started_at=started,
                finished_at=started + dt.timedelta(seconds=duration),
                duration_seconds=duration,
                rows_written=int(rng.integers(0, 1_000_000)),
                error="Traceback (most recent call last):\n  ...\nOperationalError: timeout"
                if statuses[i] == "failed"
                else "",
            )
        )
    JobRun.objects.bulk_create(rows, batch_size=5_000)
    return missing


def _middle_job_run() -> int:
    from tasks.models import JobRun

    ids = JobRun.objects.order_by("-id").values_list("id", flat=True)
    return ids[ids.count() // 2] if ids.exists() else 1


def _model_versions(rng: np.random.Generator) -> None:
    """Retired versions with metrics (never activated here: the page only reads them)."""
    from django.db import connection
    from django.utils import timezone

    from recommendations.models import ModelKind, ModelVersion

    now = timezone.now()
    rows = [
        ModelVersion(
            kind=kind,
            version=f"bench{i:04d}-{kind}",
            status=ModelVersion.Status.RETIRED,
            artifact_path=f"{kind}/bench{i}",
            checksum="0" * 64,
            metrics={
                "ndcg_at_10": float(rng.uniform(0.02, 0.2)),
                "recall_at_10": float(rng.uniform(0.02, 0.1)),
                "map_at_10": float(rng.uniform(0.01, 0.05)),
                "users": 5000,
            },
            activated_at=now - dt.timedelta(days=VERSIONS_PER_KIND - i + 1),
        )
        for kind in ModelKind.values
        for i in range(VERSIONS_PER_KIND)
    ]
    ModelVersion.objects.bulk_create(rows)
    with connection.cursor() as cursor:  # auto_now_add stamped them all now: one a day, older than the real ones
        cursor.execute(
            "UPDATE recommendations_modelversion SET created_at = now() - interval '1 day' * "
            "(400 - substring(version from 6 for 4)::int) WHERE version LIKE 'bench%%'"
        )


def _experiments(rng: np.random.Generator) -> int:
    """Three experiments of three arms with every metric; creates the tables first while the experiments app has
    no migration (DDL is transactional in PostgreSQL, so the rollback removes them)."""
    from django.db import connection
    from django.utils import timezone

    from experiments.models import Arm, Experiment, ExperimentResult, Metric

    if Experiment._meta.db_table not in connection.introspection.table_names():
        with connection.schema_editor() as editor:
            for model in (Experiment, Arm, ExperimentResult):
                editor.create_model(model)
    now = timezone.now()
    for number in range(3):
        experiment = Experiment.objects.create(
            name=f"bench-exp-{number}", status=Experiment.Status.RUNNING, starts_at=now - dt.timedelta(days=14)
        )
        arms = [
            Arm.objects.create(experiment=experiment, name=name, is_baseline=name == "control", traffic_share=share)
            for name, share in (("control", "0.5"), ("new-ranker", "0.25"), ("bandit", "0.25"))
        ]
        rows = []
        for arm in arms:
            for metric in Metric.values:
                value = float(rng.uniform(0.05, 0.3))
                half = float(rng.uniform(0.005, 0.02))
                p_value = None if arm.is_baseline else float(rng.uniform(0, 0.2))
                rows.append(
                    ExperimentResult(
                        experiment=experiment,
                        arm=arm,
                        metric=metric,
                        value=value,
                        ci_low=value - half,
                        ci_high=value + half,
                        n=int(rng.integers(1e4, 1e6)),
                        delta_vs_baseline=None if arm.is_baseline else float(rng.normal(0, 0.02)),
                        p_value_vs_baseline=p_value,
                        significant=None if p_value is None else p_value < 0.05,
                        computed_at=now,
                    )
                )
        ExperimentResult.objects.bulk_create(rows)
    return 3


def _summary(values: np.ndarray) -> dict[str, float]:
    return {name: round(float(np.percentile(values, q)), 1) for name, q in (("p50", 50), ("p95", 95), ("p99", 99))} | {
        "max": round(float(values.max()), 1)
    }


if __name__ == "__main__":
    main()
