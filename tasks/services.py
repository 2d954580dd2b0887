"""Job-run bookkeeping that more than one job needs: marking attempts whose worker died as lost, the parent
run and shards of a fanned-out job, and the run counts of schedules started by hand."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from django.db import transaction
from django.db.models import F, Q
from django.db.models.functions import Coalesce
from django.utils import timezone
from django_celery_beat.models import PeriodicTask, PeriodicTasks

from tasks.models import JobRun, JobShard


def job_runs_mark_lost(*, silent_since: dt.datetime, reason: str) -> int:
    """Mark as LOST every running attempt with no heartbeat since `silent_since` (a row from before
    heartbeats: none since it started); returns how many. Their finish is their last sign of life."""
    stale = Q(heartbeat_at__lt=silent_since) | Q(heartbeat_at__isnull=True, started_at__lt=silent_since)
    return _mark_lost(JobRun.objects.filter(stale, status=JobRun.Status.RUNNING), reason)


def job_runs_mark_lost_by_id(*, run_ids: Iterable[int], reason: str) -> int:
    """Mark the given attempts LOST if they are still recorded as running; returns how many."""
    return _mark_lost(JobRun.objects.filter(pk__in=list(run_ids), status=JobRun.Status.RUNNING), reason)


def _mark_lost(runs, reason: str) -> int:
    # One conditional UPDATE: an attempt that finished meanwhile is no longer "running" and is left alone.
    now = timezone.now()
    return runs.update(
        status=JobRun.Status.LOST,
        finished_at=Coalesce(F("heartbeat_at"), F("started_at")),
        error=f"{reason} (marked lost at {now:%Y-%m-%d %H:%M:%S} UTC)",
    )


# --- fanned-out runs ----------------------------------------------------------------------------------------
def fan_out_running(*, job: str, exclude_run_id: int | None = None) -> JobRun | None:
    """A fanned-out run of `job` (other than `exclude_run_id`) still running (its shards alive: a silent
    one is swept LOST), or None."""
    runs = JobRun.objects.filter(job=job, status=JobRun.Status.RUNNING, shards_total__gt=0)
    if exclude_run_id is not None:
        runs = runs.exclude(pk=exclude_run_id)
    return runs.order_by("-started_at").first()


def fan_out_record(*, parent_id: int, ranges: list[tuple[int, int]]) -> list[JobShard]:
    """Record one pending shard per [start, end) range under the parent run, and their number on it."""
    with transaction.atomic():
        shards = JobShard.objects.bulk_create(
            JobShard(parent_id=parent_id, number=number, range_start=start, range_end=end)
            for number, (start, end) in enumerate(ranges)
        )
        JobRun.objects.filter(pk=parent_id).update(shards_total=len(shards), heartbeat_at=timezone.now())
    return shards


def job_shard_started(*, shard_id: int) -> JobShard | None:
    """Count an attempt of the shard and show life on its parent; None when the shard is gone (pruned)."""
    shard = JobShard.objects.filter(pk=shard_id).first()
    if shard is not None:
        JobShard.objects.filter(pk=shard_id).update(attempts=F("attempts") + 1)
        JobRun.objects.filter(pk=shard.parent_id).update(heartbeat_at=timezone.now())
    return shard


def job_shard_finish(*, shard_id: int, rows: int = 0, seconds: float | None = None, error: str = "") -> bool:
    """Record a shard's outcome (an error means it failed) and, if it was the last one, finish its parent
    with the shards' rows and its whole duration. Counts once: returns False when the shard was already
    done (a redelivery), or already failed and fails again. A failed shard that later succeeds moves from
    the failed count to the done one."""
    now = timezone.now()
    with transaction.atomic():
        shard = JobShard.objects.select_for_update().filter(pk=shard_id).first()
        if shard is None or shard.status == JobShard.Status.DONE or (error and shard.status == JobShard.Status.FAILED):
            return False
        parent = JobRun.objects.select_for_update().get(pk=shard.parent_id)  # serialises the parent's counters
        if error:
            shard.status, shard.error = JobShard.Status.FAILED, error
            parent.shards_failed += 1
        else:
            if shard.status == JobShard.Status.FAILED:
                parent.shards_failed -= 1
            shard.status, shard.error, shard.rows_written = JobShard.Status.DONE, "", rows
            parent.shards_done += 1
            parent.rows_written += rows
        shard.duration_seconds, shard.finished_at = seconds, now
        shard.save(update_fields=["status", "error", "rows_written", "duration_seconds", "finished_at"])
        parent.heartbeat_at = now
        fields = ["shards_done", "shards_failed", "rows_written", "heartbeat_at"]
        # A parent the sweep marked LOST (no shard showed life for minutes: workers down or busy) that then
        # finished after all is no longer lost; the note says what happened.
        unfinished = parent.status in (JobRun.Status.RUNNING, JobRun.Status.LOST)
        if unfinished and parent.shards_done + parent.shards_failed == parent.shards_total:
            lost_note = f"\n(earlier: {parent.error})" if parent.status == JobRun.Status.LOST else ""
            parent.status = JobRun.Status.SUCCEEDED if not parent.shards_failed else JobRun.Status.FAILED
            parent.finished_at = now
            parent.duration_seconds = (now - parent.started_at).total_seconds()
            parent.error = (_failed_shards_summary(parent.pk) if parent.shards_failed else "") + lost_note
            fields += ["status", "finished_at", "duration_seconds", "error"]
        parent.save(update_fields=fields)
    return True


def _failed_shards_summary(parent_id: int) -> str:
    failed = JobShard.objects.filter(parent_id=parent_id, status=JobShard.Status.FAILED).order_by("number")
    lines = [
        f"shard {s.number} [{s.range_start}, {s.range_end}): {(s.error.strip().splitlines() or ['?'])[-1]}"
        for s in failed[:20]
    ]
    return f"{failed.count()} shard(s) failed:\n" + "\n".join(lines)


def periodic_tasks_record_run(*, task_ids: Iterable[int], at: dt.datetime | None = None) -> int:
    """Count a run of each schedule that an operator started by hand ("Run selected tasks"), as beat counts its
    own sends: last run now, one more run. Tells beat the schedules changed, so that it reloads these counts
    rather than save its older copies over them. Returns how many schedules were updated."""
    with transaction.atomic():
        updated = PeriodicTask.objects.filter(pk__in=list(task_ids)).update(
            last_run_at=at or timezone.now(), total_run_count=F("total_run_count") + 1
        )
        PeriodicTasks.update_changed()
    return updated
