"""Scoring top lists of one split under the Microsoft Recommenders protocol (pure: no Django)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from recommendations.ml import metrics
from recommendations.ml.constants import ITEM_COL, USER_COL
from users.ml.datasets import RatingsDataset

K = 10
DIVERSITY_K = 20  # distinct genres are counted in the top 20
CANDIDATES = 500


class Evaluation:
    """Scores top lists of one split for the users present in both its train and test parts."""

    def __init__(self, train: pd.DataFrame, test: pd.DataFrame, data: RatingsDataset) -> None:
        self.train, self.test = train, test
        self.users = np.intersect1d(train[USER_COL].unique(), test[USER_COL].unique())
        self.catalog_ids = data.items[ITEM_COL].to_numpy(np.int64)
        self.genre_flags = data.genre_flags

    def accuracy(self, recommended: np.ndarray) -> dict[str, float]:
        hits, n_relevant = metrics.relevance(self.users, recommended[:, :K], self.test)
        return metrics.ranking_metrics(hits, n_relevant, K)

    def recall(self, candidates: np.ndarray) -> float:
        """Share of all test items that the (n_users, m) lists contain (pooled over users)."""
        return metrics.candidate_recall(*metrics.relevance(self.users, candidates, self.test))

    def all_metrics(self, recommended: np.ndarray) -> dict[str, float]:
        """Accuracy, beyond-accuracy metrics and recall@500 of (n_users, CANDIDATES) lists, PAD_ID padded."""
        top = recommended[:, :K]
        return {
            **self.accuracy(recommended),
            "coverage": metrics.catalog_coverage(top, len(self.catalog_ids)),
            "novelty": metrics.novelty(top, self.train),
            "ild": metrics.intra_list_diversity(top, self.catalog_ids, self.genre_flags),
            "genres_top20": metrics.distinct_features(recommended[:, :DIVERSITY_K], self.catalog_ids, self.genre_flags),
            "recall_at_500": self.recall(recommended[:, :CANDIDATES]),
        }
