"""The operators' admin pages: job runs with numbers for people, "Run selected tasks" counted on the schedule,
and model activations and rollbacks that ask first (issue #18)."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django_celery_beat.models import PeriodicTask

from config.celery import app
from recommendations.models import ModelVersion
from recommendations.services import model_version_activate
from tasks.models import JobRun
from tests.admin_helpers import admin_url
from tests.factories.recommendations import ModelVersionFactory
from tests.factories.tasks import JobRunFactory


def test_the_job_run_list_shows_durations_and_rows_as_people_read_them(admin_client):
    JobRunFactory(
        job="tasks.training.train_model",
        duration_seconds=0.5532059140000456,
        rows_written=1_234_567,
        params={"args": [], "kwargs": {"kind": "mf"}},
        status=JobRun.Status.SKIPPED,
    )

    html = admin_client.get(admin_url(JobRun, "changelist")).content.decode()

    assert "0.6 s" in html and "1,234,567" in html and "0.5532" not in html
    assert "training.train_model (mf)" in html
    assert 'title="Skipped (another run holds the lock)">Skipped<' in html


def test_run_selected_tasks_counts_a_run_on_the_schedule(admin_client, monkeypatch):
    monkeypatch.setitem(app.conf, "task_always_eager", True)  # the embedded demo: run here, no broker
    monkeypatch.setitem(app.conf, "task_eager_propagates", True)
    schedule = PeriodicTask.objects.get(task="tasks.maintenance.mark_lost_job_runs")
    assert schedule.last_run_at is None and schedule.total_run_count == 0

    response = admin_client.post(
        admin_url(PeriodicTask, "changelist"), {"action": "run_tasks", "_selected_action": [schedule.pk]}, follow=True
    )

    assert response.status_code == 200
    schedule.refresh_from_db()
    assert schedule.last_run_at is not None and schedule.total_run_count == 1
    assert JobRun.objects.filter(job="tasks.maintenance.mark_lost_job_runs").exists()
    jobs = admin_client.get(reverse("staff:jobs")).content.decode()
    row = jobs[jobs.index(schedule.name) :]
    assert "never" not in row[: row.index("</tr>")]


@pytest.mark.parametrize("action", ["activate", "roll_back"])
def test_activate_and_roll_back_in_the_admin_ask_first(admin_client, action):
    first, second = ModelVersionFactory(), ModelVersionFactory(heavy_item=30)
    model_version_activate(version_id=first.pk)
    model_version_activate(version_id=second.pk)  # first is retired: a rollback would bring it back
    chosen = first if action == "activate" else second
    url = admin_url(ModelVersion, "changelist")

    asked = admin_client.post(url, {"action": action, "_selected_action": [chosen.pk]})

    html = asked.content.decode()
    assert asked.status_code == 200 and 'id="confirm-model-change"' in html
    assert first.version in html and second.version in html  # serving now, and after
    second.refresh_from_db()
    assert second.status == ModelVersion.Status.ACTIVE  # nothing changed yet

    done = admin_client.post(url, {"action": action, "_selected_action": [chosen.pk], "confirmed": "yes"}, follow=True)

    assert done.status_code == 200
    first.refresh_from_db()
    assert first.status == ModelVersion.Status.ACTIVE
