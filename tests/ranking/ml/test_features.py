"""The ranker's feature matrix: shapes, source flags and ranks, per-request z-scores, catalog and context columns."""

from __future__ import annotations

import numpy as np
import pytest

from features.ml.definitions import CONTENT_FEATURES, INTERACTION_FEATURES, USER_FEATURES
from ranking.ml.features import (
    MODEL_SLOTS,
    RANKER_FEATURE_NAMES,
    SOURCE_SLOTS,
    RankingContext,
    RankingInput,
    assemble,
)
from recommendations.ml.catalog import CatalogIndex
from recommendations.ml.sources import SOURCES

TV, WEB = 1, 4
TODAY = 20_000  # days since 1970: 2024-10-04
ACTION, DRAMA, COMEDY = 10, 20, 30  # genre ids, slots 0, 1, 2


def catalog() -> CatalogIndex:
    """Four titles, ids 100-103: 101 has 4K, 102 is premium-only, 103 has no release year."""
    genre_ids = np.array([ACTION, DRAMA, COMEDY])
    return CatalogIndex(
        content_ids=np.array([100, 101, 102, 103], np.int64),
        names=np.array(["a", "b", "c", "d"], object),
        genre_masks=np.array([0b001, 0b011, 0b111, 0b000], np.uint32),
        genre_ids=genre_ids,
        genre_names=("Action", "Drama", "Comedy"),
        maturity=np.array([0, 13, 16, 18], np.int16),
        available_tiers=np.array([0b111, 0b111, 0b100, 0b111], np.uint8),
        worldwide=np.ones(4, bool),
        country_titles={},
        date_added_days=np.array([TODAY - 10, TODAY - 100, TODAY, TODAY - 1], np.int32),
        release_year=np.array([2020, 1999, 2024, 0], np.int16),
        is_original=np.array([False, True, False, False]),
        has_4k=np.array([False, True, False, False]),
        has_hdr=np.array([False, True, True, False]),
        is_series=np.array([False, False, True, False]),
    )


def user_vector() -> np.ndarray:
    user = USER_FEATURES.defaults.copy()
    slices = USER_FEATURES.slices
    user[slices["total_watch_hours"]] = 12.5
    user[slices["completion_rate"]] = 0.75
    user[slices["favorite_genres"]] = [DRAMA, COMEDY, -1]
    affinity = np.zeros(USER_FEATURES.feature("genre_affinity").width, np.float32)
    affinity[:2] = [0.25, 0.75]
    user[slices["genre_affinity"]] = affinity
    return user


def ranking_input(*, device: int = TV, model_scores: dict | None = None, **changes) -> RankingInput:
    """Candidates 100-103 (rows 0-3) from two of the sources: 101 is in both."""
    content = np.tile(CONTENT_FEATURES.defaults, (4, 1))
    content[:, CONTENT_FEATURES.slices["popularity_score"]] = np.array([[5.0], [1.0], [3.0], [2.0]])
    interaction = np.tile(INTERACTION_FEATURES.defaults, (4, 1))
    interaction[:, INTERACTION_FEATURES.slices["genre_affinity"]] = np.array([[0.1], [0.9], [0.5], [0.0]])
    values = {
        "candidate_ids": np.array([100, 101, 102, 103], np.int64),
        "source_names": ("trending", "collaborative"),
        "source_flags": np.array([[True, False], [True, True], [False, True], [False, False]]),
        "source_scores": np.array([[40.0, np.nan], [10.0, 0.9], [np.nan, 0.5], [np.nan, np.nan]], np.float32),
        "model_scores": {"mf": np.array([1.0, 2.0, 3.0, 4.0], np.float32)} if model_scores is None else model_scores,
        "user": user_vector(),
        "content": content,
        "interaction": interaction,
        "catalog": catalog(),
        "rows": np.arange(4),
        "context": RankingContext(
            hour=21, weekday=4, device_type=device, country="FR", today_days=TODAY, premium=False
        ),
    }
    values.update(changes)
    return RankingInput(**values)


def column(matrix: np.ndarray, name: str) -> np.ndarray:
    return matrix[:, RANKER_FEATURE_NAMES.index(name)]


def test_one_float32_row_per_candidate_and_one_column_per_name():
    matrix = assemble(ranking_input())
    assert matrix.shape == (4, len(RANKER_FEATURE_NAMES)) and matrix.dtype == np.float32
    assert len(RANKER_FEATURE_NAMES) >= 30 and len(set(RANKER_FEATURE_NAMES)) == len(RANKER_FEATURE_NAMES)


def test_source_slots_are_the_candidate_sources_of_the_service():
    assert tuple(SOURCES) == SOURCE_SLOTS


def test_a_candidate_in_two_sources_has_both_flags_scores_and_ranks():
    matrix = assemble(ranking_input())
    assert column(matrix, "source_trending_flag")[1] == 1 and column(matrix, "source_collaborative_flag")[1] == 1
    assert column(matrix, "source_trending_score")[1] == 10.0
    assert column(matrix, "source_collaborative_score")[1] == pytest.approx(0.9)
    assert column(matrix, "source_trending_rank")[1] == 1  # behind 100's 40
    assert column(matrix, "source_collaborative_rank")[1] == 0
    assert column(matrix, "source_count").tolist() == [1, 2, 1, 0]
    assert column(matrix, "source_best_rank")[:3].tolist() == [0, 0, 1]


def test_an_absent_source_leaves_nan_scores_and_ranks_and_a_zero_flag():
    matrix = assemble(ranking_input())
    assert np.isnan(column(matrix, "source_collaborative_score")[0])
    assert np.isnan(column(matrix, "source_collaborative_rank")[0])
    assert column(matrix, "source_collaborative_flag")[0] == 0
    assert np.isnan(column(matrix, "source_best_rank")[3])  # listed by no source
    for slot in ("continue_watching", "similar_to_watched", "new_releases", "ease", "popular_in_genres"):
        assert (column(matrix, f"source_{slot}_flag") == 0).all()
        assert np.isnan(column(matrix, f"source_{slot}_score")).all()


def test_model_scores_become_z_scores_and_percentiles_within_the_request():
    matrix = assemble(ranking_input())
    z = column(matrix, "model_mf_z")
    assert z.mean() == pytest.approx(0, abs=1e-6) and z.std() == pytest.approx(1, abs=1e-6)
    assert np.argsort(z).tolist() == [0, 1, 2, 3]
    assert column(matrix, "model_mf_percentile").tolist() == pytest.approx([0, 1 / 3, 2 / 3, 1])
    assert column(matrix, "model_mean_z") == pytest.approx(z)
    for model in MODEL_SLOTS[1:]:
        assert np.isnan(column(matrix, f"model_{model}_z")).all()


def test_a_candidate_a_model_cannot_score_stays_nan_and_the_others_are_scaled_without_it():
    scores = {"mf": np.array([1.0, np.nan, 3.0, 5.0], np.float32), "ease": np.full(4, 7.0, np.float32)}
    matrix = assemble(ranking_input(model_scores=scores))
    z = column(matrix, "model_mf_z")
    assert np.isnan(z[1]) and np.isnan(column(matrix, "model_mf_percentile")[1])
    assert z[[0, 2, 3]].mean() == pytest.approx(0, abs=1e-6)
    assert (column(matrix, "model_ease_z") == 0).all()  # no spread: no information, not NaN
    assert column(matrix, "model_mean_z")[1] == 0  # the mean of the z-scores that exist


def test_title_popularity_is_ranked_against_the_other_candidates():
    matrix = assemble(ranking_input())
    assert column(matrix, "title_popularity").tolist() == [5, 1, 3, 2]
    assert column(matrix, "title_popularity_percentile").tolist() == pytest.approx([1, 0, 2 / 3, 1 / 3])


def test_user_and_interaction_features():
    matrix = assemble(ranking_input())
    assert (column(matrix, "user_watch_hours") == 12.5).all()
    assert (column(matrix, "user_completion_rate") == 0.75).all()
    assert (column(matrix, "user_top_genre_share") == 0.75).all()
    assert column(matrix, "genre_affinity").tolist() == pytest.approx([0.1, 0.9, 0.5, 0.0])
    assert column(matrix, "favorite_genre_matches").tolist() == [0, 1, 2, 0]  # drama and comedy


def test_catalog_and_context_columns():
    matrix = assemble(ranking_input(device=TV))
    assert column(matrix, "title_age_days").tolist() == [10, 100, 0, 1]
    assert column(matrix, "release_year")[:3].tolist() == [2020, 1999, 2024]
    assert np.isnan(column(matrix, "release_year")[3]) and np.isnan(column(matrix, "years_since_release")[3])
    assert column(matrix, "premium_only").tolist() == [0, 0, 1, 0]
    assert column(matrix, "genre_count").tolist() == [1, 2, 3, 0]
    assert column(matrix, "is_series").tolist() == [0, 0, 1, 0]
    assert column(matrix, "tv_and_4k").tolist() == [0, 1, 0, 0]
    assert column(matrix, "tv_and_hdr").tolist() == [0, 1, 1, 0]
    assert (column(matrix, "hour") == 21).all() and (column(matrix, "weekday") == 4).all()
    on_web = assemble(ranking_input(device=WEB))
    assert (column(on_web, "tv_and_4k") == 0).all() and column(on_web, "has_4k")[1] == 1


def test_empty_candidates_give_an_empty_matrix():
    empty = ranking_input(
        candidate_ids=np.empty(0, np.int64),
        source_flags=np.empty((0, 2), bool),
        source_scores=np.empty((0, 2), np.float32),
        model_scores={"mf": np.empty(0, np.float32)},
        content=np.empty((0, CONTENT_FEATURES.width), np.float32),
        interaction=np.empty((0, INTERACTION_FEATURES.width), np.float32),
        rows=np.empty(0, np.int64),
    )
    assert assemble(empty).shape == (0, len(RANKER_FEATURE_NAMES))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"source_names": ("trending", "editorial")}, "unknown candidate sources"),
        ({"model_scores": {"svd": np.zeros(4, np.float32)}}, "unknown model"),
        ({"model_scores": {"mf": np.zeros(3, np.float32)}}, "model_scores"),
        ({"content": np.zeros((4, 3), np.float32)}, "RankingInput.content"),
        ({"rows": np.arange(3)}, "RankingInput.rows"),
    ],
)
def test_inputs_of_the_wrong_shape_or_names_are_refused(changes, message):
    with pytest.raises(ValueError, match=message):
        assemble(ranking_input(**changes))
