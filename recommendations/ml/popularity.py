"""Popularity baseline: every user gets the titles most users interacted with in train."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd

from recommendations.ml.base import Recommender


class PopularityRecommender(Recommender):
    """Scores an item by its number of distinct users in the fitted interactions."""

    item_scores: np.ndarray  # float32 (n_items,)

    def fit(self, interactions: pd.DataFrame) -> PopularityRecommender:
        """interactions: frame with user_id, content_id, rating (the rating is ignored)."""
        started = time.perf_counter()
        self._index(interactions)
        self.item_scores = np.diff(self.user_items.tocsc().indptr).astype(np.float32)
        self.fit_seconds = time.perf_counter() - started
        return self

    def _scores(self, user_index: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self.item_scores, (len(user_index), len(self.item_scores)))

    def _arrays(self) -> dict[str, np.ndarray]:
        return {"item_scores": self.item_scores}

    def _restore(self, arrays: dict[str, np.ndarray], path: Path, mmap: bool) -> None:
        self.item_scores = arrays["item_scores"]
