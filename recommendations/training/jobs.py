"""Training from the database: fit, validate on a held-out split, register, and activate through the gate.

The gate (issue #14): a version serves only when its validation rests on enough data (VALIDATION_FLOOR) and
it beats the non-personalised baseline measured on the same split, even when no version of its kind is
active yet; otherwise it stays a candidate and its notes say why. Serving then uses what it has, flagged
(no_collaborative_model, no_ranker, ...).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from recommendations import selectors
from recommendations.ml import defaults
from recommendations.ml.base import Recommender
from recommendations.ml.constants import INTERACTION_COLUMNS, USER_COL
from recommendations.ml.content import ContentSimilarity
from recommendations.ml.data import validate_interactions
from recommendations.ml.debiasing import inverse_propensity_weights
from recommendations.ml.ease import EASE
from recommendations.ml.matrix_factorization import MatrixFactorization
from recommendations.ml.metrics import candidate_recall, ndcg_at_k, ranking_metrics, relevance
from recommendations.ml.ncf import NCFRecommender
from recommendations.ml.popularity import PopularityRecommender
from recommendations.ml.split import validation_split
from recommendations.models import ModelKind, ModelVersion
from recommendations.services import model_artifact_staging, model_version_activate, model_version_register

log = logging.getLogger(__name__)

# The one set of defaults (recommendations.ml.defaults), by model kind.
DEFAULT_PARAMS: dict[str, dict[str, Any]] = {
    ModelKind.MATRIX_FACTORIZATION: defaults.params("MF-ALS"),
    ModelKind.NCF: defaults.params("NCF"),
    ModelKind.CONTENT: defaults.params("content similarity"),
    ModelKind.POPULARITY: {},
    ModelKind.EASE: defaults.params("EASE"),
    ModelKind.RANKER: {},  # LightGBM parameters over ranking.ml.ranker.DEFAULT_PARAMS
}
VALIDATION_USERS = 5_000  # metrics on a sample of users keep the gate cheap at a million profiles
GATE_METRIC = "ndcg_at_10"
CANDIDATE_DEPTH = 500  # validation also reports recall@500: how well the model serves as a candidate source
GATE_TOLERANCE = 0.002  # noise between two trainings on the same data; a real regression is larger
BASELINE_METRIC = "popularity_ndcg_at_10"  # popularity fitted and measured on the same split and users
# Kinds that must beat popularity to serve. Popularity is the baseline itself (data floor only); content
# similarity answers "more like this title" and reaches titles nobody watched yet, which a split of past
# viewings does not measure (it loses to popularity at NDCG@10 on every world we tried), and its
# candidates are always re-ordered by the ranker or the blend, so it needs the data floor only.
# A params key of model_train (not the model's): weight each label by its title's inverse propensity of having
# been shown (impressions plus viewings), raised to this power; 0 or absent: off (issue #16).
LABEL_DEBIAS = "label_debias"
# A params key of model_train: the registered ALS model is the validated one (fitted on the 75 % part) continued
# over every interaction for this many iterations, instead of a fresh fit of n_epochs (issue #19: at 50M
# viewings each ALS iteration costs ~20 s). 0: the fresh fit. Measured on the 1M-viewing synthetic world
# against a fresh fit, NDCG@10 on an outer test split: 0.0496 fresh; 4 iterations 0.0478, 6 0.0483, 8 0.0492
# (ml-100k: 0.489 fresh, 0.491 with 6, 0.490 with 8).
REFIT_EPOCHS = "refit_epochs"
REFIT_EPOCHS_DEFAULT = 8  # at 50M viewings 92 s of a 318 s job (bench/README.md, heavy jobs)
MUST_BEAT_POPULARITY = frozenset({ModelKind.MATRIX_FACTORIZATION, ModelKind.NCF, ModelKind.EASE, ModelKind.RANKER})


@dataclass(frozen=True)
class ValidationFloor:
    """The least validation a metric can be trusted on. Per-user NDCG@10 spreads about 0.2-0.3 (measured on
    the synthetic worlds), so 50 users put the standard error of a mean near 0.035: coarse, but enough to
    tell a working model from a degenerate one; below it (the 1-query validation of issue #14) a
    comparison means nothing. 200 held-out positives (4 per user on average) keep a few lucky hits from
    deciding the mean."""

    users: int = 50  # profiles measured (for the ranker: held-out queries)
    positives: int = 200  # held-out viewings among them (for the ranker: labelled candidates > 0)

    def failure(self, *, users: int, positives: int, noun: str = "users") -> str | None:
        """Why a validation of `users` and `positives` is too small, or None when it is enough."""
        if users < self.users or positives < self.positives:
            return (
                f"validation too small to trust: {users} {noun} and {positives} positives "
                f"(needs {self.users} and {self.positives})"
            )
        return None


VALIDATION_FLOOR = ValidationFloor()


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
    title), measure on the rest, then the registered artifact on everything (fit_validated)."""
    if activation not in {"if-not-worse", "always", "never"}:
        raise ValueError(f"activation must be if-not-worse, always or never, not {activation!r}")
    if kind == ModelKind.RANKER:  # labelled by what profiles watched after a cutoff: its own procedure
        from recommendations.training.ranker_fit import DEFAULT_LABEL_DAYS, DEFAULT_PROFILES, ranker_train

        cutoff = until - dt.timedelta(days=DEFAULT_LABEL_DAYS) if until else None
        params = dict(params or {})
        profiles = int(params.pop("profiles", DEFAULT_PROFILES))
        ranked = ranker_train(cutoff=cutoff, params=params or None, activation=activation, profiles=profiles)
        return TrainingResult(ranked.version, ranked.activated, ranked.reason, ranked.queries)
    params = {**DEFAULT_PARAMS[kind], **(params or {})}
    debias = float(params.pop(LABEL_DEBIAS, 0.0))
    refit = _refit_epochs(kind, params)
    started = time.perf_counter()
    history = selectors.training_interactions(until=until)
    read_seconds = time.perf_counter() - started
    if history.empty:
        raise ValueError("no viewing history to train on")
    window = {"data_from": utc(history["started_at"].min()), "data_to": utc(until or history["started_at"].max())}
    catalog = selectors.content_catalog() if kind == ModelKind.CONTENT else None
    interactions = history[list(INTERACTION_COLUMNS)]
    del history  # the start times gave the window: 8 B a viewing less while fitting
    if debias:
        interactions = debiased_labels(interactions, power=debias, until=until)
    model, metrics = fit_validated(kind, interactions, catalog, params, refit_epochs=refit)
    metrics["read_seconds"] = round(read_seconds, 2)
    metrics["train_seconds"] = round(time.perf_counter() - started, 2)
    activate, reason = activation_gate(kind=kind, metrics=metrics, activation=activation)
    with model_artifact_staging(kind=kind) as scratch:  # inside the artifact store: registering renames it
        saved = model.save(scratch / "model", metadata={k: v.isoformat() for k, v in window.items()})
        version = model_version_register(
            kind=kind,
            saved_model_dir=saved,
            metrics=metrics,
            notes=reason,
            **window,
            params=params | ({LABEL_DEBIAS: debias} if debias else {}) | ({REFIT_EPOCHS: refit} if refit else {}),
        )
    if activate:
        version = model_version_activate(version_id=version.pk)
    log.info("trained %s %s: %s; %s", kind, version.version, metrics, reason)
    return TrainingResult(version, activate, reason, len(interactions))


def debiased_labels(interactions: pd.DataFrame, *, power: float, until: dt.datetime | None = None) -> pd.DataFrame:
    """The interactions with each rating weighted by its title's inverse propensity of exposure."""
    ids, impressions = selectors.title_impression_counts(until=until)
    items = interactions["content_id"].to_numpy()
    titles, inverse, viewings = np.unique(items, return_inverse=True, return_counts=True)
    shown = viewings.astype(np.float64)
    found = np.searchsorted(ids, titles).clip(0, max(len(ids) - 1, 0))
    if len(ids):
        shown += np.where(ids[found] == titles, impressions[found], 0)
    weights = inverse_propensity_weights(items, shown[inverse], power=power)
    return interactions.assign(rating=interactions["rating"].to_numpy() * weights)


def model_train_interactions(
    *,
    kind: str,
    interactions: pd.DataFrame,
    params: dict[str, Any] | None = None,
    activation: str = "if-not-worse",
) -> TrainingResult:
    """Train `kind` on a given frame (user_id, content_id, rating; started_at, when present, gives the data
    window) with model_train's validation split, baseline and activation gate: a small frame stays a candidate."""
    if activation not in {"if-not-worse", "always", "never"}:
        raise ValueError(f"activation must be if-not-worse, always or never, not {activation!r}")
    if kind in {ModelKind.RANKER, ModelKind.CONTENT}:
        raise ValueError(f"{kind} trains from the database (model_train): it needs more than interactions")
    params = {**DEFAULT_PARAMS[kind], **(params or {})}
    refit = _refit_epochs(kind, params)
    started = time.perf_counter()
    frame = validate_interactions(interactions)
    model, metrics = fit_validated(kind, frame, None, params, refit_epochs=refit)
    metrics["train_seconds"] = round(time.perf_counter() - started, 2)
    window = {}
    if "started_at" in interactions.columns and len(interactions):
        window = {"data_from": utc(interactions["started_at"].min()), "data_to": utc(interactions["started_at"].max())}
    activate, reason = activation_gate(kind=kind, metrics=metrics, activation=activation)
    with model_artifact_staging(kind=kind) as scratch:
        saved = model.save(scratch / "model", metadata={k: v.isoformat() for k, v in window.items()})
        version = model_version_register(
            kind=kind,
            saved_model_dir=saved,
            metrics=metrics,
            params=params | ({REFIT_EPOCHS: refit} if refit else {}),
            notes=reason,
            **window,
        )
    if activate:
        version = model_version_activate(version_id=version.pk)
    log.info("trained %s %s on %d given interactions: %s; %s", kind, version.version, len(frame), metrics, reason)
    return TrainingResult(version, activate, reason, len(frame))


def fit_validated(
    kind: str,
    interactions: pd.DataFrame,
    catalog: pd.DataFrame | None,
    params: dict[str, Any],
    *,
    refit_epochs: int = 0,
) -> tuple[Recommender, dict[str, Any]]:
    """(the model to register, its validation metrics and phase seconds): fitted on 75 % of `interactions`
    (stratified by title) and measured on the rest, with popularity fitted and measured on the same split; then
    the registered model on every interaction. With `refit_epochs` (ALS matrix factorization) that is the
    validated model continued over every interaction for that many iterations (a warm start), not a second
    fit from scratch: the validation metrics are the same, the artifact has seen every interaction."""
    started = time.perf_counter()
    fit_part, held_out = validation_split(interactions)
    split_seconds = time.perf_counter() - started
    validated = fit_model(kind, fit_part, catalog, params)
    # The baseline after the model: its fitted history (~0.4 GB at 50M viewings) is not held through the fit.
    baseline = fit_model(ModelKind.POPULARITY, fit_part, None, {}) if kind != ModelKind.POPULARITY else None
    del fit_part
    started = time.perf_counter()
    metrics: dict[str, Any] = validation_metrics(validated, held_out, baseline=baseline)
    validation_seconds = time.perf_counter() - started
    del held_out, baseline
    if refit_epochs:
        validated.user_items = validated.user_items[:0]  # the fitted history: only the factors carry over
        model: Recommender = MatrixFactorization(**params).fit(interactions, warm_start=validated, epochs=refit_epochs)
    else:
        model = fit_model(kind, interactions, catalog, params)
    metrics |= {
        "split_seconds": round(split_seconds, 2),
        "validation_fit_seconds": round(validated.fit_seconds, 2),
        "validation_seconds": round(validation_seconds, 2),
        "fit_seconds": round(model.fit_seconds, 2),  # the registered model's fit
    }
    return model, metrics


def _refit_epochs(kind: str, params: dict[str, Any]) -> int:
    """Pops REFIT_EPOCHS from `params`: the warm refit's iterations for ALS matrix factorization, else 0."""
    epochs = int(params.pop(REFIT_EPOCHS, REFIT_EPOCHS_DEFAULT))
    if kind != ModelKind.MATRIX_FACTORIZATION or params.get("objective", "als") != "als":
        return 0
    return max(0, min(epochs, int(params.get("n_epochs") or defaults.MF_ALS["n_epochs"])))


def validation_metrics(
    model: Recommender, held_out: pd.DataFrame, *, k: int = 10, seed: int = 7, baseline: Recommender | None = None
) -> dict[str, float]:
    """MAP, NDCG, precision and recall @k on held-out interactions, over a sample of users the model knows;
    `users` and `positives` say how much they rest on. With `baseline` (popularity fitted on the same
    part), its NDCG@k on the same users as BASELINE_METRIC."""
    users = np.unique(held_out[USER_COL].to_numpy())
    users = users[model.user_map.to_index(users, strict=False) >= 0]
    if baseline is not None:
        users = users[baseline.user_map.to_index(users, strict=False) >= 0]
    if len(users) > VALIDATION_USERS:
        users = np.sort(np.random.default_rng(seed).choice(users, VALIDATION_USERS, replace=False))
    empty = {f"{name}_at_{k}": 0.0 for name in ("map", "ndcg", "precision", "recall")} | {"users": 0, "positives": 0}
    if not len(users):
        return empty
    recommended, _ = model.recommend_many(users, CANDIDATE_DEPTH)  # one top-k search serves both depths
    hits, n_relevant = relevance(users, recommended, held_out)
    if not (n_relevant > 0).any():
        return empty
    scores = ranking_metrics(hits[:, :k], n_relevant, k)
    metrics = {f"{name}_at_{k}": round(value, 5) for name, value in scores.items()} | {
        "users": int((n_relevant > 0).sum()),
        "positives": int(n_relevant.sum()),
        f"recall_at_{CANDIDATE_DEPTH}": round(candidate_recall(hits, n_relevant), 5),  # as a candidate source
    }
    if baseline is not None:
        baseline_hits, _ = relevance(users, baseline.recommend_many(users, k)[0], held_out)
        metrics[BASELINE_METRIC] = round(ndcg_at_k(baseline_hits, n_relevant, k), 5)
    return metrics


def fit_model(
    kind: str, interactions: pd.DataFrame, catalog: pd.DataFrame | None, params: dict[str, Any]
) -> Recommender:
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
        if n_items > defaults.EASE_MAX_ITEMS:
            raise ValueError(
                f"EASE needs an items × items inverse: {n_items:,} items is over {defaults.EASE_MAX_ITEMS:,}"
            )
        return EASE(**params).fit(interactions)
    raise ValueError(f"unknown model kind {kind!r}")


def activation_gate(*, kind: str, metrics: dict[str, Any], activation: str) -> tuple[bool, str]:
    """Whether a version of `kind` with these validation metrics should be activated, and why.

    "never" registers only. Otherwise the data floor and (for MUST_BEAT_POPULARITY) the popularity baseline
    on the same split come first, whatever `activation` says: "always" skips only the comparison with the
    active version (an operator can still activate any version by hand, as themselves, from the admin).
    """
    if activation == "never":
        return False, "registered as a candidate (activation=never)"
    refused = _gate_refusal(kind, metrics)
    if refused:
        return False, f"kept as a candidate: {refused}"
    new = float(metrics.get(GATE_METRIC, 0.0))
    beaten = f" (popularity {metrics[BASELINE_METRIC]:.4f})" if kind in MUST_BEAT_POPULARITY else ""
    if activation == "always":
        return True, f"activated (activation=always): {GATE_METRIC} {new:.4f}{beaten}"
    active = ModelVersion.objects.filter(kind=kind, status=ModelVersion.Status.ACTIVE).first()
    if active is None:
        return True, f"activated (no active version): {GATE_METRIC} {new:.4f}{beaten}"
    old = float(active.metrics.get(GATE_METRIC, 0.0))
    if new >= old - GATE_TOLERANCE:
        return True, f"activated: {GATE_METRIC} {new:.4f} against {old:.4f} of {active.version}{beaten}"
    return False, f"kept {active.version}: {GATE_METRIC} {new:.4f} is worse than {old:.4f}"


def _gate_refusal(kind: str, metrics: dict[str, Any]) -> str | None:
    """Why these metrics may not serve (too little validation, or no better than popularity), or None."""
    if kind == ModelKind.RANKER:
        units, positives, noun = metrics.get("held_out_queries", 0), metrics.get("held_out_positives", 0), "queries"
    else:
        units, positives, noun = metrics.get("users", 0), metrics.get("positives", 0), "users"
    too_small = VALIDATION_FLOOR.failure(users=int(units), positives=int(positives), noun=noun)
    if too_small:
        return too_small
    if kind not in MUST_BEAT_POPULARITY:
        return None
    new = float(metrics.get(GATE_METRIC, 0.0))
    if BASELINE_METRIC not in metrics:
        return f"no {BASELINE_METRIC} was measured to compare {GATE_METRIC} {new:.4f} with"
    baseline = float(metrics[BASELINE_METRIC])
    if not new > baseline:
        return f"{GATE_METRIC} {new:.4f} does not beat popularity's {baseline:.4f} on the same split"
    if kind == ModelKind.RANKER and new < float(metrics.get("baseline_ndcg_at_10", 0.0)):
        return (
            f"{GATE_METRIC} {new:.4f} is worse than the ranker-free ordering's "
            f"{metrics['baseline_ndcg_at_10']:.4f}, which serving uses without a ranker"
        )
    return None


def utc(value: Any) -> dt.datetime:
    stamp = pd.Timestamp(value)
    return (stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")).to_pydatetime()
