"""Factories for the tasks app."""

from __future__ import annotations

import factory
from django.utils import timezone

from tasks.models import JobRun


class JobRunFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = JobRun

    job = "tasks.maintenance.prune_job_runs"
    status = JobRun.Status.SUCCEEDED
    started_at = factory.LazyFunction(timezone.now)
    finished_at = factory.LazyAttribute(lambda o: o.started_at)
    duration_seconds = 0.1
