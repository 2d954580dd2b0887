"""LambdaMART over the candidate features: LightGBM's lambdarank objective, one query per profile request.

Persisted as LightGBM's text model beside a meta.json of feature names, parameters and SHA-256 checksums,
and the same forest compiled to native code (ranking/ml/compiled.py), which serves predictions when it loads
and matches LightGBM; LightGBM's Booster serves otherwise (called directly: the scikit-learn wrapper costs
~2 ms a call on the request path, see STACK.md).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Self, cast

import lightgbm as lgb
import numpy as np

from features.ml.definitions import CONTENT_FEATURES, INTERACTION_FEATURES, USER_FEATURES
from ranking.ml.compiled import (
    COMPILED_FILE,
    CompiledForest,
    CompiledForestError,
    check_against,
    compile_forest,
    probe_rows,
)
from ranking.ml.features import MODEL_SLOTS, RANKER_FEATURE_NAMES, SOURCE_SLOTS
from recommendations.ml.base import META_FILE, file_sha256
from recommendations.ml.constants import ARTIFACT_FORMAT

MODEL_FILE = "model.txt"
log = logging.getLogger(__name__)
PERSONALISED_SOURCES = ("collaborative", "ease", "similar_to_watched")  # a higher score means a better fit
FEATURE_SCHEMAS = {
    "user": USER_FEATURES.schema_version,
    "content": CONTENT_FEATURES.schema_version,
    "interaction": INTERACTION_FEATURES.schema_version,
}
DEFAULT_PARAMS: dict[str, Any] = {
    "objective": "lambdarank",
    "metric": "ndcg",
    "eval_at": [10],
    # Small, strongly regularised trees: on ml-100k (a few thousand queries, ~20 positives each) larger ones
    # memorise users and titles and lose to the best single model on held-out users.
    "learning_rate": 0.05,
    "num_leaves": 15,
    "min_data_in_leaf": 200,
    "max_bin": 63,
    "feature_fraction": 0.7,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambda_l2": 10.0,
    "lambdarank_truncation_level": 30,  # pairs below rank 30 barely move NDCG@10
    "label_gain": [0.0, 1.0, 3.0],  # labels 0 (not watched), 1 (watched), 2 (watched and liked)
    "num_threads": 2,
    "seed": 42,
    "deterministic": True,
    "force_row_wise": True,
    "verbosity": -1,
}


def monotone_constraints(feature_names: Sequence[str]) -> list[int]:
    """LightGBM's constraint per feature: +1 where a higher value may never lower the score (models' scores,
    z-scores and percentiles; the personalised sources' scores), -1 for ranks inside a source, 0 elsewhere.

    They encode what every model already claims, keep the trees from learning noise against it on small
    label sets, and make titles deep in the candidate list (rarely seen in training) score low.
    """
    increasing = {f"model_{slot}_{part}" for slot in MODEL_SLOTS for part in ("score", "z", "percentile")}
    increasing |= {"model_mean_z"} | {f"source_{slot}_score" for slot in PERSONALISED_SOURCES}
    decreasing = {f"source_{slot}_rank" for slot in SOURCE_SLOTS} | {"source_best_rank"}
    return [1 if name in increasing else -1 if name in decreasing else 0 for name in feature_names]


def _groups(group_sizes: Sequence[int] | np.ndarray, n_rows: int) -> np.ndarray:
    sizes = np.asarray(group_sizes, dtype=np.int64)
    if sizes.ndim != 1 or (sizes <= 0).any() or sizes.sum() != n_rows:
        raise ValueError(f"group_sizes must be positive and sum to the {n_rows} rows, got a sum of {sizes.sum()}")
    return sizes


class LambdaMARTRanker:
    """Scores candidates so that, within a query, higher means show earlier.

    params: LightGBM parameters merged over DEFAULT_PARAMS; num_boost_round: the most trees;
    early_stopping_rounds: stop when the eval NDCG has not improved for this many trees (needs `eval`);
    monotone: add `monotone_constraints(feature_names)` unless params set their own.
    """

    def __init__(
        self,
        params: dict[str, Any] | None = None,
        *,
        num_boost_round: int = 1000,
        early_stopping_rounds: int = 50,
        feature_names: Sequence[str] = RANKER_FEATURE_NAMES,
        monotone: bool = True,
    ) -> None:
        self.params = {**DEFAULT_PARAMS, **(params or {})}
        if monotone and "monotone_constraints" not in self.params:
            self.params["monotone_constraints"] = monotone_constraints(feature_names)
            self.params.setdefault("monotone_constraints_method", "intermediate")
        self.num_boost_round = int(num_boost_round)
        self.early_stopping_rounds = int(early_stopping_rounds)
        self.feature_names = tuple(feature_names)
        self.booster: lgb.Booster | None = None
        self.compiled: CompiledForest | None = None  # set by load when the compiled forest serves
        self.compiled_error = ""  # why it does not, when the artifact has one
        self.best_iteration = 0
        self.eval_history: list[float] = []
        self.fit_seconds = 0.0

    def _check_features(self, features: np.ndarray) -> np.ndarray:
        matrix = np.asarray(features, dtype=np.float32)
        if matrix.ndim != 2 or matrix.shape[1] != len(self.feature_names):
            raise ValueError(f"features must be (n, {len(self.feature_names)}), got {matrix.shape}")
        return matrix

    def _dataset(
        self,
        features: np.ndarray,
        labels: np.ndarray,
        group_sizes: Sequence[int] | np.ndarray,
        reference: lgb.Dataset | None = None,
    ) -> lgb.Dataset:
        matrix = self._check_features(features)
        labels = np.asarray(labels)
        if labels.shape != (len(matrix),):
            raise ValueError(f"labels must be ({len(matrix)},), got {labels.shape}")
        if labels.min(initial=0) < 0 or labels.max(initial=0) >= len(self.params["label_gain"]):
            raise ValueError(f"labels must be integers in [0, {len(self.params['label_gain'])})")
        return lgb.Dataset(
            matrix,
            label=labels,
            group=_groups(group_sizes, len(matrix)),
            feature_name=list(self.feature_names),
            reference=reference,
            free_raw_data=True,
            params={"verbosity": -1},
        )

    def fit(
        self,
        features: np.ndarray,
        labels: np.ndarray,
        group_sizes: Sequence[int] | np.ndarray,
        *,
        eval: tuple[np.ndarray, np.ndarray, Sequence[int] | np.ndarray] | None = None,
    ) -> LambdaMARTRanker:
        """Train on queries stored consecutively.

        features: float32 (n, n_features); labels: int (n,) graded 0..len(label_gain)-1; group_sizes: int
        (n_queries,) rows per query, summing to n. eval: the same three for held-out queries; with it,
        training stops early on its NDCG@10 and keeps the best iteration.
        """
        started = time.perf_counter()
        train_set = self._dataset(features, labels, group_sizes)
        callbacks: list[Any] = []
        valid_sets = []
        history: dict[str, dict[str, list[float]]] = {}
        if eval is not None:
            valid_sets = [self._dataset(*eval, reference=train_set)]
            callbacks = [lgb.early_stopping(self.early_stopping_rounds, verbose=False), lgb.record_evaluation(history)]
        self.booster = lgb.train(
            self.params,
            train_set,
            num_boost_round=self.num_boost_round,
            valid_sets=valid_sets,
            valid_names=["eval"] if valid_sets else None,
            callbacks=callbacks,
        )
        self.best_iteration = self.booster.best_iteration or self.booster.current_iteration()
        if history:
            self.eval_history = [float(v) for v in next(iter(history["eval"].values()))]
        self.fit_seconds = time.perf_counter() - started
        return self

    def _check_fitted(self) -> lgb.Booster:
        if self.booster is None:
            raise RuntimeError("LambdaMARTRanker is not fitted")
        return self.booster

    def predict(self, features: np.ndarray, *, num_threads: int = 1) -> np.ndarray:
        """Scores, float64 (n,), of candidates float32 (n, n_features); only their order within a query means anything.

        num_threads: 1 by default: one request's 500 rows finish faster on one thread than they take to fan out
        over OpenMP, and web workers already use every core between them."""
        booster = self._check_fitted()
        matrix = self._check_features(features)
        if self.compiled is not None:
            return self.compiled.predict(matrix)
        # A matrix in, an array out (the stubs' union also covers sparse inputs and contributions).
        return cast(np.ndarray, booster.predict(matrix, num_iteration=self.best_iteration, num_threads=num_threads))

    @property
    def backend(self) -> str:
        """What predicts: 'lleaves' (the compiled forest) or 'lightgbm'."""
        return "lleaves" if self.compiled is not None else "lightgbm"

    def feature_importance(self, importance_type: str = "gain") -> dict[str, float]:
        """Total gain (or 'split' count) of each feature over the kept trees, largest first."""
        booster = self._check_fitted()
        values = booster.feature_importance(importance_type=importance_type, iteration=self.best_iteration)
        pairs = sorted(zip(self.feature_names, values.tolist(), strict=True), key=lambda pair: -pair[1])
        return {name: float(value) for name, value in pairs}

    def save(self, path: str | Path, *, metadata: dict[str, Any] | None = None, compiled: bool = True) -> Path:
        """Write directory `path`: model.txt (the kept trees), the compiled forest (unless `compiled` is False
        or it cannot be built here: meta.json says why) and meta.json with names, params and checksums."""
        booster = self._check_fitted()
        directory = Path(path)
        directory.mkdir(parents=True, exist_ok=True)
        booster.save_model(str(directory / MODEL_FILE), num_iteration=self.best_iteration)
        checksums = {MODEL_FILE: file_sha256(directory / MODEL_FILE)}
        built: dict[str, Any] = {}
        if compiled:
            try:
                built = compile_forest(directory / MODEL_FILE, directory / COMPILED_FILE)
                checksums[COMPILED_FILE] = file_sha256(directory / COMPILED_FILE)
            except CompiledForestError as error:
                log.warning("ranker saved without a compiled forest: %s", error)
                built = {"error": str(error)}
        meta = {
            "format": ARTIFACT_FORMAT,
            "class": type(self).__name__,
            "feature_names": list(self.feature_names),
            "feature_schemas": FEATURE_SCHEMAS,
            "params": self.params,
            "num_boost_round": self.num_boost_round,
            "early_stopping_rounds": self.early_stopping_rounds,
            "best_iteration": self.best_iteration,
            "fit_seconds": round(self.fit_seconds, 3),
            "metadata": metadata or {},
            "compiled": built,
            "sha256": checksums,
        }
        (directory / META_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True))
        return directory

    @classmethod
    def load(
        cls,
        path: str | Path,
        *,
        verify: bool = True,
        feature_names: Sequence[str] = RANKER_FEATURE_NAMES,
        compiled: bool = True,
    ) -> Self:
        """Load a ranker saved by `save`. ValueError if the format, class, model checksum or the feature names
        (against `feature_names`, by default the current RANKER_FEATURE_NAMES) do not match.

        compiled: serve with the artifact's compiled forest when it is intact, loads here and scores probe
        rows like LightGBM; otherwise LightGBM serves and `compiled_error` says why."""
        directory = Path(path)
        meta = json.loads((directory / META_FILE).read_text())
        if meta.get("format") != ARTIFACT_FORMAT:
            raise ValueError(f"unsupported artifact format {meta.get('format')!r} in {directory}")
        if meta.get("class") != cls.__name__:
            raise ValueError(f"{directory} holds a {meta.get('class')}, not a {cls.__name__}")
        expected = tuple(feature_names)
        if tuple(meta["feature_names"]) != expected:
            missing = sorted(set(expected) - set(meta["feature_names"]))
            extra = sorted(set(meta["feature_names"]) - set(expected))
            raise ValueError(
                f"{directory} was trained on other features (missing {missing[:5]}, extra {extra[:5]}, or another "
                "order): retrain it"
            )
        compiled_error = ""
        if verify:
            for name, digest in meta["sha256"].items():
                if name == COMPILED_FILE:
                    if not (directory / name).is_file() or file_sha256(directory / name) != digest:
                        compiled_error = f"{directory / name} is missing or fails its checksum"
                elif file_sha256(directory / name) != digest:
                    raise ValueError(f"checksum mismatch for {directory / name}: the artifact is corrupt")
        booster = lgb.Booster(model_file=str(directory / MODEL_FILE))
        if tuple(booster.feature_name()) != expected:
            raise ValueError(f"{directory / MODEL_FILE} names other features than its meta.json")
        ranker = cls(
            meta["params"],
            num_boost_round=meta["num_boost_round"],
            early_stopping_rounds=meta["early_stopping_rounds"],
            feature_names=expected,
            monotone=False,
        )
        ranker.booster = booster
        ranker.best_iteration = booster.current_iteration()  # the file holds the kept trees only
        ranker.fit_seconds = meta.get("fit_seconds", 0.0)
        if compiled:
            ranker._load_compiled(directory, meta.get("compiled") or {}, compiled_error)
        return ranker

    def _load_compiled(self, directory: Path, info: dict[str, Any], error: str) -> None:
        if not info.get("file") and not error:
            self.compiled_error = info.get("error", "the artifact has no compiled forest")
            return
        try:
            if error:
                raise CompiledForestError(error)
            forest = CompiledForest.load(directory / MODEL_FILE, directory / info["file"], info)
            probe = probe_rows(len(self.feature_names))
            check_against(forest, cast(np.ndarray, self._check_fitted().predict(probe, num_threads=1)), probe)
        except (CompiledForestError, OSError, ValueError, RuntimeError) as failure:
            self.compiled_error = str(failure)
            log.warning("ranker %s: serving with LightGBM, its compiled forest does not serve: %s", directory, failure)
            return
        self.compiled = forest
