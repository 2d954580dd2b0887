"""Statistics for online experiments: intervals, significance tests and lift (numpy and scipy, no Django).

Proportions (CTR, play rate, completion rate, long-tail share) get Wilson intervals and a pooled two-proportion
z-test; means (engagement per impression, session minutes) get normal intervals and a Welch z-test from their
sufficient statistics (n, Σx, Σx²), which SQL aggregates give without reading rows; a bootstrap interval is
there for a mean of raw values. Every function accepts scalars; tests are two-sided.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

ALPHA = 0.05
ENGAGEMENT_WEIGHTS = (0.1, 0.3, 0.6)  # click, play, complete: the engagement score of one impression


def engagement_score(clicked: np.ndarray, played: np.ndarray, completed: np.ndarray) -> np.ndarray:
    """0.1·click + 0.3·play + 0.6·complete per impression (flags 0/1 or counts of impressions)."""
    click, play, complete = ENGAGEMENT_WEIGHTS
    return (
        click * np.asarray(clicked, np.float64)
        + play * np.asarray(played, np.float64)
        + complete * np.asarray(completed, np.float64)
    )


def _z(confidence: float) -> float:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), not {confidence}")
    return float(stats.norm.ppf(0.5 + confidence / 2))


def wilson_interval(successes: int, trials: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a proportion; (nan, nan) without trials."""
    if trials < 0 or not 0 <= successes <= trials:
        raise ValueError(f"need 0 <= successes <= trials, got {successes} of {trials}")
    if trials == 0:
        return math.nan, math.nan
    z = _z(confidence)
    p = successes / trials
    denominator = 1 + z**2 / trials
    centre = (p + z**2 / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z**2 / (4 * trials**2)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class Significance:
    statistic: float
    p_value: float

    @property
    def significant(self) -> bool:
        return self.p_value < ALPHA


def two_proportion_ztest(successes_a: int, trials_a: int, successes_b: int, trials_b: int) -> Significance:
    """Pooled two-proportion z-test of p_a = p_b; z > 0 when a is higher. p = 1 when nothing varies."""
    if min(trials_a, trials_b) <= 0:
        raise ValueError("both groups need trials")
    pooled = (successes_a + successes_b) / (trials_a + trials_b)
    variance = pooled * (1 - pooled) * (1 / trials_a + 1 / trials_b)
    if variance <= 0:
        return Significance(0.0, 1.0)
    z = (successes_a / trials_a - successes_b / trials_b) / math.sqrt(variance)
    return Significance(z, float(2 * stats.norm.sf(abs(z))))


@dataclass(frozen=True)
class MeanSummary:
    """A mean with its standard error and normal interval, from n, Σx and Σx²."""

    n: int
    mean: float
    standard_error: float
    ci_low: float
    ci_high: float


def mean_from_moments(n: int, total: float, total_squares: float, confidence: float = 0.95) -> MeanSummary:
    """Mean, standard error (sample variance, n - 1) and interval; NaN where n is too small."""
    if n <= 0:
        return MeanSummary(0, math.nan, math.nan, math.nan, math.nan)
    mean = total / n
    if n == 1:
        return MeanSummary(1, mean, math.nan, math.nan, math.nan)
    variance = max(total_squares - n * mean**2, 0.0) / (n - 1)
    error = math.sqrt(variance / n)
    half = _z(confidence) * error
    return MeanSummary(n, mean, error, mean - half, mean + half)


def welch_ztest(a: MeanSummary, b: MeanSummary) -> Significance:
    """Large-sample test of mean_a = mean_b with unequal variances; z > 0 when a is higher."""
    if a.n < 2 or b.n < 2:
        raise ValueError("both groups need at least 2 observations")
    spread = math.sqrt(a.standard_error**2 + b.standard_error**2)
    if spread == 0:
        return Significance(0.0, 1.0 if a.mean == b.mean else 0.0)
    z = (a.mean - b.mean) / spread
    return Significance(z, float(2 * stats.norm.sf(abs(z))))


def bootstrap_mean_ci(
    values: np.ndarray, confidence: float = 0.95, *, resamples: int = 2000, rng: np.random.Generator | None = None
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of `values` (resampled in one vectorised draw)."""
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    if len(values) < 2:
        raise ValueError("a bootstrap needs at least 2 values")
    _z(confidence)
    rng = rng or np.random.default_rng(0)
    means = values[rng.integers(0, len(values), (resamples, len(values)))].mean(axis=1)
    tail = (1 - confidence) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    return float(low), float(high)


@dataclass(frozen=True)
class Lift:
    """Relative difference treatment / baseline - 1 with a delta-method interval."""

    value: float
    ci_low: float
    ci_high: float


def lift_with_ci(
    treatment_mean: float,
    treatment_error: float,
    baseline_mean: float,
    baseline_error: float,
    confidence: float = 0.95,
) -> Lift:
    """lift = t / b - 1; sd ≈ (t / b)·sqrt((se_t / t)² + (se_b / b)²), i.e. the delta method on the ratio
    (written so that t = 0 works). NaN when the baseline mean is not positive."""
    if not baseline_mean > 0:
        return Lift(math.nan, math.nan, math.nan)
    ratio = treatment_mean / baseline_mean
    spread = math.sqrt(treatment_error**2 + (ratio * baseline_error) ** 2) / baseline_mean
    half = _z(confidence) * spread
    return Lift(ratio - 1, ratio - 1 - half, ratio - 1 + half)
