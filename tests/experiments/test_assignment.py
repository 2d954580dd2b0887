"""assignment_for: the running experiment's arm for a profile, stable, from a cache refreshed every few seconds."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from experiments.ml.assignment import assign_arm
from experiments.models import Experiment
from experiments.services import (
    ArmSpec,
    Assignment,
    assignment_for,
    experiment_create,
    experiment_status_set,
    experiments_cache,
)

pytestmark = pytest.mark.django_db

ARMS = [
    ArmSpec("control", 0.3, is_baseline=True, popularity_only=True),
    ArmSpec("treatment", 0.7, ranker_version="v7", mmr_lambda=0.5, bandit_enabled=True),
]


def running(name: str = "exp", **kwargs) -> Experiment:
    return experiment_create(
        name=name,
        arms=ARMS,
        status=Experiment.Status.RUNNING,
        salt=f"salt-{name}",
        starts_at=timezone.now() - dt.timedelta(minutes=5),
        **kwargs,
    )


def test_no_running_experiment_means_no_assignment():
    experiment_create(name="draft", arms=ARMS)
    assert assignment_for(42) is None


def test_a_profile_gets_its_hashed_arm_with_the_arm_configuration():
    running()
    expected = ["control", "treatment"][assign_arm(42, "salt-exp", [0.3, 0.7])]

    assignment = assignment_for(42)

    assert isinstance(assignment, Assignment)
    assert (assignment.experiment, assignment.arm) == ("exp", expected)
    if expected == "treatment":
        assert (assignment.ranker_version, assignment.mmr_lambda, assignment.bandit_enabled) == ("v7", 0.5, True)
    else:
        assert assignment.is_baseline and assignment.popularity_only


def test_assignment_is_stable_across_requests_and_follows_the_shares(settings):
    settings.RECO_EXPERIMENTS_CHECK_SECONDS = 60
    running()
    first = {profile_id: assignment_for(profile_id).arm for profile_id in range(3000)}
    experiments_cache.__init__()  # another process, or a restart
    assert {profile_id: assignment_for(profile_id).arm for profile_id in range(3000)} == first
    assert sum(arm == "treatment" for arm in first.values()) / 3000 == pytest.approx(0.7, abs=0.03)


def test_the_cache_refreshes_only_after_the_check_interval(settings, django_assert_num_queries):
    settings.RECO_EXPERIMENTS_CHECK_SECONDS = 3600
    assert assignment_for(1) is None  # loads: nothing runs
    running()  # created in this process: the service expires the cache on commit, which a test never reaches

    with django_assert_num_queries(0):
        assert assignment_for(1) is None  # cached
    experiments_cache.expire()
    assert assignment_for(1) is not None

    settings.RECO_EXPERIMENTS_CHECK_SECONDS = 0
    Experiment.objects.update(status=Experiment.Status.STOPPED)
    assert assignment_for(1) is None


def test_window_bounds_the_assignment():
    now = timezone.now()
    experiment = running(ends_at=now + dt.timedelta(hours=1))
    assert assignment_for(7, now=now) is not None
    assert assignment_for(7, now=now + dt.timedelta(hours=2)) is None
    assert assignment_for(7, now=experiment.starts_at - dt.timedelta(seconds=1)) is None


def test_the_first_running_experiment_by_id_wins(settings):
    settings.RECO_EXPERIMENTS_CHECK_SECONDS = 60
    running("first")
    running("second")
    assert {assignment_for(profile_id).experiment for profile_id in range(200)} == {"first"}


def test_a_database_error_keeps_serving_the_last_experiments(monkeypatch):
    running()
    before = assignment_for(5)

    def unavailable():
        raise RuntimeError("database went away")

    monkeypatch.setattr("experiments.services.running_experiments_load", unavailable)
    assert assignment_for(5) == before


def test_service_refuses_shares_that_do_not_sum_to_one():
    with pytest.raises(ValidationError, match="must sum to 1"):
        experiment_create(name="bad", arms=[ArmSpec("a", 0.5, is_baseline=True), ArmSpec("b", 0.6)])
    assert not Experiment.objects.exists()


def test_starting_a_draft_checks_its_arms_and_a_started_one_never_returns_to_draft():
    draft = experiment_create(name="lonely", arms=[ArmSpec("only", 1.0, is_baseline=True)])
    with pytest.raises(ValidationError, match="at least two arms"):
        experiment_status_set(experiment_id=draft.pk, status=Experiment.Status.RUNNING)

    experiment = experiment_create(name="pair", arms=ARMS)
    experiment_status_set(experiment_id=experiment.pk, status=Experiment.Status.RUNNING)
    with pytest.raises(ValidationError, match="cannot go back to draft"):
        experiment_status_set(experiment_id=experiment.pk, status=Experiment.Status.DRAFT)
