"""Training data: candidates labelled by later interactions, stacked per query for LambdaMART."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ranking.ml.training_data import RankingQuery, graded_labels, training_data


def query(profile_id: int, candidate_ids: list[int], width: int = 3) -> RankingQuery:
    ids = np.array(candidate_ids, np.int64)
    return RankingQuery(profile_id, ids, np.tile(ids[:, None].astype(np.float32), (1, width)))


def outcomes(rows: list[tuple[int, int, float]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["user_id", "content_id", "rating"])


def test_labels_are_graded_by_the_later_rating():
    assert graded_labels(np.array([np.nan, 1.0, 3.9, 4.0, 5.0])).tolist() == [0, 1, 1, 2, 2]
    assert graded_labels(np.array([np.nan, 1.0, 5.0]), strong_rating=None).tolist() == [0, 1, 1]


def test_each_query_is_labelled_by_its_own_profile_only():
    data = training_data(
        [query(1, [10, 11, 12]), query(2, [10, 13])],
        outcomes([(1, 11, 5.0), (1, 12, 2.0), (2, 10, 3.0), (3, 13, 5.0)]),
    )
    assert data.labels.tolist() == [0, 2, 1, 1, 0]
    assert data.group_sizes.tolist() == [3, 2] and data.profile_ids.tolist() == [1, 2]
    assert data.candidate_ids.tolist() == [10, 11, 12, 10, 13]
    assert data.features[:, 0].tolist() == [10, 11, 12, 10, 13] and data.features.dtype == np.float32


def test_a_repeated_interaction_keeps_its_best_rating():
    data = training_data([query(1, [10])], outcomes([(1, 10, 1.0), (1, 10, 4.5)]))
    assert data.labels.tolist() == [2]


def test_queries_without_a_positive_are_dropped_unless_asked_to_keep_them():
    queries = [query(1, [10, 11]), query(2, [12])]
    later = outcomes([(1, 11, 3.0)])
    assert training_data(queries, later).profile_ids.tolist() == [1]
    kept = training_data(queries, later, drop_without_positive=False)
    assert kept.group_sizes.tolist() == [2, 1] and kept.labels.tolist() == [0, 1, 0]


def test_profiles_split_into_disjoint_query_sets():
    queries = [query(p, [p * 10, p * 10 + 1]) for p in range(1, 41)]
    data = training_data(queries, outcomes([(p, p * 10, 5.0) for p in range(1, 41)]))
    fit, held_out = data.split_profiles(0.25, seed=3)
    assert set(fit.profile_ids).isdisjoint(held_out.profile_ids)
    assert len(fit.profile_ids) + len(held_out.profile_ids) == 40 and len(held_out.profile_ids) > 0
    assert fit.group_sizes.sum() == len(fit.labels) == len(fit.features)
    assert (fit.candidate_ids // 10 == np.repeat(fit.profile_ids, 2)).all()  # rows follow their queries


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="columns user_id, content_id, rating"):
        training_data([query(1, [10])], pd.DataFrame({"user_id": [1], "content_id": [10]}))
    with pytest.raises(ValueError, match="different feature widths"):
        training_data([query(1, [10]), query(2, [11], width=4)], outcomes([(1, 10, 5.0)]))
    with pytest.raises(ValueError, match="no query has a labelled candidate"):
        training_data([query(1, [10])], outcomes([(2, 10, 5.0)]))


def test_keep_top_keeps_each_querys_best_rows_in_their_order():
    data = training_data([query(1, [10, 11, 12, 13]), query(2, [20, 21])], outcomes([(1, 13, 5.0), (2, 20, 5.0)]))
    head = data.keep_top(np.array([0.1, np.nan, 0.9, 0.5, 0.2, 0.3]), depth=3)
    assert head.candidate_ids.tolist() == [10, 12, 13, 20, 21]
    assert head.group_sizes.tolist() == [3, 2] and head.labels.tolist() == [0, 0, 2, 2, 0]
    assert head.features[:, 0].tolist() == [10, 12, 13, 20, 21]
