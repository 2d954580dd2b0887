"""The experiment jobs on a real worker through the real broker; each runs twice without adding anything."""

from __future__ import annotations

import pytest
from django_celery_beat.models import PeriodicTask

from events.models import EventType
from experiments.models import BanditState, ExperimentResult
from tasks.experiments import compute_experiment_metrics, update_bandit
from tasks.models import JobRun
from tests.factories.catalog import TitleFactory
from tests.factories.events import EventFactory
from tests.factories.experiments import ArmFactory, ExperimentFactory


def test_bandit_update_runs_on_the_worker_and_twice_adds_nothing(transactional_db, celery_worker_process, served):
    assert update_bandit.delay(settle_seconds=0).get(timeout=60) == 6
    state = BanditState.objects.get()
    assert (state.impressions_seen, state.version) == (6, 1)

    assert update_bandit.delay(settle_seconds=0).get(timeout=60) == 0
    state.refresh_from_db()
    assert (state.impressions_seen, state.version) == (6, 1)
    runs = JobRun.objects.filter(job="tasks.experiments.update_bandit")
    assert list(runs.values_list("status", flat=True)) == ["succeeded", "succeeded"]


def test_metrics_job_runs_on_the_worker_and_replaces_results(transactional_db, celery_worker_process, api_client_app):
    experiment = ExperimentFactory(name="worker-exp")
    ArmFactory(experiment=experiment, name="a", is_baseline=True)
    ArmFactory(experiment=experiment, name="b")
    title = TitleFactory()
    for arm, request_id in (("a", "r1"), ("b", "r2")):
        EventFactory(
            client=api_client_app,
            type=EventType.IMPRESSION,
            request_id=request_id,
            title=title,
            experiment="worker-exp",
            arm=arm,
        )
    EventFactory(client=api_client_app, type=EventType.CLICK, request_id="r2", title=title)

    assert compute_experiment_metrics.delay().get(timeout=60) == 15
    first = set(ExperimentResult.objects.values_list("arm__name", "metric", "value"))
    assert compute_experiment_metrics.delay(experiment_id=experiment.pk).get(timeout=60) == 15
    assert set(ExperimentResult.objects.values_list("arm__name", "metric", "value")) == first
    assert ("b", "ctr", 1.0) in first and ("a", "ctr", 0.0) in first


@pytest.mark.django_db
def test_experiment_schedules_exist_after_migrate():
    tasks = set(PeriodicTask.objects.values_list("task", flat=True))
    assert {
        "tasks.experiments.update_bandit",
        "tasks.experiments.compute_experiment_metrics",
        "tasks.experiments.prune_exploration_logs",
    } <= tasks
