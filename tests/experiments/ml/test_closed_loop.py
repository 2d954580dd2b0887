"""The closed loop's pure parts: visits, daily figures, calibration and label debiasing (no database)."""

from __future__ import annotations

import numpy as np
import pytest

from experiments.ml.closed_loop import LoopFigures, Served, VisitModel
from ranking.ml.calibration import calibrated_order
from recommendations.ml.debiasing import inverse_propensity_weights


def test_visits_come_from_the_daily_share_and_some_profiles_come_back():
    rng = np.random.default_rng(1)
    model = VisitModel(daily_share=0.2, repeat_mean=0.5)
    rates = model.rates(50_000, rng)
    visits = model.visits(rates, rng)
    assert rates.max() <= model.most and rates.mean() == pytest.approx(0.2, rel=0.05)
    visitors = np.unique(visits)
    assert len(visitors) / 50_000 == pytest.approx(0.2, rel=0.1)
    assert len(visits) / len(visitors) == pytest.approx(1.5, rel=0.1)


def test_day_figures_follow_the_experiment_definitions():
    figures = LoopFigures(["a", "oracle"], n_titles=10, head=[0, 1])
    served = Served(
        arm=np.array([0, 0, 0, 0, 1, 1]),
        visit=np.array([0, 0, 1, 1, 2, 2]),
        title=np.array([0, 5, 6, 7, 8, 9]),
        clicked=np.array([1, 1, 0, 0, 1, 1], bool),
        played=np.array([1, 1, 0, 0, 1, 1], bool),
        completed=np.array([1, 0, 0, 0, 1, 1], bool),
        minutes=np.array([90.0, 10, 0, 0, 60, 60]),
    )
    day = figures.add_day(served, visits_per_arm=np.array([2, 1]))
    a = day["a"]
    assert (a["ctr"], a["play_rate"], a["completion_rate"]) == (0.5, 1.0, 0.5)
    assert a["engagement"] == pytest.approx((1.0 + 0.4) / 4)
    assert a["minutes_per_visit"] == 50 and a["long_tail_share"] == 0.5
    assert a["discovery"] == 0.2 and a["coverage"] == 0.4
    assert day["oracle"]["share_of_oracle"] == 1 and a["share_of_oracle"] == pytest.approx(0.35 / 1.0)
    figures.add_day(served, visits_per_arm=np.array([2, 1]))
    assert list(figures.curve("a", "discovery")) == [0.2, 0.2]  # the same titles again discover nothing new


def test_calibration_without_weight_keeps_the_relevance_order():
    relevance = np.array([0.1, 0.9, 0.5, 0.7])
    genres = np.eye(4, dtype=bool)
    assert list(calibrated_order(relevance, genres, np.ones(4), 3, lam=0.0)) == [1, 3, 2]


def test_calibration_matches_the_viewers_genre_mix():
    rng = np.random.default_rng(0)
    genres = np.zeros((40, 2), bool)
    genres[:30, 0] = True  # 30 titles of genre 0, more relevant; 10 of genre 1
    genres[30:, 1] = True
    relevance = np.concatenate([rng.uniform(0.6, 1.0, 30), rng.uniform(0.0, 0.4, 10)])
    target = np.array([0.5, 0.5])  # the viewer watches both equally
    plain = calibrated_order(relevance, genres, target, 10, lam=0.0)
    calibrated = calibrated_order(relevance, genres, target, 10, lam=0.99)
    assert genres[plain, 1].sum() == 0
    assert 4 <= genres[calibrated, 1].sum() <= 6 and len(set(calibrated)) == 10


def test_inverse_propensity_weights_favour_rarely_shown_titles():
    items = np.array([1, 1, 1, 1, 2])
    exposure = np.array([100, 100, 100, 100, 1])
    weights = inverse_propensity_weights(items, exposure, power=0.5)
    assert weights.mean() == pytest.approx(1.0) and weights[4] > weights[0]
    assert (inverse_propensity_weights(items, exposure, power=0.0) == 1).all()
    full = inverse_propensity_weights(items, exposure, power=1.0, cap=np.inf)
    capped = inverse_propensity_weights(items, exposure, power=1.0, cap=2.0)
    assert full[4] / full[0] == pytest.approx(100) and capped[4] / capped[0] < full[4] / full[0]
    with pytest.raises(ValueError):
        inverse_propensity_weights(items, exposure, power=2.0)
