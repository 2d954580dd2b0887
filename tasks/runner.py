"""The Celery base task for jobs: lock, JobRun record, bounded retries on transient errors."""
from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable

import celery
from django.db import InterfaceError, OperationalError
from django.utils import timezone
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from tasks.locks import job_lock
from tasks.models import JobRun

logger = logging.getLogger(__name__)

# Worth retrying: the database or Redis went away for a moment. Anything else is a bug or bad input.
TRANSIENT_ERRORS = (OperationalError, InterfaceError, RedisConnectionError, RedisTimeoutError)


class JobTask(celery.Task):
    """Base for every job: acks late, retries transient failures with back-off, records each attempt."""

    acks_late = True
    reject_on_worker_lost = True
    autoretry_for = TRANSIENT_ERRORS
    max_retries = 3
    retry_backoff = 5
    retry_backoff_max = 300
    retry_jitter = True
    soft_time_limit = 30 * 60
    time_limit = 35 * 60
    lock_seconds = 40 * 60  # longer than the hard limit: a killed run's lock expires on its own

    def run_job(self, work: Callable[[], int], *, lock_name: str | None = None) -> int:
        """Run `work` (returns rows written) under the job's lock and record the attempt as a JobRun."""
        params = {"args": list(self.request.args or []), "kwargs": dict(self.request.kwargs or {})}
        run = JobRun.objects.create(
            job=self.name,
            task_id=self.request.id or "",
            params=params,
            attempt=(self.request.retries or 0) + 1,
            started_at=timezone.now(),
        )
        started = time.perf_counter()
        with job_lock(lock_name or self.name, timeout_seconds=self.lock_seconds) as acquired:
            if not acquired:
                _finish(run, JobRun.Status.SKIPPED, started)
                logger.info("%s skipped: another run holds the lock", self.name)
                return 0
            try:
                rows = int(work())
            except BaseException as error:
                will_retry = isinstance(error, TRANSIENT_ERRORS) and (self.request.retries or 0) < self.max_retries
                status = JobRun.Status.RETRYING if will_retry else JobRun.Status.FAILED
                _finish(run, status, started, error="".join(traceback.format_exception(error))[-4000:])
                raise
        _finish(run, JobRun.Status.SUCCEEDED, started, rows=rows)
        return rows


def _finish(run: JobRun, status: str, started: float, *, rows: int = 0, error: str = "") -> None:
    run.status = status
    run.finished_at = timezone.now()
    run.duration_seconds = time.perf_counter() - started
    run.rows_written = rows
    run.error = error
    run.save(update_fields=["status", "finished_at", "duration_seconds", "rows_written", "error"])
