"""Job-run bookkeeping that more than one job needs: marking attempts whose worker died as lost."""
from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from django.db.models import F, Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from tasks.models import JobRun


def job_runs_mark_lost(*, silent_since: dt.datetime, reason: str) -> int:
    """Mark as LOST every running attempt with no heartbeat since `silent_since` (a row from before
    heartbeats: none since it started); returns how many. Their finish is their last sign of life."""
    stale = Q(heartbeat_at__lt=silent_since) | Q(heartbeat_at__isnull=True, started_at__lt=silent_since)
    return _mark_lost(JobRun.objects.filter(stale, status=JobRun.Status.RUNNING), reason)


def job_runs_mark_lost_by_id(*, run_ids: Iterable[int], reason: str) -> int:
    """Mark the given attempts LOST if they are still recorded as running; returns how many."""
    return _mark_lost(JobRun.objects.filter(pk__in=list(run_ids), status=JobRun.Status.RUNNING), reason)


def _mark_lost(runs, reason: str) -> int:  # noqa: ANN001 — a JobRun queryset
    # One conditional UPDATE: an attempt that finished meanwhile is no longer "running" and is left alone.
    now = timezone.now()
    return runs.update(
        status=JobRun.Status.LOST,
        finished_at=Coalesce(F("heartbeat_at"), F("started_at")),
        error=f"{reason} (marked lost at {now:%Y-%m-%d %H:%M:%S} UTC)",
    )
