"""Queues per job domain (issue #15): every job's route, beat's schedules routed alike, the delivery
guarantees of issue #14 on each job, and the declarations RabbitMQ makes quorum queues of."""

from __future__ import annotations

import os
import uuid

import pytest
from amqp.exceptions import PreconditionFailed
from django_celery_beat.models import PeriodicTask
from django_celery_beat.schedulers import ModelEntry
from kombu import Connection

from config.celery import app
from config.queues import celery_queues, queue_group
from tasks.runner import JobTask

# The machine's RabbitMQ (.ci/services.sh starts it); tests use queue names of their own and delete them.
RABBITMQ_URL = os.environ.get("RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672//")

# The jobs of tasks/ and the domain whose queue must run each.
EXPECTED_QUEUE = {
    "tasks.features.refresh_user_features": "features",
    "tasks.features.refresh_user_features_shard": "features",
    "tasks.features.refresh_recent_user_features": "features",
    "tasks.features.refresh_content_features": "features",
    "tasks.features.write_feature_snapshot": "features",
    "tasks.features.ensure_online_features": "housekeeping",  # a 30 s check: never behind feature shards
    "tasks.training.train_model": "training",
    "tasks.experiments.update_bandit": "experiments",
    "tasks.experiments.compute_experiment_metrics": "experiments",
    "tasks.experiments.prune_exploration_logs": "experiments",
    "tasks.maintenance.prune_job_runs": "housekeeping",
    "tasks.maintenance.mark_lost_job_runs": "housekeeping",
}


@pytest.fixture
def named_queues(settings):
    """Distinct queue names for this test, so a route cannot pass by accident."""
    settings.RECO_QUEUES = {group: f"q-{group}-{uuid.uuid4().hex[:6]}" for group in settings.RECO_QUEUES}
    return settings.RECO_QUEUES


def _queue_of(options: dict, task_name: str) -> str:
    return app.amqp.router.route(dict(options), task_name)["queue"].name


def test_every_job_routes_to_its_domains_queue(named_queues):
    app.loader.import_default_modules()  # CELERY_IMPORTS: every job module, as a worker loads them
    jobs = {name for name in app.tasks if name.startswith("tasks.")}
    assert jobs >= set(EXPECTED_QUEUE)
    for name, group in EXPECTED_QUEUE.items():
        assert _queue_of({}, name) == named_queues[group], name
    for name in jobs:  # a job added since has a domain too, never the default queue
        assert queue_group(name) in named_queues and _queue_of({}, name) == named_queues[queue_group(name)], name


def test_a_queue_named_on_the_call_wins_and_other_tasks_use_the_default_queue(named_queues):
    assert _queue_of({"queue": "elsewhere"}, "tasks.training.train_model") == "elsewhere"
    assert _queue_of({}, "celery.chord_unlock") == app.conf.task_default_queue


def test_every_default_schedule_reaches_its_queue_through_beat(db, named_queues):
    schedules = PeriodicTask.objects.filter(task__startswith="tasks.")
    assert {s.task for s in schedules} >= set(EXPECTED_QUEUE) - {"tasks.features.refresh_user_features_shard"}
    for schedule in schedules:
        entry = ModelEntry(schedule, app=app)  # what beat sends: the schedule's options, then the router
        group = EXPECTED_QUEUE.get(entry.task, queue_group(entry.task))
        assert _queue_of(entry.options, entry.task) == named_queues[group], schedule.name


def test_every_job_acks_late_requeues_on_a_lost_worker_and_prefetches_one():
    assert app.conf.worker_prefetch_multiplier == 1
    for name in EXPECTED_QUEUE:
        task = app.tasks[name]
        assert task.acks_late, name
        if isinstance(task, JobTask):
            assert task.reject_on_worker_lost and task.max_retries == 3, name


def test_the_declarations_are_durable_quorum_queues_on_one_topic_exchange():
    queues = celery_queues(["a", "b", "a"], exchange="x.jobs", delivery_limit=7)
    assert [q.name for q in queues] == ["a", "b"]
    for queue in queues:
        assert queue.durable and not queue.auto_delete and not queue.exclusive
        assert queue.queue_arguments == {"x-queue-type": "quorum", "x-delivery-limit": 7}
        assert (queue.exchange.name, queue.exchange.type, queue.routing_key) == ("x.jobs", "topic", queue.name)


def queue_is_quorum(connection: Connection, name: str) -> bool:
    """Whether RabbitMQ holds `name` as a quorum queue: after a passive declare (it exists; nothing is
    created), it refuses to redeclare it as a classic one, naming the quorum type it has."""
    channel = connection.channel()
    try:
        channel.queue_declare(name, passive=True)
        channel.queue_declare(name, durable=True, auto_delete=False, arguments={"x-queue-type": "classic"})
    except PreconditionFailed as refused:
        return "current is 'quorum'" in str(refused)
    finally:
        if channel.is_open:
            channel.close()
    return False


def test_rabbitmq_declares_them_as_quorum_queues():
    prefix = f"reco-t{uuid.uuid4().hex[:8]}-"
    queues = celery_queues([f"{prefix}features", f"{prefix}training"], exchange=f"{prefix}jobs", delivery_limit=10)
    with Connection(RABBITMQ_URL, connect_timeout=5) as connection:
        channel = connection.channel()
        try:
            for queue in queues:
                queue(channel).declare()
            assert all(queue_is_quorum(connection, queue.name) for queue in queues)
            classic = f"{prefix}classic"
            channel.queue_declare(classic, durable=True, auto_delete=False)
            assert not queue_is_quorum(connection, classic)  # the probe can tell the difference
        finally:
            cleanup = connection.channel()
            for name in [q.name for q in queues] + [f"{prefix}classic"]:
                cleanup.queue_delete(name)
            cleanup.exchange_delete(f"{prefix}jobs")
            cleanup.close()
