"""Offline metrics for top-k lists: ranking accuracy (Recommenders' definitions), coverage, novelty, diversity.

Ranking metrics take a `hits` matrix, bool (n_users, k): hits[u, r] is True when the item at rank r + 1 of
user u's list is a test item, and `n_relevant`, int (n_users,): |test items| of each user. Users with no
test item are left out of the means, so the means run over the users present in both test and predictions.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from recommendations.ml.constants import ITEM_COL, PAD_ID, USER_COL
from recommendations.ml.data import IdMap


def relevance(user_ids: np.ndarray, recommended: np.ndarray, truth: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Hits and relevant counts of top-k lists against test interactions.

    user_ids: int (n_users,), unique; recommended: int content ids (n_users, k), PAD_ID for empty slots;
    truth: frame with user_id, content_id (every row relevant, no threshold).
    Returns hits, bool (n_users, k), and n_relevant, int64 (n_users,).
    """
    users = IdMap(user_ids)
    if len(users) != len(user_ids):
        raise ValueError("user_ids must be unique")
    row_of_user = np.empty(len(user_ids), np.int64)
    row_of_user[users.to_index(user_ids)] = np.arange(len(user_ids))
    truth_pairs = truth[[USER_COL, ITEM_COL]].drop_duplicates()
    truth_users = users.to_index(truth_pairs[USER_COL].to_numpy(), strict=False)
    known = truth_users >= 0
    truth_rows = row_of_user[truth_users[known]]
    truth_items = truth_pairs[ITEM_COL].to_numpy(dtype=np.int64)[known]
    items = IdMap(np.r_[truth_items, recommended.ravel()])
    truth_keys = truth_rows * len(items) + items.to_index(truth_items)
    recommended_keys = np.arange(len(user_ids))[:, None] * len(items) + items.to_index(recommended)
    hits = np.isin(recommended_keys, truth_keys) & (recommended != PAD_ID)
    n_relevant = np.bincount(truth_rows, minlength=len(user_ids)).astype(np.int64)
    return hits, n_relevant


def _evaluated(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    keep = n_relevant > 0
    if not keep.any():
        raise ValueError("no user has a test item")
    return hits[keep, :k].astype(np.float64), n_relevant[keep]


def precision_at_k(hits: np.ndarray, n_relevant: np.ndarray, k: int = 10) -> float:
    """Mean over users of hits in the top k / k."""
    top, _ = _evaluated(hits, n_relevant, k)
    return float((top.sum(axis=1) / k).mean())


def recall_at_k(hits: np.ndarray, n_relevant: np.ndarray, k: int = 10) -> float:
    """Mean over users of hits in the top k / |test items|."""
    top, relevant = _evaluated(hits, n_relevant, k)
    return float((top.sum(axis=1) / relevant).mean())


def ndcg_at_k(hits: np.ndarray, n_relevant: np.ndarray, k: int = 10) -> float:
    """Mean NDCG@k with binary gains; the ideal list puts min(k, |test items|) hits first.

    The issue's discount is 1/ln(1 + rank), Recommenders' and scikit-learn's 1/log2(1 + rank): the base
    only scales DCG and ideal DCG alike, so the ratio is the same; log2 is used here.
    """
    top, relevant = _evaluated(hits, n_relevant, k)
    discount = 1.0 / np.log2(np.arange(2, top.shape[1] + 2))
    ideal = np.cumsum(discount)[np.minimum(relevant, top.shape[1]) - 1]
    return float((top @ discount / ideal).mean())


def map_at_k(hits: np.ndarray, n_relevant: np.ndarray, k: int = 10) -> float:
    """Recommenders' MAP: per user Σ over hits of (hit number / rank), divided by |test items|; mean over users."""
    top, relevant = _evaluated(hits, n_relevant, k)
    precision_at_rank = np.cumsum(top, axis=1) / np.arange(1, top.shape[1] + 1)
    return float(((precision_at_rank * top).sum(axis=1) / relevant).mean())


def candidate_recall(hits: np.ndarray, n_relevant: np.ndarray) -> float:
    """Share of all test items (pooled over users) that the candidate lists contain; hits: (n_users, n_candidates)."""
    top, relevant = _evaluated(hits, n_relevant, hits.shape[1])
    return float(top.sum() / relevant.sum())


def ranking_metrics(hits: np.ndarray, n_relevant: np.ndarray, k: int = 10) -> dict[str, float]:
    """MAP, NDCG@k, Precision@k and Recall@k in one dict (keys: map, ndcg, precision, recall)."""
    return {
        "map": map_at_k(hits, n_relevant, k),
        "ndcg": ndcg_at_k(hits, n_relevant, k),
        "precision": precision_at_k(hits, n_relevant, k),
        "recall": recall_at_k(hits, n_relevant, k),
    }


def catalog_coverage(recommended: np.ndarray, catalog_size: int) -> float:
    """Share of the catalog that appears in at least one list; recommended: int ids (n_users, k)."""
    shown = np.unique(recommended[recommended != PAD_ID])
    return float(len(shown) / catalog_size)


def novelty(recommended: np.ndarray, train: pd.DataFrame) -> float:
    """Mean over recommended slots of -log2(item's share of all train interactions) (Recommenders' novelty).

    An item with no train interaction counts as one interaction, so that new titles get a finite value.
    """
    counts = train.groupby(ITEM_COL).size()
    items = IdMap(counts.index.to_numpy())
    slots = recommended[recommended != PAD_ID]
    index = items.to_index(slots, strict=False)
    slot_counts = np.where(index >= 0, counts.to_numpy()[np.maximum(index, 0)], 1)
    return float(np.mean(-np.log2(slot_counts / len(train))))


def _feature_rows(recommended: np.ndarray, feature_ids: np.ndarray, features: np.ndarray) -> np.ndarray:
    """Feature vectors of each slot, (n_users, k, n_features); zeros for padding and unknown ids."""
    padded = np.vstack([np.asarray(features, dtype=np.float64), np.zeros((1, features.shape[1]))])
    index = IdMap(feature_ids).to_index(recommended, strict=False)
    if len(np.unique(feature_ids)) != len(feature_ids):
        raise ValueError("feature_ids must be unique")
    order = np.argsort(feature_ids)  # IdMap indexes ids in ascending order
    return padded[np.where(index >= 0, order[np.maximum(index, 0)], len(features))]


def intra_list_diversity(recommended: np.ndarray, feature_ids: np.ndarray, features: np.ndarray) -> float:
    """Mean over users of 1 - mean pairwise cosine similarity of the list's feature (genre) vectors.

    recommended: int ids (n_users, k); feature_ids: int (n_items,); features: (n_items, n_features).
    """
    vectors = _feature_rows(recommended, feature_ids, features)
    norms = np.linalg.norm(vectors, axis=2, keepdims=True)
    unit = np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)
    k = recommended.shape[1]
    if k < 2:
        raise ValueError("intra-list diversity needs lists of at least 2 items")
    cosine = np.einsum("ukf,ujf->ukj", unit, unit)
    pairwise_mean = (cosine.sum(axis=(1, 2)) - np.einsum("ukk->u", cosine)) / (k * (k - 1))
    return float((1.0 - pairwise_mean).mean())


def distinct_features(recommended: np.ndarray, feature_ids: np.ndarray, features: np.ndarray) -> float:
    """Mean over users of the number of distinct features (genres) in the list; features binary (n_items, n)."""
    vectors = _feature_rows(recommended, feature_ids, features)
    return float((vectors.sum(axis=1) > 0).sum(axis=1).mean())
