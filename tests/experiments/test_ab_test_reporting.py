"""What ab_test says: the number of viewers it really ran, and a winner only when the difference is significant."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
from django.core.management import call_command

from experiments.management.commands.ab_test import _verdict
from experiments.models import Experiment, Metric
from tests.conftest import serving_caches_reset
from users.loaders.synthetic import GroundTruth


def _engagement(arm: str, value: float, p: float | None) -> SimpleNamespace:
    return SimpleNamespace(arm=SimpleNamespace(name=arm), metric=Metric.ENGAGEMENT, value=value, p_value_vs_baseline=p)


def test_a_difference_that_is_not_significant_names_no_winner():
    verdict = _verdict([_engagement("baseline", 0.10, None), _engagement("bandit", 0.104, 0.3)], "baseline", "bandit")
    assert "not significant" in verdict and "no winner" in verdict and "wins" not in verdict


def test_a_significant_difference_names_its_winner():
    verdict = _verdict([_engagement("baseline", 0.10, None), _engagement("new", 0.14, 0.001)], "baseline", "new")
    assert "significant at p < 0.01: new wins" in verdict and "not significant" not in verdict
    verdict = _verdict([_engagement("baseline", 0.10, None), _engagement("new", 0.09, 0.03)], "baseline", "new")
    assert verdict.endswith("significant at p < 0.05: baseline wins")


def test_asking_for_more_viewers_than_the_world_has_runs_and_says_the_real_number(serving_world, tmp_path, capsys):
    truth = GroundTruth.load(tmp_path / "truth")
    small = tmp_path / "small-truth"
    keep = slice(0, 12)  # a world of 12 profiles
    for name in (
        "profile_factors",
        "profile_genre_taste",
        "profile_device",
        "profile_account_external_ids",
        "profile_slots",
    ):
        setattr(truth, name, np.asarray(getattr(truth, name))[keep])
    truth.save(small)
    serving_caches_reset()
    call_command(
        "ab_test",
        "--users",
        "10000",
        "--seed",
        "3",
        "--ground-truth-dir",
        str(small),
        "--plot",
        str(tmp_path / "ab.png"),
    )

    out = capsys.readouterr().out
    assert "12 viewers, not the 10,000 asked for" in out and "ran 12 viewers" in out
    assert Experiment.objects.get().description == "ab_test simulation: 12 viewers, seed 3"
