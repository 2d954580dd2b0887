"""The Recommenders MovieLens-100k split: stratified by item, 75/25, seed 42."""

from __future__ import annotations

import numpy as np
import pandas as pd

from recommendations.ml.split import stratified_split, validation_split


def recommenders_reference(data: pd.DataFrame, ratio: float, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """recommenders' _do_stratification(filter_by="item", is_random=True), in its own pandas steps."""
    data = data.copy()
    np.random.seed(seed)
    data["random"] = np.random.rand(data.shape[0])
    data = data.sort_values(["content_id", "random"])
    groups = data.groupby("content_id")
    data["count"] = groups["content_id"].transform("count")
    data["rank"] = groups.cumcount() + 1
    train = data[data["rank"] <= round(ratio * data["count"])]
    test = data[data["rank"] > round(ratio * data["count"])]
    return train.drop(columns=["random", "count", "rank"]), test.drop(columns=["random", "count", "rank"])


def ratings(n: int = 3000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {"user_id": rng.integers(0, 200, n), "content_id": rng.integers(0, 150, n), "rating": rng.integers(1, 6, n)}
    )
    return frame.drop_duplicates(["user_id", "content_id"]).reset_index(drop=True)


def test_split_matches_recommenders_row_for_row():
    data = ratings()
    train, test = stratified_split(data)
    expected_train, expected_test = recommenders_reference(data, 0.75, 42)
    assert sorted(train.index) == sorted(expected_train.index)
    assert sorted(test.index) == sorted(expected_test.index)


def test_each_item_keeps_round_three_quarters_in_train_half_to_even():
    data = pd.DataFrame({"user_id": np.arange(6 + 2 + 5), "content_id": [1] * 6 + [2] * 2 + [3] * 5, "rating": 3.0})
    train, test = stratified_split(data)
    # 0.75 × 6 = 4.5 → 4 and 0.75 × 2 = 1.5 → 2 (pandas rounds half to even), 0.75 × 5 = 3.75 → 4
    assert train.groupby("content_id").size().to_dict() == {1: 4, 2: 2, 3: 4}
    assert len(train) + len(test) == len(data)
    assert set(train.index).isdisjoint(test.index)


def test_validation_split_is_carved_from_train_with_another_seed():
    data = ratings()
    train, _ = stratified_split(data)
    fit, validation = validation_split(train)
    assert set(fit.index) | set(validation.index) == set(train.index)
    assert stratified_split(train, seed=42)[1].index.tolist() != validation.index.tolist()
    assert validation_split(train)[1].index.tolist() == validation.index.tolist()  # deterministic
