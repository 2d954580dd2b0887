"""LambdaMART: learns a planted signal, persists without pickles, refuses corrupt or mismatched artifacts."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ranking.ml.compiled import COMPILED_FILE
from ranking.ml.features import RANKER_FEATURE_NAMES
from ranking.ml.ranker import MODEL_FILE, LambdaMARTRanker, monotone_constraints
from recommendations.ml.base import META_FILE
from recommendations.ml.metrics import ndcg_at_k
from tests.forking import in_forked_child

QUERIES, PER_QUERY = 120, 40
SIGNAL = RANKER_FEATURE_NAMES.index("model_mf_z")
FAST = {"num_threads": 1, "learning_rate": 0.2, "num_leaves": 7, "min_data_in_leaf": 20, "deterministic": True}


def planted(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Random features; the label is graded by one column plus noise, so ordering by it is the answer."""
    rng = np.random.default_rng(seed)
    n = QUERIES * PER_QUERY
    features = rng.normal(size=(n, len(RANKER_FEATURE_NAMES))).astype(np.float32)
    features[rng.random(features.shape) < 0.05] = np.nan  # LightGBM must cope with missing values
    signal = np.nan_to_num(features[:, SIGNAL]) + rng.normal(scale=0.5, size=n)
    labels = np.digitize(signal, [1.0, 1.8]).astype(np.int32)  # 0, 1 or 2
    return features, labels, np.full(QUERIES, PER_QUERY)


def ndcg(scores: np.ndarray, labels: np.ndarray, k: int = 10) -> float:
    by_query = labels.reshape(QUERIES, PER_QUERY)
    order = np.argsort(-scores.reshape(QUERIES, PER_QUERY), axis=1, kind="stable")
    hits = np.take_along_axis(by_query, order, axis=1) > 0
    return ndcg_at_k(hits, (by_query > 0).sum(axis=1), k)


@pytest.fixture(scope="module")
def fitted() -> LambdaMARTRanker:
    train, held_out = planted(0), planted(1)
    return LambdaMARTRanker(FAST, num_boost_round=60, early_stopping_rounds=10).fit(*train, eval=held_out)


def test_the_ranker_learns_the_planted_feature(fitted):
    features, labels, _ = planted(2)
    learned = ndcg(fitted.predict(features), labels)
    random_order = ndcg(np.random.default_rng(3).random(len(labels)), labels)
    oracle = ndcg(np.nan_to_num(features[:, SIGNAL], nan=-9), labels)
    assert learned > random_order + 0.3
    assert learned > oracle - 0.1
    assert next(iter(fitted.feature_importance())) == "model_mf_z"


def test_early_stopping_keeps_the_best_iteration(fitted):
    assert 1 <= fitted.best_iteration <= 60
    assert len(fitted.eval_history) >= fitted.best_iteration


def test_save_and_load_give_identical_predictions(fitted, tmp_path):
    features, _, _ = planted(4)
    fitted.save(tmp_path / "ranker", metadata={"data_to": "2024-10-04"})
    loaded = LambdaMARTRanker.load(tmp_path / "ranker")
    np.testing.assert_array_equal(loaded.predict(features), fitted.predict(features))
    meta = json.loads((tmp_path / "ranker" / META_FILE).read_text())
    assert meta["feature_names"] == list(RANKER_FEATURE_NAMES)
    assert meta["metadata"] == {"data_to": "2024-10-04"} and set(meta["sha256"]) == {MODEL_FILE, COMPILED_FILE}
    assert loaded.feature_importance() == pytest.approx(fitted.feature_importance())


def test_a_corrupted_model_file_is_refused(fitted, tmp_path):
    directory = fitted.save(tmp_path / "ranker")
    text = (directory / MODEL_FILE).read_text()
    (directory / MODEL_FILE).write_text(text.replace("shrinkage=", "shrinkage=9", 1))
    with pytest.raises(ValueError, match="checksum mismatch"):
        LambdaMARTRanker.load(directory)


def test_a_model_trained_on_other_feature_names_is_refused(tmp_path):
    renamed = ("retired_feature", *RANKER_FEATURE_NAMES[1:])
    features, labels, groups = planted(5)
    ranker = LambdaMARTRanker(FAST, num_boost_round=5, feature_names=renamed).fit(features, labels, groups)
    directory = ranker.save(tmp_path / "old")
    for verify in (True, False):
        with pytest.raises(ValueError, match="trained on other features"):
            LambdaMARTRanker.load(directory, verify=verify)
    assert LambdaMARTRanker.load(directory, feature_names=renamed).best_iteration == 5


def test_a_model_file_that_disagrees_with_its_meta_is_refused(fitted, tmp_path):
    directory = fitted.save(tmp_path / "ranker")
    meta = json.loads((directory / META_FILE).read_text())
    meta["feature_names"] = ["x", *meta["feature_names"][1:]]
    (directory / META_FILE).write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="names other features"):
        LambdaMARTRanker.load(directory, feature_names=meta["feature_names"])


def test_inputs_are_checked_at_the_boundary(fitted):
    features, labels, groups = planted(6)
    with pytest.raises(ValueError, match="features must be"):
        fitted.predict(features[:, :5])
    with pytest.raises(ValueError, match="group_sizes"):
        LambdaMARTRanker(FAST).fit(features, labels, groups[:-1])
    with pytest.raises(ValueError, match="labels must be integers"):
        LambdaMARTRanker(FAST).fit(features, labels + 5, groups)
    with pytest.raises(RuntimeError, match="not fitted"):
        LambdaMARTRanker().predict(features)


def test_model_scores_may_only_raise_and_source_ranks_only_lower_the_score():
    constraints = dict(zip(RANKER_FEATURE_NAMES, monotone_constraints(RANKER_FEATURE_NAMES), strict=True))
    assert constraints["model_ease_percentile"] == 1 and constraints["model_mean_z"] == 1
    assert constraints["source_collaborative_score"] == 1 and constraints["source_trending_score"] == 0
    assert constraints["source_trending_rank"] == -1 and constraints["source_best_rank"] == -1
    assert constraints["title_popularity"] == 0 and constraints["hour"] == 0


def test_a_monotone_feature_moves_the_score_one_way_only(fitted):
    features, _, _ = planted(7)
    lower, higher = features[:200].copy(), features[:200].copy()
    lower[:, SIGNAL], higher[:, SIGNAL] = -1.0, 2.0
    assert (fitted.predict(higher) >= fitted.predict(lower)).all()


def test_a_ranker_loaded_before_a_fork_predicts_in_the_forked_child(fitted, tmp_path):
    """gunicorn's master loads the models and then forks the workers (config/gunicorn.py); OpenMP runtimes
    can hang in a child whose parent ran a parallel region, so a worker must still predict, as serving does."""
    features, _, _ = planted(5)
    loaded = LambdaMARTRanker.load(fitted.save(tmp_path / "ranker"))
    expected = loaded.predict(features, num_threads=2)  # the parent runs a parallel region first
    answer = in_forked_child(lambda: loaded.predict(features, num_threads=1).astype(np.float64).tobytes().hex())
    np.testing.assert_allclose(np.frombuffer(bytes.fromhex(answer), np.float64), expected, rtol=1e-6)
