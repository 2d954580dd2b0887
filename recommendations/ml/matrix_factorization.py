"""Matrix factorization: weighted ALS or BPR through `implicit`, or our own mini-batch SGD rating regression."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import threadpoolctl

from recommendations.ml import defaults
from recommendations.ml.base import Recommender
from recommendations.ml.data import IdMap

if TYPE_CHECKING:
    from implicit.cpu.matrix_factorization_base import MatrixFactorizationBase

OBJECTIVES = ("als", "bpr", "sgd")
USER_FACTORS_FILE = "user_factors.npy"
ITEM_FACTORS_FILE = "item_factors.npy"


class MatrixFactorization(Recommender):
    """score(u, i) = user_factors[u] · item_factors[i] (+ global_mean for predict with 'sgd').

    objective 'als': implicit's weighted ALS, confidence = alpha × rating on observed pairs, 1 elsewhere.
    objective 'bpr': implicit's BPR (pairwise ranking; the rating only marks a positive).
    objective 'sgd': squared error on observed ratings, r ≈ μ + b_u + b_i + p_u·q_i, mini-batch SGD.
    Bias terms are folded into the factor columns (BPR: one item-bias column, SGD: two), so serving needs
    only the two float32 matrices: user_factors (n_users, d) and item_factors (n_items, d).
    """

    params = (
        "n_factors",
        "n_epochs",
        "regularization",
        "alpha",
        "objective",
        "learning_rate",
        "batch_size",
        "random_state",
        "num_threads",
    )
    global_mean: float = 0.0

    def __init__(
        self,
        n_factors: int | None = None,
        n_epochs: int | None = None,
        regularization: float | None = None,
        alpha: float = defaults.MF_ALS["alpha"],
        objective: str = "als",
        *,
        learning_rate: float | None = None,
        batch_size: int = 256,
        random_state: int = 42,
        num_threads: int = 0,
    ) -> None:
        if objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {OBJECTIVES}, got {objective!r}")
        chosen = defaults.MF_BY_OBJECTIVE[objective]  # None: the tuned default of this objective
        self.n_factors = int(chosen["n_factors"] if n_factors is None else n_factors)
        self.n_epochs = int(chosen["n_epochs"] if n_epochs is None else n_epochs)
        self.regularization = float(chosen["regularization"] if regularization is None else regularization)
        self.alpha = float(alpha)
        self.objective = objective
        self.learning_rate = float(chosen.get("learning_rate", 0.01) if learning_rate is None else learning_rate)
        self.batch_size = int(batch_size)  # sgd only
        self.random_state = int(random_state)
        self.num_threads = int(num_threads)  # implicit's threads; 0 = every core this process may run on

    def fit(
        self, interactions: pd.DataFrame, *, warm_start: MatrixFactorization | None = None, epochs: int | None = None
    ) -> MatrixFactorization:
        """Fit on a frame with user_id, content_id, rating (implicit feedback: watch_percentage × 5).

        `warm_start` (als only): a fitted model of the same shape whose factors start this fit for the users
        and items it knows (the others start as in a fresh fit), then `epochs` iterations (default n_epochs):
        a model fitted on part of the data brought up to all of it in a few iterations."""
        if warm_start is not None and (self.objective != "als" or warm_start.n_factors != self.n_factors):
            raise ValueError("a warm start needs objective 'als' and a model with as many factors")
        started = time.perf_counter()
        self._index(interactions)
        if self.objective == "sgd":
            self._fit_sgd()
        else:
            self._fit_implicit(warm_start, self.n_epochs if epochs is None else int(epochs))
        self.fit_seconds = time.perf_counter() - started
        return self

    def _fit_implicit(self, warm_start: MatrixFactorization | None, epochs: int) -> None:
        # implicit parallelises itself; a threaded OpenBLAS under it runs up to 10x slower (implicit's warning).
        make_model = self._implicit_model()  # imports implicit, and the BLAS it loads, before limiting threads
        with threadpoolctl.threadpool_limits(1, "blas"):
            model = make_model(iterations=epochs, num_threads=self.num_threads or len(os.sched_getaffinity(0)))
            if warm_start is not None:
                rng = np.random.default_rng(self.random_state)
                model.user_factors = _warm_factors(warm_start.user_factors, warm_start.user_map, self.user_map, rng)
                model.item_factors = _warm_factors(warm_start.item_factors, warm_start.item_map, self.item_map, rng)
            model.fit(self.user_items, show_progress=False)
        self.user_factors = np.ascontiguousarray(model.user_factors, dtype=np.float32)
        self.item_factors = np.ascontiguousarray(model.item_factors, dtype=np.float32)

    def _implicit_model(self) -> Callable[..., MatrixFactorizationBase]:
        # Imported here so serving processes never load implicit's extensions. The CPU classes directly:
        # implicit's factories would return GPU (cupy) factors on a CUDA machine.
        if self.objective == "als":
            from implicit.cpu.als import AlternatingLeastSquares

            return partial(
                AlternatingLeastSquares,
                factors=self.n_factors,
                regularization=self.regularization,
                alpha=self.alpha,
                random_state=self.random_state,
            )
        from implicit.cpu.bpr import BayesianPersonalizedRanking

        return partial(
            BayesianPersonalizedRanking,
            factors=self.n_factors,
            learning_rate=self.learning_rate,
            regularization=self.regularization,
            random_state=self.random_state,
        )

    def _fit_sgd(self) -> None:
        coo = self.user_items.tocoo()  # one rating per (user, item), duplicates resolved by interaction_matrix
        users, items = coo.row.astype(np.int64), coo.col.astype(np.int64)
        ratings = coo.data.astype(np.float32)
        rng = np.random.default_rng(self.random_state)
        n_users, n_items, d = len(self.user_map), len(self.item_map), self.n_factors
        user_vectors = rng.normal(0, 0.1, (n_users, d)).astype(np.float32)
        item_vectors = rng.normal(0, 0.1, (n_items, d)).astype(np.float32)
        user_bias = np.zeros(n_users, np.float32)
        item_bias = np.zeros(n_items, np.float32)
        mean = float(ratings.mean())
        lr, reg = np.float32(self.learning_rate), np.float32(self.regularization)
        for _ in range(self.n_epochs):
            order = rng.permutation(len(ratings))
            for start in range(0, len(order), self.batch_size):
                batch = order[start : start + self.batch_size]
                u, i = users[batch], items[batch]
                p, q = user_vectors[u], item_vectors[i]
                error = ratings[batch] - (mean + user_bias[u] + item_bias[i] + np.einsum("bd,bd->b", p, q))
                # Summed per-example gradients (np.add.at handles a user or item repeated in the batch).
                np.add.at(user_bias, u, lr * (error - reg * user_bias[u]))
                np.add.at(item_bias, i, lr * (error - reg * item_bias[i]))
                np.add.at(user_vectors, u, lr * (error[:, None] * q - reg * p))
                np.add.at(item_vectors, i, lr * (error[:, None] * p - reg * q))
        self.global_mean = mean
        ones_u, ones_i = np.ones((n_users, 1), np.float32), np.ones((n_items, 1), np.float32)
        self.user_factors = np.hstack([user_vectors, user_bias[:, None], ones_u])
        self.item_factors = np.hstack([item_vectors, ones_i, item_bias[:, None]])

    def _scores(self, user_index: np.ndarray) -> np.ndarray:
        return self.user_factors[user_index] @ self.item_factors.T

    def predict(self, user_id: int | np.ndarray, content_id: int | np.ndarray) -> float | np.ndarray:
        """Score of (user, item) pairs on raw ids; broadcastable int arrays give a float32 array.

        With 'sgd' the score is the predicted rating; with 'als'/'bpr' a preference with no unit.
        """
        self._check_fitted()
        users = self.user_map.to_index(user_id)
        items = self.item_map.to_index(content_id)
        values = np.einsum("...d,...d->...", self.user_factors[users], self.item_factors[items]) + self.global_mean
        return float(values) if np.ndim(values) == 0 else values.astype(np.float32)

    def _arrays(self) -> dict[str, np.ndarray]:
        return {"global_mean": np.array(self.global_mean)}

    def _save_extra(self, directory: Path) -> list[str]:
        # Plain .npy files beside the npz, so serving can np.load(..., mmap_mode="r") them and share pages.
        np.save(directory / USER_FACTORS_FILE, self.user_factors, allow_pickle=False)
        np.save(directory / ITEM_FACTORS_FILE, self.item_factors, allow_pickle=False)
        return [USER_FACTORS_FILE, ITEM_FACTORS_FILE]

    def _restore(self, arrays: dict[str, np.ndarray], path: Path, mmap: bool) -> None:
        mode = "r" if mmap else None
        self.global_mean = float(arrays["global_mean"])
        self.user_factors = np.load(path / USER_FACTORS_FILE, mmap_mode=mode, allow_pickle=False)
        self.item_factors = np.load(path / ITEM_FACTORS_FILE, mmap_mode=mode, allow_pickle=False)


def _warm_factors(factors: np.ndarray, known: IdMap, wanted: IdMap, rng: np.random.Generator) -> np.ndarray:
    """Rows of `factors` (indexed by `known`) for the ids of `wanted`; ids it lacks start at implicit's own
    initialisation (uniform [0, 0.01))."""
    positions = known.to_index(wanted.ids, strict=False)
    out = rng.random((len(wanted), factors.shape[1]), dtype=np.float32) * np.float32(0.01)
    found = positions >= 0
    out[found] = factors[positions[found]]
    return out
