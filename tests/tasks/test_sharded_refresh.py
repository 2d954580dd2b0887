"""The sharded full refresh (issue #15): a parent run, one JobShard per profile-id range, each counted once.

The end-to-end tests run real workers on RabbitMQ (the machine's broker, with queues and an exchange of
this test's own, deleted afterwards): a prefork pool of 2 processes shares the shards, and a shard whose
worker is killed with SIGKILL is redelivered, taken over and still counted once.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections import Counter

import psycopg
import pytest
from amqp.exceptions import NotFound
from django.urls import reverse
from django.utils import timezone
from kombu import Connection

from config.celery import app
from config.queues import celery_queues
from features.store import FeatureStore
from tasks.features import ensure_online_features, refresh_user_features, refresh_user_features_shard
from tasks.models import JobRun, JobShard
from tasks.services import fan_out_record, job_shard_finish
from tests.factories.catalog import TitleFactory
from tests.factories.tasks import JobRunFactory
from tests.factories.users import ProfileFactory, ViewingEventFactory
from tests.tasks import processes
from tests.tasks.processes import Worker, wait_for, worker_env
from tests.tasks.test_queues import RABBITMQ_URL, queue_is_quorum
from users.models import ViewingEvent

SHARD = "tasks.features.refresh_user_features_shard"
FAN_OUT = "tasks.features.refresh_user_features"


def _watching_profiles() -> list[int]:
    """12 profiles who watched two titles each; their ids."""
    profiles = ProfileFactory.create_batch(12)
    titles = TitleFactory.create_batch(2, duration_minutes=60)
    now = timezone.now()
    for i, profile in enumerate(profiles):
        for title in titles:
            ViewingEventFactory(profile=profile, title=title, started_at=now - dt.timedelta(days=i % 5 + 1))
    return sorted(p.id for p in profiles)


@pytest.fixture
def world(transactional_db):
    """The profiles, committed: for worker processes."""
    return _watching_profiles()


@pytest.fixture
def history(db):
    """The profiles, in this test's transaction: for tasks run in this process."""
    return _watching_profiles()


def _parent(**fields) -> JobRun:
    return JobRunFactory(job=FAN_OUT, status=JobRun.Status.RUNNING, finished_at=None, duration_seconds=None, **fields)


@pytest.fixture
def eager():
    """No broker: tasks run in this process as they are sent (the embedded mode)."""
    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = previous


# --- counting -------------------------------------------------------------------------------------------
def test_a_shard_counts_once_and_the_last_one_finishes_the_parent(db):
    parent = _parent(started_at=timezone.now() - dt.timedelta(seconds=30))
    first, second = fan_out_record(parent_id=parent.pk, ranges=[(1, 5), (5, 9)])

    assert job_shard_finish(shard_id=first.pk, rows=4, seconds=1.5)
    assert not job_shard_finish(shard_id=first.pk, rows=4, seconds=1.5)  # a redelivery: counted already
    parent.refresh_from_db()
    assert (parent.status, parent.shards_done, parent.rows_written, parent.progress) == ("running", 1, 4, "1/2 shards")

    assert job_shard_finish(shard_id=second.pk, rows=3, seconds=2.0)
    parent.refresh_from_db()
    assert (parent.status, parent.shards_total, parent.shards_done, parent.rows_written) == ("succeeded", 2, 2, 7)
    assert parent.duration_seconds >= 30 and parent.finished_at is not None  # the whole refresh, not one shard


def test_a_failed_shard_fails_the_parent_and_says_which(db):
    parent = _parent(started_at=timezone.now())
    first, second = fan_out_record(parent_id=parent.pk, ranges=[(1, 5), (5, 9)])
    assert job_shard_finish(shard_id=first.pk, error="Traceback ...\nRuntimeError: feature code bug")
    assert not job_shard_finish(shard_id=first.pk, error="again")  # fails once
    assert job_shard_finish(shard_id=second.pk, rows=4)

    parent.refresh_from_db()
    assert (parent.status, parent.shards_done, parent.shards_failed) == ("failed", 1, 1)
    assert "shard 0 [1, 5): RuntimeError: feature code bug" in parent.error


def test_a_parent_swept_lost_while_its_shards_waited_finishes_when_they_do(db):
    parent = _parent(started_at=timezone.now())
    (shard,) = fan_out_record(parent_id=parent.pk, ranges=[(1, 5)])
    JobRun.objects.filter(pk=parent.pk).update(status=JobRun.Status.LOST, error="no heartbeat for 180 s")
    assert job_shard_finish(shard_id=shard.pk, rows=4)
    parent.refresh_from_db()
    assert parent.status == "succeeded" and "no heartbeat for 180 s" in parent.error


def test_a_failed_shard_delivered_again_that_succeeds_moves_to_done(db):
    parent = _parent(started_at=timezone.now())
    (shard,) = fan_out_record(parent_id=parent.pk, ranges=[(1, 5)])
    JobRun.objects.filter(pk=parent.pk).update(shards_total=2)  # another shard still out: not finished yet
    job_shard_finish(shard_id=shard.pk, error="boom")
    assert job_shard_finish(shard_id=shard.pk, rows=4)
    parent.refresh_from_db()
    assert (parent.shards_done, parent.shards_failed, parent.rows_written) == (1, 0, 4)


def test_a_shard_task_delivered_twice_runs_once(history):
    parent = _parent(started_at=timezone.now())
    (shard,) = fan_out_record(parent_id=parent.pk, ranges=[(history[0], history[-1] + 1)])

    assert (
        refresh_user_features_shard.apply(args=(history[0], history[-1] + 1), kwargs={"shard_id": shard.pk}).get() == 12
    )
    assert (
        refresh_user_features_shard.apply(args=(history[0], history[-1] + 1), kwargs={"shard_id": shard.pk}).get() == 0
    )

    runs = list(JobRun.objects.filter(parent=parent).order_by("started_at").values_list("status", flat=True))
    assert runs == ["succeeded", "skipped"]
    parent.refresh_from_db()
    shard.refresh_from_db()
    assert (parent.status, parent.rows_written, shard.attempts, shard.rows_written) == ("succeeded", 12, 2, 12)


# --- the fan-out ----------------------------------------------------------------------------------------
def test_the_full_refresh_fans_out_and_finishes_in_the_embedded_mode(history, eager):
    assert refresh_user_features.apply(kwargs={"shard_size": 5}).get() == 3  # 12 ids, 5 per shard

    parent = JobRun.objects.get(job=FAN_OUT)
    assert (parent.status, parent.shards_total, parent.shards_done, parent.rows_written) == ("succeeded", 3, 3, 12)
    assert set(parent.shards.values_list("status", flat=True)) == {"done"}
    assert JobRun.objects.filter(job=SHARD, parent=parent, status="succeeded").count() == 3
    assert FeatureStore().get_many("user", history).found.all()


def test_a_second_full_refresh_is_skipped_while_one_is_running(history, eager):
    running = _parent(started_at=timezone.now(), heartbeat_at=timezone.now())
    fan_out_record(parent_id=running.pk, ranges=[(1, 5)])

    assert refresh_user_features.apply().get() == 0

    skipped = JobRun.objects.exclude(pk=running.pk).get(job=FAN_OUT)
    assert skipped.status == "skipped" and f"run {running.pk}" in skipped.error and "0/1 shards" in skipped.error
    assert not JobRun.objects.filter(job=SHARD).exists()


def test_a_store_emptied_during_a_full_refresh_is_rebuilt_once_that_refresh_has_finished(history, eager):
    from features.services import online_store_rebuild_release

    online_store_rebuild_release()  # the store as Redis comes back empty: no sentinel
    running = _parent(started_at=timezone.now(), heartbeat_at=timezone.now())
    (shard,) = fan_out_record(parent_id=running.pk, ranges=[(1, 5)])

    assert ensure_online_features.apply().get() is False  # a refresh now would be skipped: not claimed
    job_shard_finish(shard_id=shard.pk, rows=4)
    assert ensure_online_features.apply().get() is True  # claimed now, and a full refresh run
    assert ensure_online_features.apply().get() is False
    assert JobRun.objects.filter(job=FAN_OUT, status="succeeded").exclude(pk=running.pk).count() == 1
    assert FeatureStore().get_many("user", history).found.all()


def test_a_full_refresh_of_no_profiles_finishes_at_once(db, eager):
    assert refresh_user_features.apply().get() == 0
    assert JobRun.objects.get(job=FAN_OUT).status == "succeeded"


# --- real workers on RabbitMQ -----------------------------------------------------------------------------
LOCK_SECONDS = 1  # a killed shard's lock lapses this long after its last renewal
DELAYED_DELIVERY = [f"celery_delayed_{level}" for level in range(28)]


@pytest.fixture(scope="module")
def delayed_delivery_queues():
    """The queues and exchanges of RabbitMQ's native delayed delivery, which a worker on quorum queues
    declares when it starts: deleted after this module's tests if none of them existed before."""
    with Connection(RABBITMQ_URL, connect_timeout=5) as connection:
        existed = any(_queue_exists(connection, name) for name in DELAYED_DELIVERY)
    yield
    if not existed:
        with Connection(RABBITMQ_URL, connect_timeout=5) as connection:
            channel = connection.channel()
            for name in DELAYED_DELIVERY:
                channel.queue_delete(name)
                channel.exchange_delete(name)
            channel.exchange_delete("celery_delayed_delivery")


@pytest.fixture
def rabbitmq(world, tmp_path, delayed_delivery_queues):
    """start(name, processes): a worker on this test's own RabbitMQ queues; send(task, **kwargs) sends a
    task to the features queue. The queues and the exchange are deleted afterwards."""
    prefix = f"reco-t{uuid.uuid4().hex[:8]}-"
    names = {group: f"{prefix}{group}" for group in ("features", "training", "experiments", "housekeeping")}
    env_queues = {f"CELERY_{group.upper()}_QUEUE": name for group, name in names.items()}
    env = {
        **worker_env(f"{prefix}default"),
        **env_queues,
        "CELERY_BROKER_URL": RABBITMQ_URL,
        "CELERY_EXCHANGE": f"{prefix}jobs",
        "RECO_JOB_LOCK_SECONDS": str(LOCK_SECONDS),
    }
    (features,) = celery_queues([names["features"]], exchange=f"{prefix}jobs", delivery_limit=10)
    connection = Connection(RABBITMQ_URL, connect_timeout=5)
    started: list[Worker] = []

    def start(name: str, processes: int) -> Worker:
        worker = Worker(f"{prefix}{name}", names["features"], env, tmp_path / f"{name}.log", processes=processes)
        started.append(worker)
        return worker.start()

    def send(task_name: str, countdown: float | None = None, **kwargs) -> None:
        app.send_task(task_name, kwargs=kwargs, queue=features, connection=connection, countdown=countdown)

    try:
        yield start, send, names, connection
    finally:
        for worker in started:
            worker.kill()  # idle by now (the tests wait for the parent): no warm shutdown to wait for
        channel = connection.channel()
        for name in [*names.values(), f"{prefix}default"]:
            channel.queue_delete(name)
        channel.exchange_delete(f"{prefix}jobs")
        connection.release()


def _queue_exists(connection: Connection, name: str) -> bool:
    channel = connection.channel()
    try:
        channel.queue_declare(name, passive=True)
        return True
    except NotFound:
        return False
    finally:
        if channel.is_open:
            channel.close()


class HeldHistory:
    """An ACCESS EXCLUSIVE lock on the viewing history from another connection: every shard that starts
    blocks on its first read, mid-flight, until `release()`."""

    def __enter__(self) -> HeldHistory:
        self.connection = psycopg.connect(processes.tests_database_url(), autocommit=False)
        self.connection.execute(f'LOCK TABLE "{ViewingEvent._meta.db_table}" IN ACCESS EXCLUSIVE MODE')
        return self

    def release(self) -> None:
        if not self.connection.closed:
            self.connection.rollback()
            self.connection.close()

    def __exit__(self, *exc: object) -> None:
        self.release()


def _blocked_shard_runs(count: int) -> list[JobRun]:
    runs = list(JobRun.objects.filter(job=SHARD, status="running"))
    return runs if len({run.worker for run in runs}) >= count else []


def _assert_every_shard_counted_once(parent: JobRun, profiles: int) -> None:
    shards = list(parent.shards.all())
    assert parent.status == "succeeded" and parent.shards_done == parent.shards_total == len(shards)
    assert parent.rows_written == profiles and sum(s.rows_written for s in shards) == profiles
    succeeded_params = JobRun.objects.filter(job=SHARD, parent=parent, status="succeeded").values_list(
        "params", flat=True
    )
    succeeded = Counter(tuple(params["args"]) for params in succeeded_params)
    assert len(succeeded) == len(shards) and set(succeeded.values()) == {1}  # one successful attempt per shard
    assert not JobRun.objects.filter(status="running").exists()


def test_two_worker_processes_share_the_shards_and_the_parent_finishes_when_all_have(rabbitmq, world):
    start, send, names, connection = rabbitmq
    worker = start("pair", processes=2)
    assert all(queue_is_quorum(connection, names[group]) for group in ("features",))
    assert "Global QoS is disabled" in worker.log_tail(chars=1 << 20)  # quorum queues detected

    with HeldHistory() as history:
        send(FAN_OUT, shard_size=2)  # 12 profiles: 6 shards
        parent = wait_for(
            lambda: JobRun.objects.filter(job=FAN_OUT, shards_total=6).first(), within=30, message="the fan-out"
        )
        blocked = wait_for(lambda: _blocked_shard_runs(2), within=30, message="two shards running at once")
        assert len({run.worker for run in blocked}) == 2  # two processes, each mid-shard
        parent.refresh_from_db()
        assert parent.status == "running" and parent.shards_done == 0
        history.release()

    wait_for(
        lambda: JobRun.objects.filter(pk=parent.pk, status="succeeded").exists(),
        within=60,
        message="the parent to finish",
    )
    parent.refresh_from_db()
    _assert_every_shard_counted_once(parent, profiles=len(world))
    assert set(parent.shards.values_list("attempts", flat=True)) == {1}
    assert FeatureStore().get_many("user", world).found.all()

    # A countdown (what a retry's back-off sends) on quorum queues: held by RabbitMQ's native delayed
    # delivery, not by the worker, and delivered when due.
    sent = time.monotonic()
    send("tasks.maintenance.mark_lost_job_runs", countdown=1)
    wait_for(
        lambda: JobRun.objects.filter(job="tasks.maintenance.mark_lost_job_runs").exists(),
        within=30,
        message="the delayed task",
    )
    assert time.monotonic() - sent >= 1
    assert "delayed delivery will not be available" not in worker.log_tail(chars=1 << 20)


def test_shards_of_a_killed_worker_are_redelivered_and_still_count_once(rabbitmq, world):
    start, send, _names, _connection = rabbitmq
    first = start("first", processes=2)

    with HeldHistory() as history:
        send(FAN_OUT, shard_size=2)
        parent = wait_for(
            lambda: JobRun.objects.filter(job=FAN_OUT, shards_total=6).first(), within=30, message="the fan-out"
        )
        killed = wait_for(lambda: _blocked_shard_runs(2), within=30, message="two shards mid-flight")
        first.kill()  # SIGKILL, main process and pool: no ack, no cleanup
        history.release()
    time.sleep(0.5)
    assert JobShard.objects.filter(parent=parent, status="done").count() == 0
    start("second", processes=2)  # RabbitMQ requeued the unacked shards when the connection died

    wait_for(
        lambda: JobRun.objects.filter(pk=parent.pk, status="succeeded").exists(),
        within=60,
        message="the parent to finish",
    )
    parent.refresh_from_db()
    _assert_every_shard_counted_once(parent, profiles=len(world))
    lost = JobRun.objects.filter(parent=parent, status="lost")
    assert set(lost.values_list("pk", flat=True)) == {run.pk for run in killed}
    assert all("took over" in run.error for run in lost)
    killed_ranges = {tuple(run.params["args"]) for run in killed}
    attempts = {(s.range_start, s.range_end): s.attempts for s in parent.shards.all()}
    assert {r: n for r, n in attempts.items() if r in killed_ranges} == dict.fromkeys(killed_ranges, 2)
    assert set(attempts.values()) == {1, 2}


# --- where operators see it ------------------------------------------------------------------------------
def test_operators_see_a_fan_outs_progress_shards_and_lost_attempts(admin_client, editor_client):
    parent = _parent(started_at=timezone.now())
    first, _ = fan_out_record(parent_id=parent.pk, ranges=[(1, 5), (5, 9)])
    job_shard_finish(shard_id=first.pk, rows=4)
    JobRunFactory(
        job=SHARD,
        parent=parent,
        status=JobRun.Status.LOST,
        params={"args": [5, 9]},
        error="its worker was lost; attempt 2 (run 9) took over",
    )

    listing = admin_client.get(reverse("admin:tasks_jobrun_changelist")).content.decode()
    assert "1/2 shards" in listing
    page = admin_client.get(reverse("admin:tasks_jobrun_change", args=[parent.pk]))
    assert page.status_code == 200
    html = page.content.decode()
    assert "shard attempts" in html.lower() and "its worker was lost" in html and "[5, 9]" in html
    assert "1/2 shards" in editor_client.get(reverse("staff:jobs")).content.decode()  # the staff jobs page
