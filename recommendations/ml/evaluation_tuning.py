"""Choosing hyper-parameters on a validation split carved out of train, never on test (pure: no Django).

Each family's grid stops at its time box; the best setting by validation NDCG@10 wins. NCF's epoch count is
picked from validation checkpoints of one run per architecture. implicit's own classes are fitted beside ours
with the same hyper-parameters (the "implicit ... direct" rows and the fit-time comparison).
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pandas as pd
import threadpoolctl

from recommendations.ml.constants import ITEM_COL, PAD_ID, USER_COL
from recommendations.ml.data import IdMap, interaction_matrix
from recommendations.ml.evaluation_scoring import CANDIDATES, Evaluation, K
from recommendations.ml.matrix_factorization import MatrixFactorization
from recommendations.ml.ncf import NCFRecommender

GRIDS: dict[str, dict[str, list[Any]]] = {
    # A first run picked the corner (regularization 50, alpha 2) of a 16-128 × 1-50 × 0.5-2 grid: this one
    # surrounds it.
    "MF-ALS": {
        "n_factors": [32, 64, 128],
        "regularization": [5.0, 20.0, 50.0, 100.0],
        "alpha": [1.0, 2.0, 4.0],
        "n_epochs": [20],
    },
    # implicit's BPR overfits ml-100k past ~100 epochs at these rates: the grid spans the useful range.
    "MF-BPR": {
        "n_factors": [32, 64, 128],
        "learning_rate": [0.002, 0.005, 0.01],
        "regularization": [0.01],
        "n_epochs": [50, 100],
    },
    "MF-SGD": {
        "n_factors": [64],
        "learning_rate": [0.005, 0.01, 0.02],
        "regularization": [0.005, 0.02, 0.1],
        "n_epochs": [20],
    },
    "NCF": {"embedding_dim": [8, 16, 32], "hidden_layers": [[64, 32, 16]]},  # epochs: checkpoints of one run
    "content similarity": {
        "n_neighbors": [50, 100, 200],
        "fields": [{"genres": 1.0}, {"genres": 1.0, "keywords": 1.0}],
    },
    "EASE": {"regularization": [100.0, 250.0, 500.0, 1000.0], "binary": [True]},
}
NCF_MAX_EPOCHS = 20
NCF_CHECK_EVERY = 2
NCF_TUNE_FACTOR = 2.5  # NCF's time box is this many times the others'

Log = Callable[[str], None]


def grid(space: dict[str, list[Any]]) -> Iterator[dict[str, Any]]:
    for values in itertools.product(*space.values()):
        yield dict(zip(space, values, strict=True))


def tune(
    family: str,
    make: Callable[[dict[str, Any]], Any],
    fit: Callable[[Any], Any],
    evaluation: Evaluation,
    seconds: float,
    log: Log,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Try the family's grid on the validation split until the time box is spent; best by NDCG@10."""
    started, trials = time.perf_counter(), list[dict[str, Any]]()
    for params in grid(GRIDS[family]):
        if trials and time.perf_counter() - started > seconds:
            break
        model = make(params)
        fit(model)
        ids, _ = model.recommend_many(evaluation.users, K)
        trials.append({"params": params, **evaluation.accuracy(ids), "fit_seconds": round(model.fit_seconds, 2)})
        log(f"  {family:20s} {json.dumps(params):70s} val NDCG@10 {trials[-1]['ndcg']:.4f}")
    best = max(trials, key=lambda trial: float(trial["ndcg"]))
    return best["params"], trials


def tune_ncf(evaluation: Evaluation, seconds: float, log: Log) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """One run per architecture; the epoch count is picked from validation checkpoints of that run."""
    started, trials = time.perf_counter(), list[dict[str, Any]]()
    for params in grid(GRIDS["NCF"]):
        if trials and time.perf_counter() - started > seconds:
            break
        model = NCFRecommender(**params, n_epochs=NCF_MAX_EPOCHS)

        def checkpoint(epoch: int, loss: float, model: NCFRecommender = model, params: dict[str, Any] = params) -> None:
            if epoch % NCF_CHECK_EVERY == 0:
                ids, _ = model.recommend_many(evaluation.users, K)
                trials.append({"params": {**params, "n_epochs": epoch}, **evaluation.accuracy(ids), "loss": loss})
                log(f"  {'NCF':20s} {json.dumps(trials[-1]['params']):70s} val NDCG@10 {trials[-1]['ndcg']:.4f}")

        model.fit(evaluation.train, on_epoch_end=checkpoint)
    best = max(trials, key=lambda trial: float(trial["ndcg"]))
    return best["params"], trials


def implicit_fit(objective: str, params: dict[str, Any], matrix: Any, threads: int) -> tuple[Any, float]:
    """implicit's own CPU class fitted on `matrix` with the same hyper-parameters; returns (model, fit seconds)."""
    from implicit.cpu.als import AlternatingLeastSquares
    from implicit.cpu.bpr import BayesianPersonalizedRanking

    with threadpoolctl.threadpool_limits(1, "blas"):
        if objective == "als":
            model = AlternatingLeastSquares(
                factors=params["n_factors"],
                regularization=params["regularization"],
                alpha=params["alpha"],
                iterations=params["n_epochs"],
                random_state=42,
                num_threads=threads,
            )
        else:
            model = BayesianPersonalizedRanking(
                factors=params["n_factors"],
                learning_rate=params["learning_rate"],
                regularization=params["regularization"],
                iterations=params["n_epochs"],
                random_state=42,
                num_threads=threads,
            )
        started = time.perf_counter()
        model.fit(matrix, show_progress=False)
        return model, time.perf_counter() - started


def implicit_direct(
    objective: str, params: dict[str, Any], train: pd.DataFrame, users: np.ndarray, threads: int
) -> tuple[np.ndarray, float]:
    """Top lists (PAD_ID padded to CANDIDATES) from implicit's own fit and recommend, with its own seen filter."""
    user_map, item_map = IdMap(train[USER_COL]), IdMap(train[ITEM_COL])
    matrix = interaction_matrix(train, user_map, item_map)
    model, seconds = implicit_fit(objective, params, matrix, threads)
    rows = user_map.to_index(users)
    n = min(CANDIDATES, len(item_map))
    index, _ = model.recommend(rows, matrix[rows], N=n, filter_already_liked_items=True)
    ids = np.full((len(users), CANDIDATES), PAD_ID, np.int64)
    ids[:, :n] = np.where(index >= 0, item_map.ids[np.maximum(index, 0)], PAD_ID)  # implicit pads with -1
    return ids, seconds


def training_times(
    train: pd.DataFrame, chosen: dict[str, dict[str, Any]], threads: int, repeats: int = 3
) -> dict[str, Any]:
    """Median fit seconds of our MatrixFactorization against implicit direct, interleaved to share the noise.

    Ours includes validating the frame and building the id maps and matrix; implicit's only its fit.
    """
    matrix = interaction_matrix(train, IdMap(train[USER_COL]), IdMap(train[ITEM_COL]))
    times: dict[str, list[float]] = {}
    for _ in range(repeats):
        for objective in ("als", "bpr", "sgd"):
            params = chosen[f"MF-{objective.upper()}"]
            model = MatrixFactorization(**params, objective=objective, num_threads=threads).fit(train)
            times.setdefault(f"MF-{objective.upper()} (ours)", []).append(model.fit_seconds)
            if objective != "sgd":
                times.setdefault(f"implicit {objective.upper()} direct", []).append(
                    implicit_fit(objective, params, matrix, threads)[1]
                )
    medians = {name: float(np.median(values)) for name, values in times.items()}
    return {
        "median_fit_seconds": medians,
        "ratio_ours_to_implicit": {
            objective: medians[f"MF-{objective} (ours)"] / medians[f"implicit {objective} direct"]
            for objective in ("ALS", "BPR")
        },
        "sgd_to_implicit_als": medians["MF-SGD (ours)"] / medians["implicit ALS direct"],
        "repeats": repeats,
    }
