"""The Celery base task for jobs: a lock tied to a live holder, a JobRun per attempt, bounded retries.

Surviving a killed worker (issue #14): tasks ack late and are rejected back to the queue when their worker
process dies (every job is idempotent, see the README), and the broker redelivers what a dead worker
never acked (Redis: after CELERY_BROKER_TRANSPORT_OPTIONS' visibility_timeout). The redelivered attempt
finds the dead attempt still recorded as running and its lock still held for at most one lock TTL; it
waits that out, takes the lock over, marks the dead attempt LOST and runs the job again.

Fanned-out jobs (issue #15): `run_fan_out` records a parent run and one JobShard per range, enqueues a shard
task per range and leaves the parent running; each shard task runs through `run_job(..., shard_id=)`, which
records its attempt under the parent and counts the shard once (tasks.services.job_shard_finish), the last
one finishing the parent.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import traceback
from collections.abc import Callable
from contextlib import nullcontext

import celery
from django.db import DatabaseError, InterfaceError, OperationalError, close_old_connections, connection, transaction
from django.utils import timezone
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from tasks.locks import JobLock
from tasks.models import JobRun
from tasks.services import (
    fan_out_record,
    fan_out_running,
    job_runs_mark_lost_by_id,
    job_shard_finish,
    job_shard_started,
)

logger = logging.getLogger(__name__)

# Worth retrying: the database or Redis went away for a moment. Anything else is a bug or bad input.
TRANSIENT_ERRORS = (OperationalError, InterfaceError, RedisConnectionError, RedisTimeoutError)
TAKEOVER_POLL_SECONDS = 0.5
SHARD_ENQUEUE_CHUNK = 500  # shard messages published per producer checkout (bounded, never one giant group)


class JobSkipped(Exception):
    """Raised by a job's work to record its attempt as SKIPPED with this reason (nothing to do)."""


class JobTask(celery.Task):
    """Base for every job: acks late (and requeues when its worker dies), retries transient failures with
    back-off, holds the job's lock with a heartbeat, records each attempt."""

    acks_late = True
    reject_on_worker_lost = True  # every job is idempotent: running one again after a crash is safe
    autoretry_for = TRANSIENT_ERRORS
    max_retries = 3
    retry_backoff = 5
    retry_backoff_max = 300
    retry_jitter = True
    soft_time_limit = 30 * 60
    time_limit = 35 * 60

    def run_job(
        self,
        work: Callable[[], int],
        *,
        lock_name: str | None = None,
        shard_id: int | None = None,
        stays_running: bool = False,
    ) -> int:
        """Run `work` (returns rows written) under the job's lock and record the attempt as a JobRun.

        `shard_id`: this attempt works on that JobShard; it is recorded under the shard's parent run, skipped
        when the shard is already done, and counted on the parent once. `stays_running`: a fan-out, whose
        run is finished by its last shard (run_fan_out)."""
        task_id = self.request.id or ""
        shard = None
        if shard_id is not None:
            shard = job_shard_started(shard_id=shard_id)
            if shard is None:  # its parent was pruned meanwhile
                logger.info("%s: shard %s is gone, nothing to do", self.name, shard_id)
                return 0
        lock = JobLock(lock_name or self.name)
        earlier = list(JobRun.objects.filter(task_id=task_id).values_list("pk", "status")) if task_id else []
        now = timezone.now()
        run = JobRun.objects.create(
            parent_id=shard.parent_id if shard else None,
            job=self.name,
            task_id=task_id,
            params={"args": list(self.request.args or []), "kwargs": dict(self.request.kwargs or {})},
            attempt=max((self.request.retries or 0) + 1, len(earlier) + 1),
            started_at=now,
            heartbeat_at=now,
            worker=f"{socket.gethostname()}:{os.getpid()}",
            lock_name=lock.name,
            lock_token=lock.token,
        )
        started = time.perf_counter()
        if shard is not None and shard.status == shard.Status.DONE:
            _finish(run, JobRun.Status.SKIPPED, started, error="this shard is already done (a redelivery)")
            return 0
        dead = [pk for pk, status in earlier if status == JobRun.Status.RUNNING]
        try:
            acquired = lock.acquire() or (bool(dead) and _take_over(lock, dead))
        except BaseException as error:  # Redis unreachable: record the attempt, then retry or fail
            self._record_failure(run, started, error)
            raise
        if not acquired:
            _finish(run, JobRun.Status.SKIPPED, started)
            logger.info("%s skipped: another run holds the lock %s", self.name, lock.name)
            return 0
        if dead:
            job_runs_mark_lost_by_id(
                run_ids=dead, reason=f"its worker was lost; attempt {run.attempt} (run {run.pk}) took over"
            )
            logger.warning("%s: took over from lost attempt(s) %s of task %s", self.name, dead, task_id)
        heartbeat = Heartbeat(lock, run.pk, parent_id=run.parent_id)
        heartbeat.start()
        self.request.job_run = run  # for run_fan_out's work
        try:
            rows = int(work())
        except JobSkipped as skipped:
            _finish(run, JobRun.Status.SKIPPED, started, error=str(skipped))
            logger.info("%s skipped: %s", self.name, skipped)
            return 0
        except BaseException as error:
            self._record_failure(run, started, error, shard_id=shard_id)
            raise
        finally:
            heartbeat.stop()
            _release(lock)
        if stays_running:
            return rows
        with transaction.atomic():  # the shard counts exactly when its attempt is recorded as succeeded
            _finish(run, JobRun.Status.SUCCEEDED, started, rows=rows)
            if shard_id is not None:
                job_shard_finish(shard_id=shard_id, rows=rows, seconds=run.duration_seconds)
        return rows

    def run_fan_out(self, ranges: Callable[[], list[tuple[int, int]]], shard_task: celery.Task) -> int:
        """Fan a job out: record this attempt as the parent run with one JobShard per [start, end) range of
        `ranges()`, enqueue `shard_task(start, end, shard_id=)` for each, one message at a time, and return
        the number of shards. The parent stays running until its last shard finishes it (at once when there
        are none). Skipped while another fan-out of the job is still running: two never overlap."""

        def fan_out() -> int:
            parent = self.request.job_run
            other = fan_out_running(job=self.name, exclude_run_id=parent.pk)
            if other is not None:
                raise JobSkipped(f"run {other.pk} of this job is still running ({other.progress})")
            shards = fan_out_record(parent_id=parent.pk, ranges=ranges())
            eager = self.app.conf.task_always_eager  # no broker: the shards run here, one after another
            for chunk_start in range(0, len(shards), SHARD_ENQUEUE_CHUNK):
                with nullcontext() if eager else self.app.producer_or_acquire() as producer:
                    for shard in shards[chunk_start : chunk_start + SHARD_ENQUEUE_CHUNK]:
                        shard_task.apply_async(
                            args=(shard.range_start, shard.range_end), kwargs={"shard_id": shard.pk}, producer=producer
                        )
            if not shards:
                _finish(parent, JobRun.Status.SUCCEEDED, time.perf_counter())
            return len(shards)

        return self.run_job(fan_out, stays_running=True)

    def _record_failure(
        self, run: JobRun, started: float, error: BaseException, *, shard_id: int | None = None
    ) -> None:
        will_retry = isinstance(error, TRANSIENT_ERRORS) and (self.request.retries or 0) < self.max_retries
        status = JobRun.Status.RETRYING if will_retry else JobRun.Status.FAILED
        message = "".join(traceback.format_exception(error))[-4000:]
        _finish(run, status, started, error=message)
        if shard_id is not None and status == JobRun.Status.FAILED:
            job_shard_finish(shard_id=shard_id, seconds=run.duration_seconds, error=message)


class Heartbeat(threading.Thread):
    """Renews the lock and stamps the JobRun every third of the lock's TTL while the job runs."""

    def __init__(self, lock: JobLock, run_id: int, *, parent_id: int | None = None) -> None:
        super().__init__(name=f"heartbeat-{lock.name}", daemon=True)
        self.lock, self.run_id = lock, run_id
        self.beating = [run_id] if parent_id is None else [run_id, parent_id]  # a shard keeps its parent alive
        self.interval = max(lock.ttl_seconds / 3, 0.1)
        self._stopped = threading.Event()

    def run(self) -> None:
        try:
            while not self._stopped.wait(self.interval):
                self.beat()
        finally:
            connection.close()  # this thread's own database connection

    def beat(self) -> None:
        try:
            if not self.lock.renew():
                logger.error("lost the lock %s to another holder while still running", self.lock.name)
        except RedisError as error:  # a hiccup: the next beat (well within the TTL) tries again
            logger.warning("could not renew the lock %s: %s", self.lock.name, error)
        try:
            close_old_connections()
            JobRun.objects.filter(pk__in=self.beating).update(heartbeat_at=timezone.now())
        except DatabaseError as error:
            logger.warning("could not record the heartbeat of job run %s: %s", self.run_id, error)

    def stop(self) -> None:
        self._stopped.set()
        self.join(timeout=5)


def _take_over(lock: JobLock, dead_run_ids: list[int]) -> bool:
    """A redelivered task whose earlier attempt is still recorded as running: wait (at most one lock TTL
    and one heartbeat) for that attempt's lock to lapse, then take it. An earlier attempt that is alive
    keeps renewing it, and we give up; so does anyone else holding it."""
    tokens = set(JobRun.objects.filter(pk__in=dead_run_ids).values_list("lock_token", flat=True))
    deadline = time.monotonic() + lock.ttl_seconds * 4 / 3 + 1
    while time.monotonic() < deadline:
        if lock.acquire():
            return True
        holder = lock.holder()
        if holder is not None and holder not in tokens:
            return False  # another run of the job holds it: not ours to wait for
        time.sleep(TAKEOVER_POLL_SECONDS)
    return False


def _release(lock: JobLock) -> None:
    try:
        lock.release()
    except RedisError as error:  # it lapses within one TTL anyway
        logger.warning("could not release the lock %s: %s", lock.name, error)


def _finish(run: JobRun, status: str, started: float, *, rows: int = 0, error: str = "") -> None:
    run.status = status
    run.finished_at = timezone.now()
    run.duration_seconds = time.perf_counter() - started
    run.rows_written = rows
    run.error = error
    run.save(update_fields=["status", "finished_at", "duration_seconds", "rows_written", "error"])
