"""Job metrics read from the JobRun table at scrape time, so that every worker on every host counts, whichever
process a scrape reaches (a Celery worker serves no HTTP). One grouped query per scrape, reused for 10 s."""

from __future__ import annotations

import logging
import time
from datetime import timedelta

from django.db.models import Avg, Count, Max
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily

log = logging.getLogger(__name__)

WINDOW = timedelta(hours=24)
REUSE_SECONDS = 10.0


def job_runs_recent(*, since) -> tuple[list[dict], list[dict]]:
    """(runs started since `since` per job and status with their mean and longest duration,
    the last successful finish per job)."""
    from tasks.models import JobRun

    recent = list(
        JobRun.objects.filter(started_at__gte=since)
        .values("job", "status")
        .annotate(runs=Count("id"), mean=Avg("duration_seconds"), longest=Max("duration_seconds"))
        .order_by()
    )
    last = list(
        JobRun.objects.filter(status=JobRun.Status.SUCCEEDED)
        .values("job")
        .annotate(finished=Max("finished_at"))
        .order_by()
    )
    return recent, last


class JobRunCollector:
    def __init__(self) -> None:
        self._cached: tuple[float, list] | None = None

    def describe(self) -> list:
        return []  # collected lazily: registering must not query the database

    def collect(self) -> list:
        now = time.monotonic()
        if self._cached is None or now - self._cached[0] > REUSE_SECONDS:
            self._cached = (now, self._families())
        return self._cached[1]

    def _families(self) -> list:
        up = GaugeMetricFamily("reco_job_metrics_up", "1 when the job metrics could be read from the database.")
        try:
            recent, last = job_runs_recent(since=timezone.now() - WINDOW)
        except Exception:  # a scrape must answer while the database is away
            log.warning("job metrics unavailable", exc_info=True)
            up.add_metric([], 0)
            return [up]
        up.add_metric([], 1)
        runs = GaugeMetricFamily(
            "reco_job_runs_24h", "Job runs started in the last 24 h, by status.", labels=["job", "status"]
        )
        mean = GaugeMetricFamily(
            "reco_job_duration_mean_seconds_24h",
            "Mean duration of the last 24 h's finished runs, by status.",
            labels=["job", "status"],
        )
        longest = GaugeMetricFamily(
            "reco_job_duration_max_seconds_24h",
            "Longest finished run of the last 24 h, by status.",
            labels=["job", "status"],
        )
        for row in recent:
            labels = [row["job"], row["status"]]
            runs.add_metric(labels, row["runs"])
            if row["mean"] is not None:
                mean.add_metric(labels, row["mean"])
                longest.add_metric(labels, row["longest"])
        success = GaugeMetricFamily(
            "reco_job_last_success_timestamp_seconds", "When each job last succeeded.", labels=["job"]
        )
        for row in last:
            if row["finished"] is not None:
                success.add_metric([row["job"]], row["finished"].timestamp())
        return [up, runs, mean, longest, success]
