"""Training from the database: fit, validate on a held-out split, register, and activate if not worse."""
from __future__ import annotations

import datetime as dt
import logging
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recommendations import selectors
from recommendations.ml.base import Recommender
from recommendations.ml.constants import INTERACTION_COLUMNS, USER_COL
from recommendations.ml.content import ContentSimilarity
from recommendations.ml.ease import EASE
from recommendations.ml.matrix_factorization import MatrixFactorization
from recommendations.ml.metrics import candidate_recall, ranking_metrics, relevance
from recommendations.ml.ncf import NCFRecommender
from recommendations.ml.popularity import PopularityRecommender
from recommendations.ml.split import validation_split
from recommendations.models import ModelKind, ModelVersion
from recommendations.services import model_version_activate, model_version_register

log = logging.getLogger(__name__)

# Hyper-parameters chosen on a validation split of MovieLens 100k (bench/ml100k_eval.py).
DEFAULT_PARAMS: dict[str, dict[str, Any]] = {
    ModelKind.MATRIX_FACTORIZATION: {"n_factors": 64, "n_epochs": 20, "regularization": 50.0, "alpha": 2.0},
    ModelKind.NCF: {"embedding_dim": 32, "hidden_layers": [64, 32, 16], "n_epochs": 12},
    ModelKind.CONTENT: {"n_neighbors": 100},  # 100K titles x 100 neighbours: 10M stored similarities
    ModelKind.POPULARITY: {},
    ModelKind.EASE: {},
    ModelKind.RANKER: {},  # LightGBM parameters over ranking.ml.ranker.DEFAULT_PARAMS
}
EASE_MAX_ITEMS = 20_000  # EASE inverts an items × items matrix: 20K items is 1.6 GB of float32
VALIDATION_USERS = 5_000  # metrics on a sample of users keep the gate cheap at a million profiles
GATE_METRIC = "ndcg_at_10"
CANDIDATE_DEPTH = 500  # validation also reports recall@500: how well the model serves as a candidate source
GATE_TOLERANCE = 0.002  # noise between two trainings on the same data; a real regression is larger


@dataclass(frozen=True)
class TrainingResult:
    version: ModelVersion
    activated: bool
    reason: str
    interactions: int


def model_train(
    *,
    kind: str,
    until: dt.datetime | None = None,
    params: dict[str, Any] | None = None,
    activation: str = "if-not-worse",
) -> TrainingResult:
    """Train `kind` on viewing history before `until`, register it, and activate it per `activation`
    ("if-not-worse", "always" or "never"). Validation: fit on 75 % of the interactions (stratified by
    title), measure on the rest, then refit on everything for the registered artifact."""
    if activation not in {"if-not-worse", "always", "never"}:
        raise ValueError(f"activation must be if-not-worse, always or never, not {activation!r}")
    if kind == ModelKind.RANKER:  # labelled by what profiles watched after a cutoff: its own procedure
        from recommendations.ranker_training import DEFAULT_LABEL_DAYS, DEFAULT_PROFILES, ranker_train

        cutoff = until - dt.timedelta(days=DEFAULT_LABEL_DAYS) if until else None
        params = dict(params or {})
        profiles = int(params.pop("profiles", DEFAULT_PROFILES))
        ranked = ranker_train(cutoff=cutoff, params=params or None, activation=activation, profiles=profiles)
        return TrainingResult(ranked.version, ranked.activated, ranked.reason, ranked.queries)
    params = {**DEFAULT_PARAMS[kind], **(params or {})}
    started = time.perf_counter()
    history = selectors.training_interactions(until=until)
    read_seconds = time.perf_counter() - started
    if history.empty:
        raise ValueError("no viewing history to train on")
    catalog = selectors.content_catalog() if kind == ModelKind.CONTENT else None
    interactions = history[list(INTERACTION_COLUMNS)]
    fit_part, held_out = validation_split(interactions)
    metrics = validation_metrics(fit_model(kind, fit_part, catalog, params), held_out)
    model = fit_model(kind, interactions, catalog, params)
    metrics["read_seconds"] = round(read_seconds, 2)
    metrics["fit_seconds"] = round(model.fit_seconds, 2)
    metrics["train_seconds"] = round(time.perf_counter() - started, 2)
    window = {"data_from": utc(history["started_at"].min()), "data_to": utc(until or history["started_at"].max())}
    with tempfile.TemporaryDirectory(prefix=f"reco-{kind}-") as scratch:
        saved = model.save(Path(scratch) / "model", metadata={k: v.isoformat() for k, v in window.items()})
        version = model_version_register(kind=kind, saved_model_dir=saved, metrics=metrics, params=params, **window)
    activated, reason = activation_gate(version, activation)
    if activated:
        version = model_version_activate(version_id=version.pk)
    log.info("trained %s %s: %s; %s", kind, version.version, metrics, reason)
    return TrainingResult(version, activated, reason, len(interactions))


def validation_metrics(model: Recommender, held_out: pd.DataFrame, *, k: int = 10, seed: int = 7) -> dict[str, float]:
    """MAP, NDCG, precision and recall @k on held-out interactions, over a sample of users the model knows."""
    users = np.unique(held_out[USER_COL].to_numpy())
    users = users[model.user_map.to_index(users, strict=False) >= 0]
    if len(users) > VALIDATION_USERS:
        users = np.sort(np.random.default_rng(seed).choice(users, VALIDATION_USERS, replace=False))
    if not len(users):
        return {f"{name}_at_{k}": 0.0 for name in ("map", "ndcg", "precision", "recall")} | {"users": 0}
    recommended, _ = model.recommend_many(users, CANDIDATE_DEPTH)  # one top-k search serves both depths
    hits, n_relevant = relevance(users, recommended, held_out)
    if not (n_relevant > 0).any():
        return {f"{name}_at_{k}": 0.0 for name in ("map", "ndcg", "precision", "recall")} | {"users": 0}
    scores = ranking_metrics(hits[:, :k], n_relevant, k)
    return {f"{name}_at_{k}": round(value, 5) for name, value in scores.items()} | {
        "users": int(len(users)),
        f"recall_at_{CANDIDATE_DEPTH}": round(candidate_recall(hits, n_relevant), 5),  # as a candidate source
    }


def fit_model(kind: str, interactions: pd.DataFrame, catalog: pd.DataFrame | None, params: dict[str, Any]) -> Recommender:
    if kind == ModelKind.MATRIX_FACTORIZATION:
        return MatrixFactorization(**params).fit(interactions)
    if kind == ModelKind.NCF:
        return NCFRecommender(**params).fit(interactions)
    if kind == ModelKind.CONTENT:
        return ContentSimilarity(**params).fit(interactions, catalog)
    if kind == ModelKind.POPULARITY:
        return PopularityRecommender(**params).fit(interactions)
    if kind == ModelKind.EASE:
        n_items = interactions["content_id"].nunique()
        if n_items > EASE_MAX_ITEMS:
            raise ValueError(f"EASE needs an items × items inverse: {n_items:,} items is over {EASE_MAX_ITEMS:,}")
        return EASE(**params).fit(interactions)
    raise ValueError(f"unknown model kind {kind!r}")


def activation_gate(version: ModelVersion, activation: str) -> tuple[bool, str]:
    if activation == "never":
        return False, "registered as a candidate (activation=never)"
    active = ModelVersion.objects.filter(kind=version.kind, status=ModelVersion.Status.ACTIVE).first()
    if activation == "always" or active is None:
        return True, "activated" + (" (no active version)" if active is None else "")
    new, old = version.metrics.get(GATE_METRIC, 0.0), active.metrics.get(GATE_METRIC, 0.0)
    if new >= old - GATE_TOLERANCE:
        return True, f"activated: {GATE_METRIC} {new:.4f} against {old:.4f} of {active.version}"
    return False, f"kept {active.version}: {GATE_METRIC} {new:.4f} is worse than {old:.4f}"


def utc(value: Any) -> dt.datetime:
    stamp = pd.Timestamp(value)
    return (stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")).to_pydatetime()
