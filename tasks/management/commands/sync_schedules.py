"""Add the default job schedules that are missing; never touches ones that exist."""

from __future__ import annotations

from django.core.management.base import BaseCommand
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

from tasks.schedules import sync_default_schedules


class Command(BaseCommand):
    help = (
        "Create the default periodic jobs of tasks/schedules.py in django-celery-beat, by name. Schedules that "
        "already exist are left as operators edited them. Delete one in the admin and run this to restore it."
    )

    def handle(self, *args, **options) -> None:
        created = sync_default_schedules(PeriodicTask, CrontabSchedule, IntervalSchedule)
        for name in created:
            self.stdout.write(f"created: {name}")
        self.stdout.write(self.style.SUCCESS(f"{len(created)} schedules created, the others already existed"))
