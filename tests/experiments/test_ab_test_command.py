"""The ab_test simulation end to end on a small synthetic world: real assignment, serving and events."""

from __future__ import annotations

import json

import pytest
from django.core.management import CommandError, call_command

from events.models import Event
from experiments.models import Experiment, ExperimentResult
from tests.conftest import serving_caches_reset


def test_ab_test_serves_both_arms_logs_events_and_reports_a_verdict(serving_world, tmp_path, settings, capsys):
    serving_caches_reset()
    call_command(
        "ab_test",
        "--users",
        "200",
        "--seed",
        "3",
        "--ground-truth-dir",
        str(tmp_path / "truth"),
        "--plot",
        str(tmp_path / "ab.png"),
        "--json",
        str(tmp_path / "ab.json"),
    )

    out = capsys.readouterr().out
    assert "verdict:" in out
    experiment = Experiment.objects.get()
    assert experiment.status == Experiment.Status.STOPPED
    arms = set(Event.objects.filter(type="impression").values_list("arm", flat=True))
    assert arms == {"baseline", "new_ranking_model"}
    assert Event.objects.filter(type="click").exists()
    engagement = ExperimentResult.objects.filter(experiment=experiment, metric="engagement")
    assert engagement.count() == 2 and all(r.value is not None and r.n > 0 for r in engagement)
    report = json.loads((tmp_path / "ab.json").read_text())
    assert sum(report["served"].values()) == 200 and (tmp_path / "ab.png").stat().st_size > 0


def test_ab_test_refuses_while_another_experiment_runs(serving_world, tmp_path):
    from experiments.services import ArmSpec, experiment_create

    experiment_create(name="live", status="running", arms=[ArmSpec("a", 0.5, is_baseline=True), ArmSpec("b", 0.5)])
    with pytest.raises(CommandError, match="another experiment is running"):
        call_command("ab_test", "--users", "10", "--ground-truth-dir", str(tmp_path / "truth"))
