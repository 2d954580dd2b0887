"""MatrixFactorization: float32 factors that serving can memory-map, predict, and the objectives."""

from __future__ import annotations

import numpy as np
import pytest

from recommendations.ml.matrix_factorization import MatrixFactorization
from tests.recommendations.ml.handmade import ACTION_TITLES, ACTION_USERS, DRAMA_TITLES, taste_groups


@pytest.fixture(scope="module")
def als():
    return MatrixFactorization(2, 15, regularization=1.0, num_threads=1).fit(taste_groups())


def test_factors_are_float32_and_scores_are_their_product(als):
    assert als.user_factors.dtype == als.item_factors.dtype == np.float32
    assert als.user_factors.shape == (20, 2) and als.item_factors.shape == (20, 2)
    user, title = int(ACTION_USERS[0]), int(ACTION_TITLES[0])
    expected = als.user_factors[als.user_map.to_index(user)] @ als.item_factors[als.item_map.to_index(title)]
    assert als.predict(user, title) == pytest.approx(float(expected), rel=1e-5)


def test_predict_is_vectorised_over_raw_ids(als):
    users = np.array([ACTION_USERS[0], ACTION_USERS[0]])
    scores = als.predict(users, np.array([ACTION_TITLES[0], DRAMA_TITLES[0]]))
    assert scores.shape == (2,) and scores[0] > scores[1]


def test_saved_factors_load_memory_mapped(als, tmp_path):
    path = als.save(tmp_path / "mf")
    raw = np.load(path / "item_factors.npy", mmap_mode="r")
    np.testing.assert_array_equal(raw, als.item_factors)
    loaded = MatrixFactorization.load(path, mmap=True)
    assert isinstance(loaded.user_factors, np.memmap) and not loaded.user_factors.flags.writeable
    assert loaded.recommend(int(ACTION_USERS[3]), n=2) == als.recommend(int(ACTION_USERS[3]), n=2)


def test_sgd_learns_the_ratings_and_folds_biases_into_the_factors():
    model = MatrixFactorization(4, 200, regularization=0.01, objective="sgd", learning_rate=0.05, batch_size=32)
    data = taste_groups(dislikes=True)
    model.fit(data)
    assert model.user_factors.shape[1] == model.item_factors.shape[1] == 4 + 2
    predicted = model.predict(data["user_id"].to_numpy(), data["content_id"].to_numpy())
    assert np.sqrt(np.mean((predicted - data["rating"].to_numpy()) ** 2)) < 0.3


def test_bpr_factors_carry_implicits_item_bias_column():
    model = MatrixFactorization(4, 20, objective="bpr", num_threads=1).fit(taste_groups())
    assert model.item_factors.shape == (20, 5)
    np.testing.assert_array_equal(model.user_factors[:, -1], 1.0)


def test_unknown_objective_is_refused():
    with pytest.raises(ValueError, match="objective"):
        MatrixFactorization(objective="svd")


def test_fits_are_deterministic_for_a_seed():
    first = MatrixFactorization(4, 50, objective="sgd", random_state=3).fit(taste_groups(dislikes=True))
    second = MatrixFactorization(4, 50, objective="sgd", random_state=3).fit(taste_groups(dislikes=True))
    np.testing.assert_array_equal(first.item_factors, second.item_factors)


def test_a_file_name_saves_one_file_without_pickles_that_loads_back(als, tmp_path):
    import zipfile

    path = als.save(tmp_path / "models" / "matrix_factorization.pkl")  # the design's call (issue #18)
    assert path.is_file() and zipfile.is_zipfile(path)
    with zipfile.ZipFile(path) as archive:
        assert "meta.json" in archive.namelist() and all("/" not in name for name in archive.namelist())
    loaded = MatrixFactorization.load(path)
    assert loaded.recommend(int(ACTION_USERS[3]), n=2) == als.recommend(int(ACTION_USERS[3]), n=2)
    assert not list((tmp_path / "models").glob("reco-model-*"))  # no scratch left beside it


def test_a_tampered_single_file_is_refused(als, tmp_path):
    import zipfile

    path = als.save(tmp_path / "mf.pkl")
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    members["item_factors.npy"] = members["item_factors.npy"][:-4] + b"\0\0\0\1"
    with zipfile.ZipFile(path, "w") as archive:
        for name, payload in members.items():
            archive.writestr(name, payload)
    with pytest.raises(ValueError, match="checksum"):
        MatrixFactorization.load(path)
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr("../escape.npy", b"")
    with pytest.raises(ValueError, match="unexpected member"):
        MatrixFactorization.load(path)
