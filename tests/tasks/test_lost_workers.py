"""Jobs that survive a killed worker (issue #14): locks tied to a live holder, lost runs, redelivery.

The end-to-end tests start their own Celery workers (and a redis-server) and kill them with SIGKILL.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
import uuid

import pytest
from celery import shared_task
from django.core.management import call_command
from django.db import connection
from django.db.models import F
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from features.store import FeatureStore
from recommendations.models import ModelKind, ModelVersion
from recommendations.registry import load_artifact
from recommendations.services import STAGING_DIR
from tasks.features import ensure_online_features
from tasks.locks import JobLock
from tasks.maintenance import mark_lost_job_runs, prune_job_runs
from tasks.models import JobRun
from tasks.runner import JobTask
from tasks.training import train_model
from tests.factories.catalog import TitleFactory
from tests.factories.tasks import JobRunFactory
from tests.factories.users import ProfileFactory, ViewingEventFactory
from tests.tasks.processes import RedisServer, Worker, free_port, tasks_sent_to, wait_for, worker_env

LOCK_SECONDS = 1  # unit tests: a lock lapses a second after its holder stops renewing


@shared_task(base=JobTask, bind=True, name="tests.tasks.hold_for")
def hold_for(self, seconds: float, lock_name: str = "tests.hold_for") -> int:
    """A job that holds its lock for `seconds` (longer than the lock's TTL, so only the heartbeat keeps it)."""
    return self.run_job(lambda: time.sleep(seconds) or 1, lock_name=lock_name)


@pytest.fixture
def short_locks(settings):
    settings.RECO_JOB_LOCK_SECONDS = LOCK_SECONDS


def _running_run(task_id: str, lock_name: str) -> JobRun:
    """What a worker killed mid-job leaves: its attempt recorded as running, its lock not yet lapsed."""
    now = timezone.now()
    run = JobRunFactory(
        job="tasks.maintenance.prune_job_runs",
        task_id=task_id,
        status=JobRun.Status.RUNNING,
        started_at=now,
        finished_at=None,
        heartbeat_at=now,
        lock_name=lock_name,
        lock_token=uuid.uuid4().hex,
    )
    assert JobLock(lock_name, token=run.lock_token).acquire()
    return run


# --- the lock ---------------------------------------------------------------------------------------
def test_a_lock_nobody_renews_lapses_after_its_ttl(short_locks):
    dead = JobLock("lapse.test")
    assert dead.acquire() and not JobLock("lapse.test").acquire()
    time.sleep(LOCK_SECONDS + 0.2)
    successor = JobLock("lapse.test")
    assert successor.acquire() and successor.holder() == successor.token
    assert not dead.renew()  # taken over: the old holder cannot renew it back
    dead.release()  # and releasing it is a no-op, never someone else's lock
    assert successor.holder() == successor.token
    successor.release()


def test_renewing_takes_back_a_lock_that_vanished_with_an_emptied_redis(short_locks):
    from django_redis import get_redis_connection

    lock = JobLock("vanish.test")
    assert lock.acquire()
    get_redis_connection("default").delete(lock.key)  # what a restarted, empty Redis looks like
    assert lock.renew() and lock.holder() == lock.token
    lock.release()


def test_the_heartbeat_keeps_a_job_locked_past_the_lock_ttl(transactional_db, short_locks):
    def hold() -> None:
        try:
            hold_for.apply(args=(LOCK_SECONDS * 3,))
        finally:
            connection.close()  # this thread's own connection

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        time.sleep(LOCK_SECONDS * 2)  # two TTLs in: only renewals keep the lock
        assert hold_for.apply(args=(0,)).get() == 0
    finally:
        holder.join(timeout=30)
    statuses = list(
        JobRun.objects.filter(job="tests.tasks.hold_for").order_by("started_at").values_list("status", flat=True)
    )
    assert statuses == [JobRun.Status.SUCCEEDED, JobRun.Status.SKIPPED]
    assert JobLock("tests.hold_for").holder() is None  # released at the end


# --- redelivery and lost runs -------------------------------------------------------------------------
def test_a_redelivered_task_waits_out_its_dead_attempts_lock_then_takes_over(db, short_locks):
    dead = _running_run("task-1", "tasks.maintenance.prune_job_runs")
    started = time.monotonic()

    assert prune_job_runs.apply(kwargs={"keep_days": 30}, task_id="task-1").get() == 0

    assert time.monotonic() - started < LOCK_SECONDS * 4 / 3 + 2  # no longer than the lock takes to lapse
    runs = list(JobRun.objects.filter(task_id="task-1").order_by("started_at"))
    assert [(r.attempt, r.status) for r in runs] == [(1, "lost"), (2, "succeeded")]
    assert "took over" in runs[0].error and runs[0].finished_at == dead.heartbeat_at
    assert runs[1].lock_token != dead.lock_token and runs[1].worker


def test_a_redelivery_gives_way_to_an_earlier_attempt_that_is_still_alive(db, short_locks):
    alive = _running_run("task-2", "tasks.maintenance.prune_job_runs")
    lock, stop = JobLock(alive.lock_name, token=alive.lock_token), threading.Event()

    def keep_renewing() -> None:
        while not stop.wait(0.2):
            lock.renew()

    renewer = threading.Thread(target=keep_renewing)
    renewer.start()
    try:
        assert prune_job_runs.apply(kwargs={"keep_days": 30}, task_id="task-2").get() == 0
    finally:
        stop.set()
        renewer.join()
        lock.release()
    statuses = dict(JobRun.objects.filter(task_id="task-2").values_list("attempt", "status"))
    assert statuses == {1: JobRun.Status.RUNNING, 2: JobRun.Status.SKIPPED}


def test_another_runs_lock_is_never_taken_over(db, short_locks):
    JobRunFactory(task_id="task-3", status=JobRun.Status.RUNNING, lock_token=uuid.uuid4().hex)
    other = JobLock("tasks.maintenance.prune_job_runs")
    assert other.acquire()  # held by some other run of the job
    started = time.monotonic()
    assert prune_job_runs.apply(kwargs={"keep_days": 30}, task_id="task-3").get() == 0
    assert time.monotonic() - started < 1  # skipped at once: that holder is not the lost attempt
    other.release()
    assert JobRun.objects.get(task_id="task-3", attempt=2).status == JobRun.Status.SKIPPED


def test_the_sweep_marks_runs_without_a_heartbeat_lost_and_only_those(db):
    now = timezone.now()
    silent = JobRunFactory(status="running", finished_at=None, heartbeat_at=now - dt.timedelta(minutes=10))
    legacy = JobRunFactory(
        status="running", finished_at=None, heartbeat_at=None, started_at=now - dt.timedelta(hours=5)
    )
    beating = JobRunFactory(status="running", finished_at=None, heartbeat_at=now - dt.timedelta(seconds=20))
    done = JobRunFactory(status="succeeded", heartbeat_at=now - dt.timedelta(hours=1))

    assert mark_lost_job_runs.apply().get() == 2
    assert mark_lost_job_runs.apply().get() == 0  # run twice: nothing more to mark

    status = dict(JobRun.objects.values_list("pk", "status"))
    assert (status[silent.pk], status[legacy.pk]) == ("lost", "lost")
    assert (status[beating.pk], status[done.pk]) == ("running", "succeeded")
    silent.refresh_from_db()
    assert silent.finished_at == silent.heartbeat_at and "no heartbeat for 180 s" in silent.error


def test_the_housekeeping_schedules_exist_after_migrate(db):
    sweep = PeriodicTask.objects.get(task="tasks.maintenance.mark_lost_job_runs")
    check = PeriodicTask.objects.get(task="tasks.features.ensure_online_features")
    assert sweep.crontab.minute == "*/5"
    assert (check.interval.every, check.interval.period, check.expire_seconds) == (30, "seconds", 30)


# --- real workers, killed -------------------------------------------------------------------------------
VISIBILITY_SECONDS = 4  # the broker hands an unacked message to another worker after this
KILLED_LOCK_SECONDS = 3  # heartbeats every second
SLOW_NCF = {"n_epochs": 12}  # two fits of 2-5 s on the world below (one thread): the kill lands mid-training


@pytest.fixture
def workers(transactional_db, tmp_path):
    """start(name, **env): a worker of this test's own queue; every one is stopped (or already killed)
    and the queue deleted afterwards."""
    from config.celery import app

    queue = f"reco-kill-{uuid.uuid4().hex[:8]}"
    started: list[Worker] = []

    def start(name: str, **env: str) -> Worker:
        worker = Worker(f"{queue}-{name}", queue, worker_env(queue, **env), tmp_path / f"worker-{name}.log")
        started.append(worker)
        return worker.start()

    try:
        with tasks_sent_to(queue):
            yield start
    finally:
        for worker in started:
            worker.stop()
        with app.connection_for_write() as connection:
            connection.default_channel.queue_delete(queue)


def test_a_training_killed_mid_run_is_redelivered_taken_over_and_finished(workers, settings, tmp_path):
    settings.RECO_ARTIFACT_DIR = artifacts = tmp_path / "artifacts"
    call_command(
        "generate_synthetic",
        "--titles",
        "300",
        "--accounts",
        "300",
        "--events",
        "30000",
        "--seed",
        "3",
        "--as-of",
        "2026-06-01",
        "--ground-truth-dir",
        str(tmp_path / "truth"),
        verbosity=0,
    )
    env = {
        "CELERY_VISIBILITY_TIMEOUT": str(VISIBILITY_SECONDS),
        "RECO_JOB_LOCK_SECONDS": str(KILLED_LOCK_SECONDS),
        "RECO_ARTIFACT_DIR": str(artifacts),
        "OMP_NUM_THREADS": "1",
    }  # torch on one thread: steady epochs on a busy 2-core machine
    first = workers("first", **env)

    result = train_model.delay(kind=ModelKind.NCF, params=SLOW_NCF)
    beating = JobRun.objects.filter(
        task_id=result.id, status="running", heartbeat_at__gt=F("started_at") + dt.timedelta(seconds=0.5)
    )
    run = wait_for(beating.first, within=60, message="the training to start and beat")
    assert JobLock(run.lock_name).holder() == run.lock_token  # the live holder is the one on the JobRun
    first.kill()
    killed = time.monotonic()

    assert not ModelVersion.objects.exists()  # nothing registered by the killed attempt
    assert JobRun.objects.get(pk=run.pk).status == JobRun.Status.RUNNING  # what it left behind
    time.sleep(max(0.0, killed + VISIBILITY_SECONDS + 0.5 - time.monotonic()))  # overdue when a worker looks
    workers("second", **env)  # restores the dead worker's unacked message on start, and runs it

    interactions = result.get(timeout=120)

    assert interactions > 0
    runs = list(JobRun.objects.filter(task_id=result.id).order_by("started_at"))
    assert [(r.attempt, r.status) for r in runs] == [(1, "lost"), (2, "succeeded")]
    assert runs[0].pk == run.pk and "took over" in runs[0].error
    assert not JobRun.objects.filter(status=JobRun.Status.RUNNING).exists()
    version = ModelVersion.objects.get()  # exactly one: the second attempt's, complete
    assert version.kind == ModelKind.NCF and version.status == ModelVersion.Status.ACTIVE
    load_artifact(kind=version.kind, artifact_path=version.artifact_path, checksum=version.checksum)
    assert [p.name for p in (artifacts / "ncf").iterdir()] == [version.version]
    assert not any((artifacts / STAGING_DIR).iterdir())  # no half-saved model left


def test_online_features_are_rebuilt_at_once_after_redis_comes_back_empty(workers, tmp_path):
    profiles = ProfileFactory.create_batch(3)
    titles = TitleFactory.create_batch(2, duration_minutes=60)
    for profile in profiles:
        for title in titles:
            ViewingEventFactory(profile=profile, title=title, started_at=timezone.now() - dt.timedelta(days=1))
    redis_server = RedisServer(free_port(), tmp_path / "redis.log").start()
    try:
        workers("features", REDIS_URL=redis_server.url)
        store = FeatureStore.from_url(redis_server.url)
        ids = [p.id for p in profiles]

        def rebuilt() -> bool:
            return bool(
                store.get_many("user", ids).found.all()
                and store.get_many("content", [t.id for t in titles]).found.all()
            )

        assert ensure_online_features.delay().get(timeout=30) is True  # a new Redis has no sentinel
        wait_for(rebuilt, within=30, message="the first full refresh")
        assert ensure_online_features.delay().get(timeout=30) is False  # populated: nothing to do

        redis_server.kill()
        redis_server.start()  # the same port, empty
        assert not store.get_many("user", ids).found.any()

        wait_for(lambda: ensure_online_features.delay().get(timeout=30), within=30, message="the check to claim")
        wait_for(rebuilt, within=30, message="features after Redis came back empty")
        assert ensure_online_features.delay().get(timeout=30) is False  # once: one full refresh per emptying
        fan_outs = JobRun.objects.filter(job="tasks.features.refresh_user_features", status="succeeded")
        assert fan_outs.count() == 2
    finally:
        redis_server.kill()
