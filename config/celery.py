"""The Celery app: configured from Django settings (CELERY_*), tasks discovered in installed apps.

Production settings unless DJANGO_SETTINGS_MODULE says otherwise; a worker never runs with DEBUG on (Django
would keep every query of a long job in memory, and errors would carry settings).
"""
import os

from celery import Celery
from celery.signals import worker_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")

app = Celery("reco")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_init.connect
def _refuse_debug(**_: object) -> None:
    from config.settings.guards import refuse_debug

    refuse_debug("a Celery worker")
