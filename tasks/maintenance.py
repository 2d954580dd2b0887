"""Housekeeping jobs."""

from __future__ import annotations

from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.db.models import OuterRef, Subquery
from django.utils import timezone

from config.partitions import partitions_maintain
from tasks.models import JobRun
from tasks.runner import JobTask
from tasks.services import job_runs_mark_lost

LOST_AFTER_TTLS = 3  # heartbeats come every third of a lock TTL: nine missed in a row is a dead worker


@shared_task(base=JobTask, bind=True, name="tasks.maintenance.prune_job_runs")
def prune_job_runs(self, keep_days: int = 30) -> int:
    """Delete job-run records older than `keep_days`; the newest run of each job always stays."""

    def prune() -> int:
        newest_of_job = JobRun.objects.filter(job=OuterRef("job")).order_by("-started_at").values("pk")[:1]
        old = JobRun.objects.filter(started_at__lt=timezone.now() - timedelta(days=keep_days))
        deleted, _ = old.exclude(pk=Subquery(newest_of_job)).delete()
        return deleted

    return self.run_job(prune)


@shared_task(base=JobTask, bind=True, name="tasks.maintenance.mark_lost_job_runs")
def mark_lost_job_runs(self, silent_seconds: int | None = None) -> int:
    """Job runs still "running" without a heartbeat for `silent_seconds` (default three lock TTLs) lost
    their worker: mark them LOST. Idempotent (one conditional UPDATE)."""
    silent = silent_seconds or LOST_AFTER_TTLS * settings.RECO_JOB_LOCK_SECONDS
    return self.run_job(
        lambda: job_runs_mark_lost(
            silent_since=timezone.now() - timedelta(seconds=silent),
            reason=f"no heartbeat for {silent} s: its worker died",
        )
    )


@shared_task(base=JobTask, bind=True, name="tasks.maintenance.maintain_partitions")
def maintain_partitions(self, months_ahead: int | None = None, retention_months: int | None = None) -> int:
    """Create the next months' partitions of viewing history and API events and drop the months past the
    retention window (settings RECO_PARTITION_*). Idempotent: a second run finds nothing to do."""
    ahead = settings.RECO_PARTITION_MONTHS_AHEAD if months_ahead is None else months_ahead
    keep = settings.RECO_PARTITION_RETENTION_MONTHS if retention_months is None else retention_months
    return self.run_job(lambda: partitions_maintain(months_ahead=ahead, retention_months=keep, now=timezone.now()))
