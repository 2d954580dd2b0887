"""experiments.ml.metrics against hand-computed values and scipy."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from experiments.ml.metrics import (
    bootstrap_mean_ci,
    engagement_score,
    lift_with_ci,
    mean_from_moments,
    two_proportion_ztest,
    welch_ztest,
    wilson_interval,
)


def test_engagement_score_weights():
    assert engagement_score(np.array([1, 1, 1, 0]), np.array([0, 1, 1, 0]), np.array([0, 0, 1, 0])).tolist() == (
        pytest.approx([0.1, 0.4, 1.0, 0.0])
    )


def test_wilson_interval_by_hand():
    # 10 of 100 at 95 %: the textbook value is [0.0552, 0.1744].
    low, high = wilson_interval(10, 100)
    assert (low, high) == pytest.approx((0.05523, 0.17437), abs=1e-4)
    assert wilson_interval(0, 20)[0] == 0.0 and wilson_interval(20, 20)[1] == 1.0
    assert all(math.isnan(v) for v in wilson_interval(0, 0))
    with pytest.raises(ValueError):
        wilson_interval(5, 3)


def test_wilson_matches_scipy():
    result = stats.binomtest(37, 412).proportion_ci(0.95, method="wilson")
    assert wilson_interval(37, 412) == pytest.approx((result.low, result.high), abs=1e-9)


def test_two_proportion_ztest_matches_the_chi_square_test():
    test = two_proportion_ztest(120, 1000, 90, 1000)
    chi2, p_value, _, _ = stats.chi2_contingency([[120, 880], [90, 910]], correction=False)
    assert test.statistic == pytest.approx(math.sqrt(chi2)) and test.statistic > 0
    assert test.p_value == pytest.approx(p_value)
    assert test.significant
    assert two_proportion_ztest(0, 50, 0, 60).p_value == 1.0


def test_mean_from_moments_matches_numpy():
    values = np.array([0.0, 0.1, 0.4, 1.0, 0.0, 0.1])
    summary = mean_from_moments(len(values), values.sum(), (values**2).sum())
    assert summary.mean == pytest.approx(values.mean())
    assert summary.standard_error == pytest.approx(values.std(ddof=1) / math.sqrt(len(values)))
    assert summary.ci_high - summary.mean == pytest.approx(1.959964 * summary.standard_error, rel=1e-6)
    assert math.isnan(mean_from_moments(0, 0, 0).mean)


def test_welch_ztest_agrees_with_scipy_at_large_n():
    a = mean_from_moments(5000, 5000 * 0.21, 5000 * (0.3**2 * 4999 / 5000 + 0.21**2))
    b = mean_from_moments(4000, 4000 * 0.2, 4000 * (0.25**2 * 3999 / 4000 + 0.2**2))
    reference = stats.ttest_ind_from_stats(0.21, 0.3, 5000, 0.2, 0.25, 4000, equal_var=False)
    test = welch_ztest(a, b)
    assert test.statistic == pytest.approx(reference.statistic, rel=1e-6)
    assert test.p_value == pytest.approx(reference.pvalue, rel=1e-3)


def test_bootstrap_interval_brackets_the_mean_like_the_normal_one():
    values = np.random.default_rng(0).exponential(2.0, 4000)
    low, high = bootstrap_mean_ci(values, rng=np.random.default_rng(1))
    normal = mean_from_moments(len(values), values.sum(), (values**2).sum())
    assert low < values.mean() < high
    assert (low, high) == pytest.approx((normal.ci_low, normal.ci_high), abs=0.02)


def test_lift_by_hand():
    lift = lift_with_ci(0.12, 0.003, 0.10, 0.002)
    spread = math.sqrt(0.003**2 + (1.2 * 0.002) ** 2) / 0.10
    assert lift.value == pytest.approx(0.2)
    assert (lift.ci_low, lift.ci_high) == pytest.approx((0.2 - 1.959964 * spread, 0.2 + 1.959964 * spread), rel=1e-6)
    assert math.isnan(lift_with_ci(0.1, 0.01, 0.0, 0.0).value)
