"""The contract every candidate source keeps (fit, recommend, recommend_many, save/load), on two taste groups."""

from __future__ import annotations

import json
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from recommendations.ml.base import Recommender
from recommendations.ml.constants import PAD_ID
from recommendations.ml.content import ContentSimilarity
from recommendations.ml.ease import EASE
from recommendations.ml.matrix_factorization import MatrixFactorization
from recommendations.ml.ncf import NCFRecommender
from recommendations.ml.popularity import PopularityRecommender
from tests.recommendations.ml.handmade import (
    ACTION_USERS,
    DRAMA_USERS,
    NEW_ACTION_TITLE,
    catalog,
    taste_groups,
    unseen_own_titles,
)

# Small, low-rank settings: the data has rank 2, and each passed 3 seeds × 20 users when chosen.
FACTORIES: dict[str, Callable[[pd.DataFrame], Recommender]] = {
    "popularity": lambda data: PopularityRecommender().fit(data),
    "mf_als": lambda data: MatrixFactorization(2, 15, regularization=1.0, alpha=1.0, num_threads=1).fit(data),
    "mf_bpr": lambda data: MatrixFactorization(
        8, 200, regularization=0.01, objective="bpr", learning_rate=0.05, num_threads=1
    ).fit(data),
    "mf_sgd": lambda data: MatrixFactorization(
        4, 200, regularization=0.01, objective="sgd", learning_rate=0.05, batch_size=32
    ).fit(data),
    "ncf": lambda data: NCFRecommender(2, (4,), n_epochs=60, batch_size=64, learning_rate=0.01).fit(data),
    "content": lambda data: ContentSimilarity(n_neighbors=50).fit(data, catalog()),
    "ease": lambda data: EASE(regularization=1.0).fit(data),
}
RATING_REGRESSION = {"mf_sgd"}  # fitted on the taste groups with dislikes
PERSONALISED = [name for name in FACTORIES if name != "popularity"]
_fitted: dict[str, Recommender] = {}


def fitted(name: str) -> Recommender:
    """Each model fitted once per session: the fits are the slow part."""
    if name not in _fitted:
        _fitted[name] = FACTORIES[name](taste_groups(dislikes=name in RATING_REGRESSION))
    return _fitted[name]


def seen_by(name: str, user_id: int) -> set[int]:
    data = taste_groups(dislikes=name in RATING_REGRESSION)
    return set(data.loc[data["user_id"] == user_id, "content_id"].tolist())


@pytest.mark.parametrize("name", list(FACTORIES))
def test_recommend_returns_unseen_pairs_best_first(name):
    model = fitted(name)
    recommendations = model.recommend(int(ACTION_USERS[0]), n=3)  # content similarity reaches only 3 titles
    assert len(recommendations) == 3
    assert all(isinstance(item, int) and isinstance(score, float) for item, score in recommendations)
    scores = [score for _, score in recommendations]
    assert scores == sorted(scores, reverse=True)
    assert not {item for item, _ in recommendations} & seen_by(name, int(ACTION_USERS[0]))


@pytest.mark.parametrize("name", PERSONALISED)
def test_each_taste_group_gets_its_own_unseen_titles_first(name):
    model = fitted(name)
    for user in (*ACTION_USERS[:4], *DRAMA_USERS[:4]):
        expected = unseen_own_titles(int(user))
        if name == "content":  # the new title has the same metadata, so it ties with the two unseen ones
            expected |= {NEW_ACTION_TITLE} if user in ACTION_USERS else set()
        top = {item for item, _ in model.recommend(int(user), n=len(expected))}
        assert top == expected, f"{name} user {user}"


@pytest.mark.parametrize("name", list(FACTORIES))
def test_recommend_many_matches_recommend_and_pads_past_the_catalog(name):
    model = fitted(name)
    users = np.array([ACTION_USERS[1], DRAMA_USERS[2]])
    ids, scores = model.recommend_many(users, n=40)
    assert ids.shape == scores.shape == (2, 40)
    assert ids.dtype == np.int64 and scores.dtype == np.float32
    assert (ids[:, -1] == PAD_ID).all() and np.isneginf(scores[:, -1]).all()  # 40 > titles left unseen
    single = model.recommend(int(users[1]), n=40)
    assert [item for item, _ in single] == [int(item) for item in ids[1] if item != PAD_ID]


@pytest.mark.parametrize("name", list(FACTORIES))
def test_exclude_seen_false_can_return_seen_titles(name):
    model = fitted(name)
    everything = {item for item, _ in model.recommend(int(ACTION_USERS[0]), n=30, exclude_seen=False)}
    assert everything & seen_by(name, int(ACTION_USERS[0]))


@pytest.mark.parametrize("name", list(FACTORIES))
def test_unknown_user_raises_key_error(name):
    with pytest.raises(KeyError):
        fitted(name).recommend(999_999, n=3)


@pytest.mark.parametrize("name", list(FACTORIES))
def test_save_then_load_gives_the_same_recommendations(name, tmp_path):
    model = fitted(name)
    path = model.save(tmp_path / name, metadata={"data_window": ["2026-01-01", "2026-06-01"]})
    meta = json.loads((path / "meta.json").read_text())
    assert meta["class"] == type(model).__name__ and meta["metadata"]["data_window"][0] == "2026-01-01"
    assert set(meta["sha256"]) >= {"arrays.npz"}
    loaded = type(model).load(path)
    users = np.concatenate([ACTION_USERS, DRAMA_USERS])
    expected_ids, expected_scores = model.recommend_many(users, n=5)
    ids, scores = loaded.recommend_many(users, n=5)
    np.testing.assert_array_equal(ids, expected_ids)
    np.testing.assert_allclose(scores, expected_scores, rtol=1e-5)


@pytest.mark.parametrize("name", list(FACTORIES))
def test_load_refuses_a_corrupt_artifact(name, tmp_path):
    path = fitted(name).save(tmp_path / name)
    target = path / max(json.loads((path / "meta.json").read_text())["sha256"])
    data = bytearray(target.read_bytes())
    data[-1] ^= 0xFF
    target.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="checksum"):
        type(fitted(name)).load(path)


def test_load_refuses_another_models_artifact(tmp_path):
    path = fitted("popularity").save(tmp_path / "popularity")
    with pytest.raises(ValueError, match="PopularityRecommender"):
        EASE.load(path)


def test_popularity_ranks_by_number_of_users():
    data = pd.DataFrame({"user_id": [1, 2, 3, 1, 2, 1, 4], "content_id": [10, 10, 10, 20, 20, 30, 40], "rating": 1.0})
    model = PopularityRecommender().fit(data)
    assert [item for item, _ in model.recommend(4, n=3)] == [10, 20, 30]
    assert [item for item, _ in model.recommend(1, n=3)] == [40]  # the rest is seen


def test_fit_rejects_a_frame_without_the_columns():
    with pytest.raises(ValueError, match="interactions needs columns user_id, content_id, rating"):
        EASE().fit(pd.DataFrame({"user": [1], "item": [2]}))
