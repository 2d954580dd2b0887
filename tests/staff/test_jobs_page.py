"""Jobs: failures first, recent runs by keyset pages, and the beat schedule linked to its admin."""

from __future__ import annotations

import datetime as dt

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from tasks.models import JobRun
from tests.factories.tasks import JobRunFactory

JOBS = reverse("staff:jobs")


def test_failures_come_first_with_their_error(editor_client):
    now = timezone.now()
    JobRunFactory(
        job="tasks.training.train_model",
        status=JobRun.Status.FAILED,
        started_at=now - dt.timedelta(hours=3),
        error="Traceback...\nValueError: no history",
    )
    JobRunFactory(
        job="tasks.features.refresh_content_features",
        started_at=now,
        rows_written=1234,
        duration_seconds=2.5532059140000456,
    )

    html = editor_client.get(JOBS).content.decode()

    assert html.index('id="failures"') < html.index('id="runs"') < html.index('id="schedule"')
    failures = html[html.index('id="failures"') : html.index('id="runs"')]
    assert "tasks.training.train_model" in failures and "ValueError: no history" in failures
    assert "refresh_content_features" not in failures
    runs = html[html.index('id="runs"') : html.index('id="schedule"')]
    assert "1,234" in runs and "2.6 s" in runs and "2.553" not in runs  # numbers as people read them


def test_recent_runs_page_backwards_by_id(editor_client, settings):
    from staff import selectors

    runs = [JobRunFactory() for _ in range(5)]
    first = selectors.jobs_overview(per_page=2)
    second = selectors.jobs_overview(before=first.next_before, per_page=2)
    third = selectors.jobs_overview(before=second.next_before, per_page=2)
    assert [r.pk for r in first.runs + second.runs + third.runs] == [r.pk for r in reversed(runs)]
    assert third.next_before is None
    response = editor_client.get(JOBS, {"before": runs[-1].pk})
    assert [r.pk for r in response.context["overview"].runs] == [r.pk for r in reversed(runs[:-1])]


def test_the_beat_schedule_links_to_where_operators_edit_it(editor_client):
    html = editor_client.get(JOBS).content.decode()
    tasks = list(PeriodicTask.objects.all())
    assert tasks, "the default schedules come with a migration"
    assert reverse("admin:django_celery_beat_periodictask_changelist") in html
    for task in tasks:
        assert reverse("admin:django_celery_beat_periodictask_change", args=[task.pk]) in html


def test_the_page_takes_the_same_queries_for_few_or_many_runs(editor_client):
    JobRunFactory(status=JobRun.Status.FAILED)
    with CaptureQueriesContext(connection) as few:
        editor_client.get(JOBS)
    JobRun.objects.bulk_create(
        [
            JobRun(
                job=f"job-{i % 7}",
                status=JobRun.Status.FAILED if i % 10 == 0 else JobRun.Status.SUCCEEDED,
                started_at=timezone.now(),
            )
            for i in range(300)
        ]
    )
    with CaptureQueriesContext(connection) as many:
        response = editor_client.get(JOBS)
    assert len(many) == len(few)
    assert len(response.context["overview"].runs) == 50 and len(response.context["overview"].failures) == 20
