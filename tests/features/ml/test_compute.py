"""The vectorised features on hand-made histories, against values worked out by hand (no database)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from features.ml.compute import (
    CatalogArrays,
    content_aggregates,
    content_features,
    interaction_features,
    user_features,
)
from features.ml.definitions import CONTENT_FEATURES, GENRE_SLOTS, INTERACTION_FEATURES, USER_FEATURES
from tests.features.histories import (
    AS_OF,
    CONTENT_EXPECTED,
    CONTENT_HISTORY,
    GENRES,
    TITLES,
    USER_EXPECTED,
    USER_HISTORY,
)

GENRE_IDS = {name: 10 * (i + 1) for i, name in enumerate(GENRES)}  # slots 0, 1, 2
TITLE_IDS = {name: 100 * (i + 1) for i, name in enumerate(TITLES)}
PROFILE_IDS = {name: i + 1 for i, name in enumerate(USER_HISTORY)}


def hand_catalog() -> CatalogArrays:
    titles = pd.DataFrame(
        {"title_id": list(TITLE_IDS.values()), "is_series": [kind == "series" for kind, _ in TITLES.values()]}
    )
    links = pd.DataFrame(
        [(TITLE_IDS[t], GENRE_IDS[g]) for t, (_, genres) in TITLES.items() for g in genres],
        columns=["title_id", "genre_id"],
    )
    return CatalogArrays.from_frames(titles, links, GENRE_IDS.values())


def user_viewings() -> pd.DataFrame:
    rows = [
        (PROFILE_IDS[profile], TITLE_IDS[title], *rest)
        for profile, history in USER_HISTORY.items()
        for title, *rest in history
    ]
    frame = pd.DataFrame(
        rows,
        columns=[
            "profile_id",
            "title_id",
            "started_at",
            "last_watched_at",
            "watch_seconds",
            "watch_percentage",
            "completed",
        ],
    )
    return frame.sample(frac=1.0, random_state=7)  # order must not matter


def assert_user_row(row: dict, expected: dict, genre_ids: dict[str, int]) -> None:
    """`row` maps feature names to values; `genre_ids` maps the symbolic genres to ids in slot order."""
    for name in ("total_watch_hours", "avg_session_duration", "completion_rate", "binge_watching_score"):
        assert row[name] == pytest.approx(expected[name], rel=1e-6, nan_ok=True), name
    assert list(row["favorite_genres"]) == [genre_ids[g] if g else -1 for g in expected["favorite_genres"]]
    slots = sorted(genre_ids.values())
    affinity = np.zeros(GENRE_SLOTS)
    for genre, share in expected["genre_affinity"].items():
        affinity[slots.index(genre_ids[genre])] = share
    np.testing.assert_allclose(row["genre_affinity"], affinity, rtol=1e-6)


def assert_content_row(row: dict, expected: dict, genre_ids: dict[str, int]) -> None:
    for name in ("view_count_7d", "popularity_score", "trending_score", "avg_completion_rate", "avg_rating"):
        assert row[name] == pytest.approx(expected[name], rel=1e-6, abs=1e-7, nan_ok=True), name
    slots = sorted(genre_ids.values())
    indicator = np.zeros(GENRE_SLOTS)
    indicator[[slots.index(genre_ids[g]) for g in expected["genres"]]] = 1
    np.testing.assert_array_equal(row["genre_indicator"], indicator)


def as_dict(matrix, position: int) -> dict:
    return {name: matrix.column(name)[position] for name in matrix.features.names}


@pytest.mark.parametrize("profile", list(USER_HISTORY))
def test_user_features_match_hand_computed_values(profile):
    matrix = user_features(user_viewings(), hand_catalog(), as_of=AS_OF, profile_ids=PROFILE_IDS.values())
    assert list(matrix.ids) == sorted(PROFILE_IDS.values())
    position = list(matrix.ids).index(PROFILE_IDS[profile])
    assert_user_row(as_dict(matrix, position), USER_EXPECTED[profile], GENRE_IDS)


def test_an_empty_history_computes_to_the_declared_defaults():
    matrix = user_features(user_viewings().iloc[:0], hand_catalog(), as_of=AS_OF, profile_ids=[5, 6])
    np.testing.assert_array_equal(matrix.values, np.tile(USER_FEATURES.defaults, (2, 1)))


def test_viewings_after_as_of_do_not_count():
    viewings = user_viewings()
    earlier = user_features(viewings, hand_catalog(), as_of=AS_OF.replace(day=2))
    binger = list(earlier.ids).index(PROFILE_IDS["binger"])
    assert earlier.column("total_watch_hours")[binger] == pytest.approx(6000 / 3600)


@pytest.mark.parametrize("title", list(CONTENT_HISTORY))
def test_content_features_match_hand_computed_values(title):
    rows = [(TITLE_IDS[t], started, pct, done) for t, views in CONTENT_HISTORY.items() for started, pct, done in views]
    viewings = pd.DataFrame(rows, columns=["title_id", "started_at", "watch_percentage", "completed"])
    matrix = content_features(content_aggregates(viewings, as_of=AS_OF), hand_catalog())
    assert list(matrix.ids) == sorted(TITLE_IDS.values())  # every title, viewed or not
    assert_content_row(as_dict(matrix, list(matrix.ids).index(TITLE_IDS[title])), CONTENT_EXPECTED[title], GENRE_IDS)


def test_interaction_features():
    user_affinity = np.zeros(GENRE_SLOTS)
    user_affinity[:2] = [0.75, 0.25]  # drama, comedy
    genres = np.zeros((3, GENRE_SLOTS))
    genres[0, 0] = 1  # drama only: cosine = 0.75 / |(0.75, 0.25)|
    genres[1, [1, 2]] = 1  # comedy + horror: 0.25 / (sqrt(2) |u|)
    history = pd.DataFrame(
        {
            "title_id": [1, 1, 3],
            "watch_percentage": [0.4, 0.9, 0.2],
            "last_watched_at": [AS_OF.replace(day=7), AS_OF.replace(day=5), AS_OF.replace(day=9, hour=12)],
        }
    )
    values = interaction_features(
        user_affinity=user_affinity, title_ids=np.array([1, 2, 3]), title_genres=genres, history=history, as_of=AS_OF
    )
    column = {name: values[:, INTERACTION_FEATURES.slices[name]][:, 0] for name in INTERACTION_FEATURES.names}
    norm = math.hypot(0.75, 0.25)
    np.testing.assert_array_equal(column["has_watched"], [1, 0, 1])
    np.testing.assert_allclose(column["watch_percentage"], [0.9, 0.0, 0.2], rtol=1e-6)
    np.testing.assert_allclose(column["days_since_watched"], [3.0, np.nan, 0.5], rtol=1e-6)
    np.testing.assert_allclose(column["genre_affinity"], [0.75 / norm, 0.25 / (math.sqrt(2) * norm), 0.0], rtol=1e-6)


def test_catalog_refuses_more_genres_than_slots():
    with pytest.raises(ValueError, match="GENRE_SLOTS"):
        CatalogArrays.from_frames(
            pd.DataFrame({"title_id": [1], "is_series": [False]}),
            pd.DataFrame({"title_id": [1], "genre_id": [1]}),
            range(GENRE_SLOTS + 1),
        )


def test_missing_columns_are_named():
    with pytest.raises(ValueError, match=r"missing .*completed"):
        user_features(user_viewings().drop(columns="completed"), hand_catalog(), as_of=AS_OF)


def test_feature_sets_are_consistent():
    for features in (USER_FEATURES, CONTENT_FEATURES, INTERACTION_FEATURES):
        assert len(features.columns) == features.width == len(features.defaults)
        assert features.defaults.dtype == np.float32
