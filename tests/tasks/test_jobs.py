"""Jobs: JobRun records, locks, retries, default schedules; and a real worker consuming the real broker."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from celery.exceptions import Retry
from django.core.management import call_command
from django.db import OperationalError
from django.utils import timezone
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from tasks.locks import JobLock, job_lock
from tasks.maintenance import prune_job_runs
from tasks.models import JobRun
from tasks.schedules import DEFAULT_SCHEDULES, sync_default_schedules
from tests.factories.tasks import JobRunFactory


def _old_runs(job: str, ages_in_days: list[int]) -> list[JobRun]:
    now = timezone.now()
    return [JobRunFactory(job=job, started_at=now - dt.timedelta(days=age)) for age in ages_in_days]


def test_job_run_is_recorded_with_rows_and_duration(db):
    _old_runs("some.job", [40, 50, 1])

    result = prune_job_runs.apply(kwargs={"keep_days": 30}).get()

    assert result == 2
    run = JobRun.objects.filter(job="tasks.maintenance.prune_job_runs").get()
    assert run.status == JobRun.Status.SUCCEEDED
    assert run.rows_written == 2 and run.duration_seconds is not None and run.finished_at >= run.started_at
    assert run.params == {"args": [], "kwargs": {"keep_days": 30}}


def test_running_twice_gives_the_same_result(db):
    _old_runs("some.job", [40, 50, 1])
    prune_job_runs.apply(kwargs={"keep_days": 30}).get()
    remaining = set(JobRun.objects.filter(job="some.job").values_list("pk", flat=True))

    assert prune_job_runs.apply(kwargs={"keep_days": 30}).get() == 0
    assert set(JobRun.objects.filter(job="some.job").values_list("pk", flat=True)) == remaining


def test_newest_run_of_a_job_is_kept_however_old(db):
    _old_runs("rare.job", [90, 60])
    prune_job_runs.apply(kwargs={"keep_days": 30}).get()
    assert JobRun.objects.filter(job="rare.job").count() == 1


def test_lock_prevents_overlapping_runs(db):
    _old_runs("some.job", [40, 50, 1])
    with job_lock("tasks.maintenance.prune_job_runs", timeout_seconds=60) as acquired:
        assert acquired
        assert prune_job_runs.apply(kwargs={"keep_days": 30}).get() == 0
    run = JobRun.objects.get(job="tasks.maintenance.prune_job_runs")
    assert run.status == JobRun.Status.SKIPPED
    assert JobRun.objects.filter(job="some.job").count() == 3
    assert JobLock("tasks.maintenance.prune_job_runs").holder() is None


def test_lock_is_exclusive_and_released(db):
    with (
        job_lock("exclusive.test", timeout_seconds=60) as first,
        job_lock("exclusive.test", timeout_seconds=60) as second,
    ):
        assert first and not second
    with job_lock("exclusive.test", timeout_seconds=60) as again:
        assert again


def test_transient_failure_is_retried_then_recorded_as_failed(db, monkeypatch):
    def lost_connection(self):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr("django.db.models.query.QuerySet.delete", lost_connection)
    with pytest.raises(Retry):  # first attempt: Celery schedules a retry with back-off
        prune_job_runs.apply(kwargs={"keep_days": 30}, retries=0, throw=True)
    with pytest.raises(OperationalError):  # last attempt: no retries left
        prune_job_runs.apply(kwargs={"keep_days": 30}, retries=prune_job_runs.max_retries, throw=True)

    runs = list(JobRun.objects.filter(job="tasks.maintenance.prune_job_runs").order_by("attempt"))
    assert [(r.attempt, r.status) for r in runs] == [(1, "retrying"), (prune_job_runs.max_retries + 1, "failed")]
    assert "server closed the connection" in runs[-1].error


def test_bug_fails_at_once_without_retrying(db, monkeypatch):
    monkeypatch.setattr("django.db.models.query.QuerySet.delete", lambda self: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        prune_job_runs.apply(kwargs={"keep_days": 30}, throw=True)
    assert list(JobRun.objects.values_list("status", flat=True)) == ["failed"]


def test_default_schedules_exist_after_migrate(db):
    names = set(PeriodicTask.objects.values_list("name", flat=True))
    assert set(DEFAULT_SCHEDULES) <= names


def test_sync_never_overwrites_an_operator_edit(db):
    name = "Refresh content features and trending"
    edited = PeriodicTask.objects.get(name=name)
    edited.crontab = CrontabSchedule.objects.create(minute="*/15", timezone="UTC")
    edited.kwargs = json.dumps({"edited": True})
    edited.save()
    PeriodicTask.objects.filter(name="Prune old job runs").delete()

    created = sync_default_schedules(PeriodicTask, CrontabSchedule)
    call_command("sync_schedules", verbosity=0)

    assert created == ["Prune old job runs"]
    edited.refresh_from_db()
    assert edited.crontab.minute == "*/15" and json.loads(edited.kwargs) == {"edited": True}


def test_task_sent_through_the_broker_runs_on_a_real_worker(transactional_db, celery_worker_process):
    _old_runs("some.job", [40, 1])

    result = prune_job_runs.delay(keep_days=30)

    assert result.get(timeout=60) == 1
    run = JobRun.objects.get(job="tasks.maintenance.prune_job_runs")
    assert run.status == JobRun.Status.SUCCEEDED and run.task_id == result.id
    assert JobRun.objects.filter(job="some.job").count() == 1
