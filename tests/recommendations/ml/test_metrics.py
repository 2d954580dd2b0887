"""Ranking metrics against hand-computed cases and scikit-learn; coverage, novelty and diversity."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import ndcg_score

from recommendations.ml import metrics
from recommendations.ml.constants import PAD_ID

# User A: hits at ranks 1 and 3 of 5, four test items. User B: no test item (left out). User C: no hit, two.
HITS = np.array([[1, 0, 1, 0, 0], [1, 1, 0, 0, 0], [0, 0, 0, 0, 0]], dtype=bool)
N_RELEVANT = np.array([4, 0, 2])


def test_precision_and_recall_by_hand():
    assert metrics.precision_at_k(HITS, N_RELEVANT, k=5) == pytest.approx((2 / 5 + 0) / 2)
    assert metrics.recall_at_k(HITS, N_RELEVANT, k=5) == pytest.approx((2 / 4 + 0) / 2)


def test_ndcg_by_hand_with_the_ideal_over_min_k_and_test_items():
    dcg = 1 / math.log(2) + 1 / math.log(4)  # natural log, as the issue writes it: the base cancels
    ideal = sum(1 / math.log(1 + rank) for rank in range(1, 5))
    assert metrics.ndcg_at_k(HITS, N_RELEVANT, k=5) == pytest.approx((dcg / ideal + 0) / 2)
    # k smaller than |test items|: the ideal list is k hits long
    assert metrics.ndcg_at_k(np.array([[1, 1]]), np.array([5]), k=2) == pytest.approx(1.0)


def test_map_divides_by_all_test_items():
    assert metrics.map_at_k(HITS, N_RELEVANT, k=5) == pytest.approx(((1 / 1 + 2 / 3) / 4 + 0) / 2)


def test_ndcg_agrees_with_scikit_learn():
    rng = np.random.default_rng(7)
    relevant = rng.random((40, 30)) < 0.2
    relevant[relevant.sum(axis=1) == 0, 0] = True  # every user has a test item
    scores = rng.random((40, 30))
    top = np.argsort(-scores, axis=1)[:, :10]
    hits = np.take_along_axis(relevant, top, axis=1)
    ours = metrics.ndcg_at_k(hits, relevant.sum(axis=1), k=10)
    assert ours == pytest.approx(ndcg_score(relevant.astype(int), scores, k=10))


def test_relevance_matches_lists_to_test_rows_by_raw_id():
    truth = pd.DataFrame({"user_id": [1, 1, 1, 2, 9], "content_id": [10, 30, 40, 20, 10]})
    recommended = np.array([[10, 20, 30], [20, PAD_ID, PAD_ID], [10, 20, 30]])
    hits, n_relevant = metrics.relevance(np.array([1, 2, 3]), recommended, truth)
    np.testing.assert_array_equal(hits, [[True, False, True], [True, False, False], [False, False, False]])
    np.testing.assert_array_equal(n_relevant, [3, 1, 0])  # user 9 is not evaluated, user 3 has no test row


def test_ranking_metrics_need_one_user_with_test_items():
    with pytest.raises(ValueError, match="no user has a test item"):
        metrics.precision_at_k(np.zeros((2, 3), bool), np.zeros(2, int), k=3)


def test_candidate_recall_pools_test_items_over_users():
    hits = np.array([[1, 1, 0], [0, 0, 0]], dtype=bool)
    assert metrics.candidate_recall(hits, np.array([2, 2])) == pytest.approx(2 / 4)


def test_catalog_coverage_counts_distinct_titles_shown():
    assert metrics.catalog_coverage(np.array([[1, 2], [2, PAD_ID]]), catalog_size=10) == pytest.approx(0.2)


def test_novelty_is_mean_minus_log2_share_of_interactions():
    train = pd.DataFrame({"user_id": [1, 2, 3, 4], "content_id": [1, 1, 1, 2], "rating": 1.0})
    expected = (-math.log2(3 / 4) - math.log2(1 / 4) - math.log2(1 / 4)) / 3  # title 5: unseen, counted once
    assert metrics.novelty(np.array([[1, 2, 5]]), train) == pytest.approx(expected)


def test_intra_list_diversity_and_distinct_genres():
    feature_ids = np.array([3, 1, 2])  # rows of `features`, in any order
    features = np.array([[1, 1], [1, 0], [0, 1]])
    recommended = np.array([[1, 2, 3], [1, 1, 1]])
    # user 1: cosines (1,2)=0, (1,3)=(2,3)=1/√2; user 2: identical titles, similarity 1
    expected = ((1 - (2 / math.sqrt(2)) / 3) + 0.0) / 2
    assert metrics.intra_list_diversity(recommended, feature_ids, features) == pytest.approx(expected)
    assert metrics.distinct_features(recommended, feature_ids, features) == pytest.approx((2 + 1) / 2)
