"""Housekeeping jobs."""
from __future__ import annotations

from datetime import timedelta

from celery import shared_task
from django.db.models import OuterRef, Subquery
from django.utils import timezone

from tasks.models import JobRun
from tasks.runner import JobTask


@shared_task(base=JobTask, bind=True, name="tasks.maintenance.prune_job_runs")
def prune_job_runs(self, keep_days: int = 30) -> int:
    """Delete job-run records older than `keep_days`; the newest run of each job always stays."""

    def prune() -> int:
        newest_of_job = JobRun.objects.filter(job=OuterRef("job")).order_by("-started_at").values("pk")[:1]
        old = JobRun.objects.filter(started_at__lt=timezone.now() - timedelta(days=keep_days))
        deleted, _ = old.exclude(pk=Subquery(newest_of_job)).delete()
        return deleted

    return self.run_job(prune)
