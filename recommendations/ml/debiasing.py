"""Exposure debiasing of training labels: inverse propensity of having been shown (pure numpy).

A viewing of a title that was shown to everybody says less about taste than one of a title few ever met:
the history is what exposure allowed. Each interaction's label is weighted by 1 / P(shown), with P(shown)
proportional to the title's exposure raised to `power` (0: no debiasing, 1: full inverse exposure); weights
are clipped at `cap` times their mean (IPS variance), then rescaled to a mean of 1, so the labels keep their scale.
"""

from __future__ import annotations

import numpy as np


def inverse_propensity_weights(
    item_ids: np.ndarray, exposure: np.ndarray, *, power: float = 0.5, cap: float = 10.0
) -> np.ndarray:
    """float32 (n,) weight per interaction; `exposure[i]` is how often interaction i's item was shown (> 0)."""
    if not 0.0 <= power <= 1.0:
        raise ValueError(f"power must be in [0, 1], not {power}")
    if len(item_ids) != len(exposure):
        raise ValueError("one exposure per interaction")
    if not len(item_ids):
        return np.empty(0, np.float32)
    seen = np.maximum(np.asarray(exposure, np.float64), 1.0)
    weights = (seen.max() / seen) ** power
    weights = np.minimum(weights / weights.mean(), cap)
    scaled: np.ndarray = (weights / weights.mean()).astype(np.float32)
    return scaled
