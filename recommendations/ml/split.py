"""The Microsoft Recommenders MovieLens-100k split: random, stratified by item, 75/25."""

from __future__ import annotations

import numpy as np
import pandas as pd

from recommendations.ml.constants import ITEM_COL
from recommendations.ml.data import validate_interactions

PROTOCOL_SEED = 42
VALIDATION_SEED = 4242  # any seed other than the test split's, so validation draws are independent of it


def stratified_split(
    interactions: pd.DataFrame, ratio: float = 0.75, *, by: str = ITEM_COL, seed: int = PROTOCOL_SEED
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split each `by` group at random: the first round(ratio × count) rows of the group go to train.

    Reproduces recommenders' python_stratified_split(filter_by="item", seed=42) row for row: after
    np.random.seed(seed) one uniform draw per row in frame order, rows sorted by (group, draw), and
    pandas' round (half to even, so a group of 6 keeps 4 in train). Returns (train, test), each in the
    input's row order and with the input's index.
    """
    validate_interactions(interactions)
    if not 0.0 < ratio < 1.0:
        raise ValueError(f"ratio must be in (0, 1), got {ratio}")
    draws = np.random.RandomState(seed).rand(len(interactions))  # the stream np.random.seed(seed) gives
    groups = pd.factorize(interactions[by], sort=True)[0]
    order = np.lexsort((draws, groups))
    sorted_groups = groups[order]
    starts = np.flatnonzero(np.r_[True, sorted_groups[1:] != sorted_groups[:-1]])
    counts = np.diff(np.r_[starts, len(order)])
    rank = np.arange(len(order)) - np.repeat(starts, counts) + 1  # 1-based rank inside the group
    in_train_sorted = rank <= np.round(ratio * np.repeat(counts, counts))
    in_train = np.empty(len(order), dtype=bool)
    in_train[order] = in_train_sorted
    return interactions[in_train], interactions[~in_train]


def validation_split(
    train: pd.DataFrame, ratio: float = 0.75, *, seed: int = VALIDATION_SEED
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Carve (fit, validation) out of a train split the same way, with another seed, for tuning.

    The same ratio keeps held-out / fitted at 1/3, as in the outer split.
    """
    return stratified_split(train, ratio, by=ITEM_COL, seed=seed)
