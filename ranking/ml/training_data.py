"""Ranker training data: candidate lists served (or replayed) for profiles, labelled by what they watched later."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from recommendations.ml.constants import ITEM_COL, RATING_COL, USER_COL

STRONG_RATING = 4.0  # rating (watch_percentage × 5) from which a later viewing counts as liked: label 2


@dataclass(frozen=True, eq=False)
class RankingQuery:
    """One profile's candidates and their feature rows (ranking.ml.features.assemble)."""

    profile_id: int
    candidate_ids: np.ndarray  # int64 (n,)
    features: np.ndarray  # float32 (n, n_features)


@dataclass(frozen=True, eq=False)
class TrainingData:
    """Queries stored consecutively: rows of query q are the next group_sizes[q] rows.

    features: float32 (n, n_features); labels: int32 (n,); group_sizes: int64 (n_queries,);
    profile_ids: int64 (n_queries,); candidate_ids: int64 (n,).
    """

    features: np.ndarray
    labels: np.ndarray
    group_sizes: np.ndarray
    profile_ids: np.ndarray
    candidate_ids: np.ndarray

    @property
    def query_of_row(self) -> np.ndarray:
        """int64 (n,): the query number of every row."""
        return np.repeat(np.arange(len(self.group_sizes)), self.group_sizes)

    def subset(self, queries: np.ndarray) -> TrainingData:
        """The queries selected by a bool mask (n_queries,) or ascending query numbers, in their order."""
        keep_query = np.zeros(len(self.group_sizes), bool)
        keep_query[queries] = True
        keep_row = keep_query[self.query_of_row]
        return TrainingData(
            self.features[keep_row],
            self.labels[keep_row],
            self.group_sizes[keep_query],
            self.profile_ids[keep_query],
            self.candidate_ids[keep_row],
        )

    def keep_top(self, scores: np.ndarray, depth: int) -> TrainingData:
        """Each query's `depth` rows with the highest `scores` (float (n,), NaN lowest), in their original order.

        Training on the head of each list (e.g. by model_mean_z) spends the trees where the top 10 is decided.
        """
        if depth < 1:
            raise ValueError(f"depth must be at least 1, got {depth}")
        query = self.query_of_row
        order = np.lexsort((-np.nan_to_num(np.asarray(scores, np.float64), nan=-np.inf), query))
        starts = np.repeat(np.cumsum(self.group_sizes) - self.group_sizes, self.group_sizes)
        rank = np.empty(len(query), np.int64)
        rank[order] = np.arange(len(query)) - starts
        keep = rank < depth
        return TrainingData(
            self.features[keep],
            self.labels[keep],
            np.minimum(self.group_sizes, depth),
            self.profile_ids,
            self.candidate_ids[keep],
        )

    def split_profiles(self, held_out: float, *, seed: int = 0) -> tuple[TrainingData, TrainingData]:
        """(fit, held-out) by profile at random, e.g. for early stopping on profiles the trees never saw."""
        if not 0.0 < held_out < 1.0:
            raise ValueError(f"held_out must be in (0, 1), got {held_out}")
        draw = np.random.default_rng(seed).random(len(self.group_sizes))
        return self.subset(draw >= held_out), self.subset(draw < held_out)


def graded_labels(ratings: np.ndarray, *, strong_rating: float | None = STRONG_RATING) -> np.ndarray:
    """int32 labels of later interactions: NaN (none) → 0, any rating → 1, ≥ strong_rating → 2 (None: binary)."""
    ratings = np.asarray(ratings, dtype=np.float64)
    labels: np.ndarray = (~np.isnan(ratings)).astype(np.int32)
    if strong_rating is not None:
        labels[ratings >= strong_rating] = 2
    return labels


def training_data(
    queries: Iterable[RankingQuery],
    outcomes: pd.DataFrame,
    *,
    strong_rating: float | None = STRONG_RATING,
    drop_without_positive: bool = True,
) -> TrainingData:
    """Label every candidate by the profile's later interactions and stack the queries for LambdaMART.

    outcomes: user_id (the profile), content_id, rating; a repeated pair keeps its best rating. A query with
    no positive teaches lambdarank nothing (every pair ties), so by default it is dropped.
    Returns TrainingData; ValueError if the queries' feature widths differ or nothing is left.
    """
    if not {USER_COL, ITEM_COL, RATING_COL} <= set(outcomes.columns):
        raise ValueError("outcomes needs columns user_id, content_id, rating")
    queries = list(queries)
    if not queries:
        raise ValueError("no queries")
    widths = {query.features.shape[1] for query in queries}
    if len(widths) != 1:
        raise ValueError(f"queries have different feature widths: {sorted(widths)}")
    sizes = np.array([len(query.candidate_ids) for query in queries], dtype=np.int64)
    for query in queries:
        if query.features.shape[0] != len(query.candidate_ids):
            raise ValueError(
                f"profile {query.profile_id}: {query.features.shape[0]} feature rows for "
                f"{len(query.candidate_ids)} candidates"
            )
    profile_ids = np.array([query.profile_id for query in queries], dtype=np.int64)
    candidate_ids = np.concatenate([np.asarray(query.candidate_ids, np.int64) for query in queries])
    row_profiles = np.repeat(profile_ids, sizes)

    best = outcomes.groupby([USER_COL, ITEM_COL], sort=False)[RATING_COL].max()
    lookup = pd.MultiIndex.from_arrays([row_profiles, candidate_ids])
    ratings = best.reindex(lookup).to_numpy(dtype=np.float64, na_value=np.nan)
    labels = graded_labels(ratings, strong_rating=strong_rating)
    data = TrainingData(
        np.concatenate([np.asarray(query.features, np.float32) for query in queries]),
        labels,
        sizes,
        profile_ids,
        candidate_ids,
    )
    if drop_without_positive:
        positives = np.bincount(data.query_of_row, weights=labels > 0, minlength=len(sizes))
        data = data.subset(positives > 0)
    if len(data.group_sizes) == 0:
        raise ValueError("no query has a labelled candidate")
    return data
