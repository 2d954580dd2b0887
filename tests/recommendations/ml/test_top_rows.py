"""The top-n pick under the collaborative source: exact against a full sort, whatever the scores hold."""

from __future__ import annotations

import numpy as np
import pytest

from recommendations.ml.sources import SAMPLED_TOP_MIN_SIZE, largest_positions, top_rows


def reference(scores: np.ndarray, n: int) -> list[float]:
    """The n largest finite scores' values (positions may differ among ties)."""
    finite = np.sort(scores[np.isfinite(scores)])[::-1]
    return sorted(finite[:n].tolist())


@pytest.mark.parametrize("size", [1_000, SAMPLED_TOP_MIN_SIZE, 100_000])
@pytest.mark.parametrize("n", [1, 10, 500])
def test_largest_positions_match_a_full_sort(size, n):
    rng = np.random.default_rng(size + n)
    scores = rng.normal(size=size).astype(np.float32)
    picked = largest_positions(scores, n)
    assert len(picked) == min(n, size) and len(set(picked.tolist())) == len(picked)
    assert sorted(scores[picked].tolist()) == reference(scores, n)


def test_sampled_threshold_too_high_falls_back_to_the_full_partition():
    # The sample (every 16th score) holds the largest values, so its threshold lets fewer than n pass.
    scores = np.zeros(100_000, np.float32)
    scores[::16] = np.linspace(1, 2, len(scores[::16]), dtype=np.float32)
    picked = largest_positions(scores, 500)
    assert sorted(scores[picked].tolist()) == reference(scores, 500)


def test_masked_and_nan_scores_never_displace_finite_ones():
    rng = np.random.default_rng(3)
    scores = rng.normal(size=100_000).astype(np.float32)
    scores[rng.random(100_000) < 0.999] = -np.inf  # ~100 finite scores left
    scores[:50] = np.nan
    finite = int(np.isfinite(scores).sum())
    rows, values = top_rows(scores.copy(), 500)
    assert len(rows) == finite and np.isfinite(values).all()
    assert np.all(np.diff(values) <= 0)
    assert sorted(values.tolist()) == reference(scores, 500)


def test_top_rows_are_best_first_and_respect_allowed_and_exclude():
    rng = np.random.default_rng(5)
    scores = rng.normal(size=50_000).astype(np.float32)
    allowed = rng.random(50_000) < 0.5
    exclude = np.flatnonzero(allowed)[:100]
    expected = scores.copy()
    expected[~allowed] = -np.inf
    expected[exclude] = -np.inf
    rows, values = top_rows(scores.copy(), 300, allowed=allowed, exclude=exclude)
    assert allowed[rows].all() and not np.isin(rows, exclude).any()
    assert np.all(np.diff(values) <= 0)
    assert sorted(values.tolist()) == reference(expected, 300)
