"""Celery queues: one per job domain, declared alike on RabbitMQ (durable quorum queues) and Redis.

Each job module routes to its domain's queue (`route_task`): tasks.features → features, tasks.training →
training, tasks.experiments → experiments, tasks.maintenance → housekeeping. The names come from
settings.RECO_QUEUES (CELERY_<DOMAIN>_QUEUE), read at routing time. Anything else (Celery's own tasks) goes
to the default queue. Run a worker pool per queue group, e.g. `-Q training -c 1` beside
`-Q features,housekeeping`, so a long training never holds up the feature refresh.
"""

from __future__ import annotations

from kombu import Exchange, Queue

QUEUE_OF_MODULE = {
    "tasks.features": "features",
    "tasks.training": "training",
    "tasks.experiments": "experiments",
    "tasks.maintenance": "housekeeping",
}
# A 30 s check that expires after 30 s: it must not wait behind an hour of feature shards.
QUEUE_OF_TASK = {"tasks.features.ensure_online_features": "housekeeping"}


def celery_queues(names: list[str], *, exchange: str, delivery_limit: int) -> tuple[Queue, ...]:
    """One durable queue per distinct name, bound to the topic `exchange` by its own name. The quorum
    arguments take effect on RabbitMQ; the Redis transport ignores queue arguments."""
    jobs = Exchange(exchange, type="topic", durable=True)
    arguments = {"x-queue-type": "quorum", "x-delivery-limit": delivery_limit}
    return tuple(
        Queue(name, jobs, routing_key=name, durable=True, queue_arguments=arguments) for name in dict.fromkeys(names)
    )


def queue_group(task_name: str) -> str | None:
    """The domain whose queue runs `task_name`, or None for the default queue."""
    if task_name in QUEUE_OF_TASK:
        return QUEUE_OF_TASK[task_name]
    return QUEUE_OF_MODULE.get(task_name.rpartition(".")[0])


def route_task(name: str, args, kwargs, options, task=None, **kw) -> dict | None:
    """Celery router (CELERY_TASK_ROUTES): the queue of the task's domain; an explicit queue= still wins."""
    from django.conf import settings

    group = queue_group(name)
    return {"queue": settings.RECO_QUEUES[group]} if group else None
