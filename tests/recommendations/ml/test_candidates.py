"""Merging per-source lists into unique candidates with quotas."""

from __future__ import annotations

import numpy as np
import pytest

from recommendations.ml.candidates import merge_candidates


def lists():
    return {
        "collaborative": (np.array([1, 2, 3, 4, 5]), np.array([0.9, 0.8, 0.7, 0.6, 0.5])),
        "trending": (np.array([3, 6, 7, 1]), np.array([40.0, 30.0, 20.0, 10.0])),
        "similar": (np.array([8, 2, -1]), np.array([0.3, 0.2, -np.inf])),  # -1: padding
    }


def test_quotas_then_uniqueness_in_source_order():
    merged = merge_candidates(lists(), {"collaborative": 2, "trending": 2, "similar": 1}, total=10, backfill=False)
    assert merged.content_ids.tolist() == [1, 2, 3, 6, 8]
    assert merged.sources == ("collaborative", "trending", "similar")


def test_flags_and_scores_cover_every_list_that_holds_the_candidate():
    merged = merge_candidates(lists(), {"collaborative": 2, "trending": 2, "similar": 1}, total=10, backfill=False)
    row = merged.content_ids.tolist().index(2)
    assert merged.proposed[row].tolist() == [True, False, True]
    assert merged.scores[row, 0] == pytest.approx(0.8) and np.isnan(merged.scores[row, 1])
    assert merged.scores[row, 2] == pytest.approx(0.2)


def test_backfill_interleaves_the_rest_by_rank_up_to_total():
    merged = merge_candidates(lists(), {"collaborative": 1, "trending": 1}, total=6)
    # quotas: 1 and 3; then rank by rank: 8 (similar #1, no quota), 2, 6, (2 again), (3 again), 7
    assert merged.content_ids.tolist() == [1, 3, 8, 2, 6, 7]
    assert len(merged) == 6 and len(set(merged.content_ids.tolist())) == 6


def test_unsorted_lists_are_ranked_by_score_first():
    merged = merge_candidates({"a": (np.array([5, 6, 7]), np.array([0.1, 0.9, 0.5]))}, {"a": 2}, backfill=False)
    assert merged.content_ids.tolist() == [6, 7]


def test_quota_for_an_unknown_source_is_an_error():
    with pytest.raises(ValueError, match="unknown sources"):
        merge_candidates(lists(), {"editorial": 5})


def test_model_mask_maps_catalog_rows_to_model_items_and_remembers_read_only_masks():
    from recommendations.ml.sources import ItemAlignment

    alignment = ItemAlignment.build(np.array([5, 3, 9, 7]), catalog_ids=np.array([3, 5, 7]))  # 9 left the catalog
    allowed = np.array([True, False, True])
    allowed.setflags(write=False)
    first = alignment.model_mask(allowed)
    assert first.tolist() == [False, True, False, True]
    assert alignment.model_mask(allowed) is first and not first.flags.writeable
    other = np.array([True, False, True])
    other.setflags(write=False)
    assert alignment.model_mask(other) is not first  # another mask object is mapped on its own

    writable = np.array([True, True, True])
    assert alignment.model_mask(writable).tolist() == [True, True, False, True]
    writable[0] = False  # a writable mask may change between calls: never remembered
    assert alignment.model_mask(writable).tolist() == [True, False, False, True]
