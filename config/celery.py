"""The Celery app: configured from Django settings (CELERY_*), tasks discovered in installed apps.

Production settings unless DJANGO_SETTINGS_MODULE says otherwise; a worker never runs with DEBUG on (Django
would keep every query of a long job in memory, and errors would carry settings). Queues and routes:
config/queues.py. On RabbitMQ a starting worker declares every job queue, not only the ones it consumes.
"""

import logging
import os

from celery import Celery
from celery.signals import worker_init
from kombu.exceptions import OperationalError

from config.observability import celery_logs  # noqa: F401 - connects the log lines' task and request ids

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")

app = Celery("reco")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
logger = logging.getLogger(__name__)


@worker_init.connect
def _refuse_debug(**_: object) -> None:
    from config.settings.guards import refuse_debug

    refuse_debug("a Celery worker")


@worker_init.connect
def _declare_every_queue(**_: object) -> None:
    # RabbitMQ's native delayed delivery (countdowns and the jobs' retry back-off, on quorum queues) binds
    # every queue of the app when a worker starts; a queue nobody has declared yet cannot be bound, and the
    # worker would log delayed delivery as unavailable. Declaring is idempotent: same name, same arguments.
    with app.connection_for_write() as connection:
        if connection.transport.driver_type != "amqp":
            return
        try:
            connection.ensure_connection(max_retries=3)
            channel = connection.default_channel
            for queue in app.amqp.queues.values():
                queue.bind(channel).declare()
        except OperationalError as error:  # the consumer connects (and retries) by itself
            logger.warning("could not declare the job queues: %s", error)
