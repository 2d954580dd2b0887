"""Interaction frames, id maps and the user × item matrix."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recommendations.ml.data import IdMap, interaction_matrix, item_counts, validate_interactions


def test_missing_columns_raise_the_boundary_error():
    with pytest.raises(ValueError, match=r"^interactions needs columns user_id, content_id, rating$"):
        validate_interactions(pd.DataFrame({"user_id": [1], "content_id": [2]}))


def test_non_integer_ids_and_non_finite_ratings_are_rejected():
    with pytest.raises(ValueError, match="content_id must hold integers"):
        validate_interactions(pd.DataFrame({"user_id": [1], "content_id": ["a"], "rating": [1.0]}))
    with pytest.raises(ValueError, match="finite"):
        validate_interactions(pd.DataFrame({"user_id": [1], "content_id": [2], "rating": [np.nan]}))


def test_id_map_round_trips_and_flags_unknown_ids():
    ids = IdMap([30, 10, 20, 10])
    assert len(ids) == 3
    np.testing.assert_array_equal(ids.to_index([[20, 30], [10, 10]]), [[1, 2], [0, 0]])
    np.testing.assert_array_equal(ids.to_raw([2, 0]), [30, 10])
    np.testing.assert_array_equal(ids.to_index([5, 20, 99], strict=False), [-1, 1, -1])
    np.testing.assert_array_equal(ids.contains([5, 30]), [False, True])
    with pytest.raises(KeyError, match="99"):
        ids.to_index([10, 99])


def test_empty_id_map_knows_nothing():
    assert IdMap([]).to_index([1], strict=False).tolist() == [-1]


def test_interaction_matrix_keeps_the_best_of_repeated_pairs_and_drops_unknown_ids():
    frame = pd.DataFrame(
        {"user_id": [1, 1, 1, 2, 3], "content_id": [10, 10, 20, 20, 10], "rating": [2.0, 4.0, 3.0, 5.0, 1.0]}
    )
    matrix = interaction_matrix(frame, IdMap([1, 2]), IdMap([10, 20]))
    assert matrix.dtype == np.float32 and matrix.shape == (2, 2)
    np.testing.assert_array_equal(matrix.toarray(), [[4.0, 3.0], [0.0, 5.0]])
    np.testing.assert_array_equal(
        interaction_matrix(frame, IdMap([1, 2]), IdMap([10, 20]), binary=True).toarray(), [[1.0, 1.0], [0.0, 1.0]]
    )


def test_item_counts_count_distinct_users():
    frame = pd.DataFrame({"user_id": [1, 1, 2, 3], "content_id": [10, 10, 10, 20], "rating": 1.0})
    assert item_counts(frame).to_dict() == {10: 2, 20: 1}
