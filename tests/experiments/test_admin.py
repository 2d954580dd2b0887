"""Operators create experiments with arms in the admin; bad shares are form errors; results show with a verdict."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Group

from experiments.models import Arm, Experiment, Metric
from tests.admin_helpers import admin_url, changelist_queries
from tests.factories.auth import UserFactory
from tests.factories.experiments import ArmFactory, ExperimentFactory, ExperimentResultFactory

pytestmark = pytest.mark.django_db


def experiment_form(arms: list[dict[str, Any]], initial_arms: int = 0, **overrides: Any) -> dict[str, Any]:
    """A complete POST for the experiment add/change page with an inline row per arm."""
    data = {
        "name": "ranker-v7",
        "description": "Does the new ranker lift engagement?",
        "status": Experiment.Status.DRAFT,
        "starts_at_0": "2026-06-01",
        "starts_at_1": "00:00:00",
        "ends_at_0": "",
        "ends_at_1": "",
        "salt": "fixed-salt",
        "arms-TOTAL_FORMS": str(len(arms)),
        "arms-INITIAL_FORMS": str(initial_arms),
        "arms-MIN_NUM_FORMS": "0",
        "arms-MAX_NUM_FORMS": "1000",
    }
    for i, arm in enumerate(arms):
        row = {"name": f"arm-{i}", "traffic_share": "0.5", "ranker_version": "", "mmr_lambda": "", **arm}
        for key, value in row.items():
            if value is True:
                value = "on"
            if value is not False:
                data[f"arms-{i}-{key}"] = value
    data.update(overrides)
    return data


CONTROL = {"name": "control", "traffic_share": "0.5", "is_baseline": True, "popularity_only": True}
TREATMENT = {
    "name": "new-ranker",
    "traffic_share": "0.5",
    "ranker_version": "20261126T0445Z-3f2a",
    "mmr_lambda": "0.6",
    "bandit_enabled": True,
}


def form_errors(response) -> list[str]:
    errors = [str(e) for e in response.context["adminform"].form.non_field_errors()]
    errors += [f"{name}: {e}" for name, messages in response.context["adminform"].form.errors.items() for e in messages]
    for formset in response.context["inline_admin_formsets"]:
        errors += [str(e) for e in formset.formset.non_form_errors()]
        errors += [str(e) for form_errors in formset.formset.errors for e in form_errors.values()]
    return errors


def test_operator_creates_a_running_experiment_with_arms(operator_client, operator):
    response = operator_client.post(
        admin_url(Experiment, "add"), experiment_form([CONTROL, TREATMENT], status=Experiment.Status.RUNNING)
    )

    assert response.status_code == 302, form_errors(response)
    experiment = Experiment.objects.get()
    assert (experiment.name, experiment.status, experiment.created_by) == ("ranker-v7", "running", operator)
    control, treatment = experiment.arms.order_by("id")
    assert (control.name, control.is_baseline, control.popularity_only, float(control.traffic_share)) == (
        "control",
        True,
        True,
        0.5,
    )
    assert (treatment.ranker_version, treatment.mmr_lambda, treatment.bandit_enabled) == (
        "20261126T0445Z-3f2a",
        0.6,
        True,
    )


@pytest.mark.parametrize(
    ("arms", "status", "message"),
    [
        ([CONTROL, {**TREATMENT, "traffic_share": "0.4"}], "draft", "must sum to 1, not 0.9"),
        ([CONTROL, {**TREATMENT, "traffic_share": "0.7"}], "running", "must sum to 1, not 1.2"),
        ([CONTROL, {**TREATMENT, "is_baseline": True}], "draft", "Only one arm can be the baseline"),
        ([{**CONTROL, "is_baseline": False}, TREATMENT], "running", "one of them the baseline"),
        ([{**CONTROL, "traffic_share": "1"}], "running", "at least two arms"),
        ([CONTROL, {**TREATMENT, "name": "control"}], "draft", "duplicate data for name"),
        ([CONTROL, {**TREATMENT, "traffic_share": "1.5"}], "draft", "less than or equal to 1"),
        ([CONTROL, {**TREATMENT, "mmr_lambda": "2"}], "draft", "less than or equal to 1"),
    ],
    ids=[
        "shares-under-1",
        "shares-over-1",
        "two-baselines",
        "no-baseline",
        "one-arm",
        "same-names",
        "share-over-1",
        "lambda-over-1",
    ],
)
def test_invalid_arms_are_a_form_error_never_a_crash(operator_client, arms, status, message):
    response = operator_client.post(admin_url(Experiment, "add"), experiment_form(arms, status=status))

    assert response.status_code == 200
    assert any(message in error for error in form_errors(response)), form_errors(response)
    assert not Experiment.objects.exists() and not Arm.objects.exists()


def test_end_before_start_is_a_form_error(operator_client):
    response = operator_client.post(
        admin_url(Experiment, "add"),
        experiment_form([CONTROL, TREATMENT], ends_at_0="2026-05-01", ends_at_1="00:00:00"),
    )
    assert response.status_code == 200
    assert any("after the start" in error for error in form_errors(response))


def test_arms_of_a_running_experiment_are_read_only_and_it_cannot_go_back_to_draft(operator_client):
    experiment = ExperimentFactory(name="live")
    ArmFactory(experiment=experiment, name="a", is_baseline=True)
    ArmFactory(experiment=experiment, name="b")

    page = operator_client.get(admin_url(Experiment, "change", experiment.pk))
    assert page.status_code == 200
    assert 'name="arms-0-traffic_share"' not in page.content.decode()  # shown, not editable
    assert 'name="name"' not in page.content.decode()  # the name is fixed once started

    data = experiment_form([], initial_arms=0, status=Experiment.Status.DRAFT)
    data.update(
        {
            "arms-TOTAL_FORMS": "2",
            "arms-INITIAL_FORMS": "2",
            "arms-0-id": str(experiment.arms.first().pk),
            "arms-0-experiment": str(experiment.pk),
            "arms-1-id": str(experiment.arms.last().pk),
            "arms-1-experiment": str(experiment.pk),
        }
    )
    response = operator_client.post(admin_url(Experiment, "change", experiment.pk), data)
    assert response.status_code == 200
    assert any("cannot go back to draft" in error for error in form_errors(response)), form_errors(response)

    data["status"] = Experiment.Status.STOPPED
    assert operator_client.post(admin_url(Experiment, "change", experiment.pk), data).status_code == 302
    experiment.refresh_from_db()
    assert experiment.status == "stopped" and experiment.name == "live"
    assert sorted(float(a.traffic_share) for a in experiment.arms.all()) == [0.5, 0.5]


def test_start_action_checks_the_arms(operator_client):
    ready = ExperimentFactory(status=Experiment.Status.DRAFT)
    ArmFactory(experiment=ready, is_baseline=True)
    ArmFactory(experiment=ready)
    unready = ExperimentFactory(status=Experiment.Status.DRAFT)
    ArmFactory(experiment=unready, traffic_share="0.3")

    response = operator_client.post(
        admin_url(Experiment, "changelist"),
        {"action": "start", "_selected_action": [ready.pk, unready.pk]},
        follow=True,
    )

    assert response.status_code == 200
    ready.refresh_from_db(), unready.refresh_from_db()
    assert (ready.status, unready.status) == ("running", "draft")
    assert any("must sum to 1" in str(m) for m in response.context["messages"])


def test_results_show_on_the_experiment_page_with_intervals_and_a_verdict(operator_client):
    experiment = ExperimentFactory(name="measured")
    baseline = ArmFactory(experiment=experiment, name="control", is_baseline=True)
    treatment = ArmFactory(experiment=experiment, name="treatment")
    ExperimentResultFactory(arm=baseline, metric=Metric.CTR, value=0.05, ci_low=0.045, ci_high=0.055, n=10_000)
    ExperimentResultFactory(
        arm=treatment,
        metric=Metric.CTR,
        value=0.06,
        ci_low=0.055,
        ci_high=0.065,
        n=10_000,
        delta_vs_baseline=0.01,
        p_value_vs_baseline=0.0004,
        significant=True,
    )

    page = operator_client.get(admin_url(Experiment, "change", experiment.pk)).content.decode()

    assert "CTR (clicks / impressions)" in page
    assert "5.50% … 6.50%" in page and "&lt; 0.001" in page
    assert "higher than baseline" in page and "baseline" in page


def test_operators_can_read_results_and_bandit_state_but_not_write_them(operator_client):
    from experiments.models import BanditState, ExperimentResult

    assert operator_client.get(admin_url(ExperimentResult, "changelist")).status_code == 200
    assert operator_client.get(admin_url(BanditState, "changelist")).status_code == 200
    assert operator_client.get(admin_url(ExperimentResult, "add")).status_code == 403
    assert operator_client.get(admin_url(BanditState, "add")).status_code == 403


def test_operators_group_has_the_experiment_permissions():
    codenames = set(Group.objects.get(name="Operators").permissions.values_list("codename", flat=True))
    assert {
        "add_experiment",
        "change_experiment",
        "view_experiment",
        "add_arm",
        "change_arm",
        "view_arm",
        "view_experimentresult",
    } <= codenames
    assert "delete_experiment" not in codenames and "change_experimentresult" not in codenames


def test_staff_outside_operators_cannot_create_experiments(client):
    client.force_login(UserFactory(is_staff=True))
    assert client.get(admin_url(Experiment, "add")).status_code == 403
    assert client.post(admin_url(Experiment, "add"), experiment_form([CONTROL, TREATMENT])).status_code == 403
    assert not Experiment.objects.exists()


def test_experiment_changelist_queries_do_not_grow_with_rows(admin_client):
    experiment = ExperimentFactory()
    ArmFactory.create_batch(2, experiment=experiment)
    few = changelist_queries(admin_client, Experiment)
    for _ in range(5):
        ArmFactory.create_batch(2, experiment=ExperimentFactory())
    assert changelist_queries(admin_client, Experiment) == few
