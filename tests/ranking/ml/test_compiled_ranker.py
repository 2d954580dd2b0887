"""The compiled forest: an artifact file with its checksum, LightGBM's scores within 1e-6, LightGBM as fallback."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ranking.ml import compiled
from ranking.ml.compiled import COMPILED_FILE, TOLERANCE, CompiledForestError
from ranking.ml.ranker import MODEL_FILE, LambdaMARTRanker
from recommendations.ml.base import META_FILE, file_sha256
from tests.forking import in_forked_child
from tests.ranking.ml.test_ranker import FAST, planted


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    ranker = LambdaMARTRanker(FAST, num_boost_round=40, early_stopping_rounds=40).fit(*planted(0))
    return ranker, ranker.save(tmp_path_factory.mktemp("ranker") / "ranker")


def lightgbm_scores(directory, features: np.ndarray) -> np.ndarray:
    return LambdaMARTRanker.load(directory, compiled=False).predict(features)


def test_the_compiled_forest_serves_with_lightgbms_scores(saved):
    ranker, directory = saved
    meta = json.loads((directory / META_FILE).read_text())
    assert meta["sha256"][COMPILED_FILE] == file_sha256(directory / COMPILED_FILE)
    assert meta["compiled"]["backend"] == "lleaves" and meta["compiled"]["target_cpu"] == "x86-64"
    loaded = LambdaMARTRanker.load(directory)
    assert loaded.backend == "lleaves" and loaded.compiled_error == ""
    for seed in (2, 3):  # held-out rows, 5 % of values missing
        features, _, _ = planted(seed)
        np.testing.assert_allclose(loaded.predict(features), ranker.predict(features), rtol=0, atol=TOLERANCE)
    assert loaded.predict(features[:1]).shape == (1,)


def copy_of(directory, tmp_path):
    target = tmp_path / "copy"
    target.mkdir()
    for name in (META_FILE, MODEL_FILE, COMPILED_FILE):
        (target / name).write_bytes((directory / name).read_bytes())
    return target


def test_a_missing_compiled_forest_leaves_lightgbm_serving(saved, tmp_path):
    _, directory = saved
    copy = copy_of(directory, tmp_path)
    (copy / COMPILED_FILE).unlink()
    features, _, _ = planted(4)
    for verify in (True, False):
        loaded = LambdaMARTRanker.load(copy, verify=verify)
        assert loaded.backend == "lightgbm" and "missing" in loaded.compiled_error
        np.testing.assert_array_equal(loaded.predict(features), lightgbm_scores(directory, features))


def test_a_corrupt_compiled_forest_is_never_loaded(saved, tmp_path):
    _, directory = saved
    copy = copy_of(directory, tmp_path)
    data = bytearray((copy / COMPILED_FILE).read_bytes())
    data[len(data) // 2 : len(data) // 2 + 64] = bytes(64)
    (copy / COMPILED_FILE).write_bytes(bytes(data))
    loaded = LambdaMARTRanker.load(copy)
    assert loaded.backend == "lightgbm" and "checksum" in loaded.compiled_error


def test_another_models_compiled_forest_fails_the_probe(saved, tmp_path):
    """A compiled file that passes its checksum but is not this model's forest scores differently: refused."""
    _, directory = saved
    other = LambdaMARTRanker(FAST, num_boost_round=10).fit(*planted(9)).save(tmp_path / "other")
    copy = copy_of(directory, tmp_path)
    (copy / COMPILED_FILE).write_bytes((other / COMPILED_FILE).read_bytes())
    meta = json.loads((copy / META_FILE).read_text())
    meta["sha256"][COMPILED_FILE] = file_sha256(copy / COMPILED_FILE)
    (copy / META_FILE).write_text(json.dumps(meta))
    loaded = LambdaMARTRanker.load(copy)
    assert loaded.backend == "lightgbm" and "differs from LightGBM" in loaded.compiled_error


def test_without_lleaves_the_ranker_is_saved_and_served_by_lightgbm(saved, tmp_path, monkeypatch):
    ranker, _ = saved

    def unavailable():
        raise CompiledForestError("lleaves is not installed: test")

    monkeypatch.setattr(compiled, "_lleaves", unavailable)
    directory = ranker.save(tmp_path / "plain")
    meta = json.loads((directory / META_FILE).read_text())
    assert set(meta["sha256"]) == {MODEL_FILE} and "not installed" in meta["compiled"]["error"]
    loaded = LambdaMARTRanker.load(directory)
    assert loaded.backend == "lightgbm" and "not installed" in loaded.compiled_error
    features, _, _ = planted(5)
    np.testing.assert_array_equal(loaded.predict(features), ranker.predict(features))


def test_a_forest_another_architecture_built_is_not_loaded(saved, tmp_path):
    _, directory = saved
    copy = copy_of(directory, tmp_path)
    meta = json.loads((copy / META_FILE).read_text())
    meta["compiled"]["target_triple"] = "aarch64-unknown-linux-gnu"
    (copy / META_FILE).write_text(json.dumps(meta))
    loaded = LambdaMARTRanker.load(copy)
    assert loaded.backend == "lightgbm" and "aarch64" in loaded.compiled_error


def test_a_compiled_forest_loaded_before_a_fork_predicts_in_the_child(saved):
    """gunicorn's master loads the models and forks the workers: the JIT-loaded code must run in a worker."""
    _, directory = saved
    loaded = LambdaMARTRanker.load(directory)
    features, _, _ = planted(6)
    expected = loaded.predict(features)
    answer = in_forked_child(lambda: loaded.predict(features).astype(np.float64).tobytes().hex())
    np.testing.assert_array_equal(np.frombuffer(bytes.fromhex(answer), np.float64), expected)
