"""Training the LambdaMART ranker from the database, with nothing from after the cutoff in its inputs.

At a cutoff T: candidate models are fitted on viewings before T; user and title features are read from the
offline store through the point-in-time join (features.snapshots: the newest Parquet snapshot taken at or
before T, never a later one), or computed as of T when no snapshot covers T (the metrics' `features_source`
says which); each sampled profile's candidates are generated exactly as
serving would have at T; labels are what the profile watched in [T, T + label_days): 2 for 80 %+
watched, 1 for less, 0 for not watched. The ranker is fitted on most profiles and measured on the rest
(NDCG@10 against the ranker-free ordering and against popularity over the same candidates), registered,
and activated through the gate of recommendations.training.jobs: enough held-out queries and positives, better
than popularity and not worse than the ranker-free ordering, and not worse than the active ranker.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from django.db.models import Max

from events.models import Event, EventType
from features import selectors as feature_selectors
from features.ml import compute
from features.ml.compute import FeatureMatrix
from features.ml.definitions import CONTENT, USER, feature_set
from features.services import TRENDING_SIZE
from features.snapshots import point_in_time_join
from ranking.ml.features import assemble
from ranking.ml.ranker import LambdaMARTRanker
from ranking.ml.training_data import RankingQuery, TrainingData, training_data
from recommendations import selectors
from recommendations.ml.constants import INTERACTION_COLUMNS
from recommendations.ml.metrics import ndcg_at_k
from recommendations.models import ModelKind, ModelVersion
from recommendations.registry import LoadedModel
from recommendations.services import model_artifact_staging, model_version_activate, model_version_register
from recommendations.serving.candidate_inputs import candidates_generate
from recommendations.serving.catalog_cache import catalog_index_build
from recommendations.serving.context import profile_state_load
from recommendations.serving.ranking_input import blend_sources, ranking_input_build
from recommendations.serving.state import TrendingList, build_serving_models
from recommendations.training.jobs import BASELINE_METRIC, activation_gate, fit_model, utc
from users.models import ViewingEvent

log = logging.getLogger(__name__)

DEFAULT_LABEL_DAYS = 14
DEFAULT_PROFILES = 3_000
HELD_OUT = 0.25
EARLY_STOPPING_SHARE = 0.2  # of the rest: picks the number of trees
STRONG_SHARE = 0.8  # a later viewing of 80 %+ is label 2
CLICK_RATING = 0.5  # a click without a viewing: a weak positive (label 1), as any viewing below 80 %
VIEWING_FIELDS = ("profile_id", "title_id", "watch_percentage", "started_at", "device_type")


@dataclass(frozen=True)
class RankerTrainingResult:
    version: ModelVersion
    activated: bool
    reason: str
    queries: int


def ranker_train(
    *,
    cutoff: dt.datetime | None = None,
    label_days: int = DEFAULT_LABEL_DAYS,
    profiles: int = DEFAULT_PROFILES,
    params: dict[str, Any] | None = None,
    activation: str = "if-not-worse",
    seed: int = 42,
) -> RankerTrainingResult:
    """Fit, measure, register (and per `activation` activate) a ranker; cutoff defaults to the newest viewing
    minus `label_days`. ValueError when there is no history before the cutoff or no label after it."""
    started = time.perf_counter()
    newest = ViewingEvent.objects.aggregate(newest=Max("started_at"))["newest"]
    if newest is None:
        raise ValueError("no viewing history to train a ranker on")
    cutoff = cutoff or (newest - dt.timedelta(days=label_days))
    label_end = cutoff + dt.timedelta(days=label_days)

    history = selectors.training_interactions(until=cutoff)
    if history.empty:
        raise ValueError(f"no viewing history before the cutoff {cutoff.isoformat()}")
    interactions = history[list(INTERACTION_COLUMNS)]
    outcomes = _outcomes(cutoff, label_end)
    sampled = _sample_profiles(outcomes, set(np.unique(interactions["user_id"])), profiles, seed)
    if not len(sampled):
        raise ValueError(
            f"no profile with history before {cutoff:%Y-%m-%d} watched anything in the {label_days} days after"
        )

    models = _models_as_of(interactions, cutoff)
    trending = _trending_as_of(models, cutoff)
    user_matrix, user_source = features_as_of(
        USER,
        sampled,
        cutoff,
        lambda: compute.user_features(
            feature_selectors.viewings_for_profiles(profile_ids=sampled, as_of=cutoff),
            feature_selectors.catalog_arrays(),
            as_of=cutoff,
            profile_ids=sampled,
        ),
    )
    content_matrix, content_source = features_as_of(
        CONTENT,
        models.catalog.content_ids,
        cutoff,
        lambda: compute.content_features(
            feature_selectors.content_aggregates(as_of=cutoff), feature_selectors.catalog_arrays()
        ),
    )
    contexts = _label_contexts(outcomes)
    queries, baseline, popular = [], {}, {}
    for position, profile_id in enumerate(sampled):
        state = profile_state_load(profile_id=int(profile_id), before=cutoff).within_maturity_cap(models.catalog)
        candidates = candidates_generate(state, models, trending, now=cutoff)
        if not len(candidates.rows):
            continue
        rows, found = _positions(content_matrix.ids, candidates.content_ids)
        content = np.where(found[:, None], content_matrix.values[rows], content_matrix.features.defaults)
        hour, device = contexts.get(int(profile_id), (20, 1))
        features = assemble(
            ranking_input_build(
                state=state,
                candidates=candidates,
                models=models,
                user=user_matrix.values[position],
                content=content.astype(np.float32),
                hour=hour,
                device_type=device,
                now=cutoff,
            )
        )
        queries.append(RankingQuery(int(profile_id), candidates.content_ids, features))
        baseline[int(profile_id)] = blend_sources(candidates.merged)
        popular[int(profile_id)] = models.popularity[candidates.rows]  # non-personalised: the same for everyone
    data = training_data(queries, outcomes[["user_id", "content_id", "rating"]], strong_rating=STRONG_SHARE * 5)
    fit_part, held_out = data.split_profiles(HELD_OUT, seed=seed)  # held_out: measured, never seen in fitting
    train_part, stop_part = fit_part.split_profiles(EARLY_STOPPING_SHARE, seed=seed + 1)
    if min(len(part.group_sizes) for part in (train_part, stop_part, held_out)) == 0:
        raise ValueError(
            f"{len(data.group_sizes)} labelled ranking queries are too few to fit, stop early and "
            f"measure a ranker (profiles that watched something in the {label_days} days after "
            f"{cutoff:%Y-%m-%d})"
        )
    ranker = LambdaMARTRanker(params)
    ranker.fit(
        train_part.features,
        train_part.labels,
        train_part.group_sizes,
        eval=(stop_part.features, stop_part.labels, stop_part.group_sizes),
    )
    metrics = {
        "ndcg_at_10": _ndcg(ranker.predict(held_out.features), held_out),
        "baseline_ndcg_at_10": _ndcg(np.concatenate([baseline[int(p)] for p in held_out.profile_ids]), held_out),
        BASELINE_METRIC: _ndcg(np.concatenate([popular[int(p)] for p in held_out.profile_ids]), held_out),
        "queries": len(data.group_sizes),
        "held_out_queries": len(held_out.group_sizes),
        "rows": len(data.labels),
        "positives": int((data.labels > 0).sum()),
        "held_out_positives": int((held_out.labels > 0).sum()),
        "train_seconds": round(time.perf_counter() - started, 1),
        "features_source": {USER: user_source, CONTENT: content_source},
    }
    window = {"data_from": utc(history["started_at"].min()), "data_to": cutoff}
    activated, reason = activation_gate(kind=ModelKind.RANKER, metrics=metrics, activation=activation)
    with model_artifact_staging(kind=ModelKind.RANKER) as scratch:
        saved = ranker.save(scratch / "model", metadata={"cutoff": cutoff.isoformat(), "label_days": label_days})
        version = model_version_register(
            kind=ModelKind.RANKER, saved_model_dir=saved, metrics=metrics, params=ranker.params, notes=reason, **window
        )
    if activated:
        version = model_version_activate(version_id=version.pk)
    log.info("trained ranker %s: %s; %s", version.version, metrics, reason)
    return RankerTrainingResult(version, activated, reason, metrics["queries"])


def features_as_of(
    entity_type: str,
    ids: np.ndarray,
    cutoff: dt.datetime,
    compute_all: Callable[[], FeatureMatrix],
    *,
    location: str | None = None,
) -> tuple[FeatureMatrix, str]:
    """The features of `ids` (ascending) as the offline store held them at `cutoff`: each entity's row of the
    newest snapshot taken at or before it (an entity missing there gets the declared defaults). With no such
    snapshot, `compute_all()` (as of the cutoff). Returns the matrix and where it came from, in words."""
    features = feature_set(entity_type)
    ids = np.asarray(ids, np.int64)
    rows = pd.DataFrame({"entity_id": ids, "timestamp": pd.Timestamp(cutoff)})
    joined = point_in_time_join(entity_type, rows, location=location)
    covered = joined["features_as_of"].notna().to_numpy()
    if not len(ids) or not covered.any():
        log.info("ranker training: no %s snapshot at or before %s, computing the features", entity_type, cutoff)
        return compute_all(), f"computed as of the cutoff (no snapshot at or before {cutoff.isoformat()})"
    values = joined[list(features.columns)].to_numpy(np.float32, copy=True)
    values[~covered] = features.defaults
    taken = joined.loc[covered, "features_as_of"].max()
    source = f"offline snapshot as of {taken.isoformat()}"
    if not covered.all():
        source += f" ({int((~covered).sum())} of {len(ids)} not in it: defaults)"
    return FeatureMatrix(features, ids, values), source


def _outcomes(start: dt.datetime, end: dt.datetime) -> pd.DataFrame:
    """What profiles did in the label window: viewings (rated by watched share; plays logged through the
    events API are folded into viewings) and clicks on shown titles that led to no viewing (label 1)."""
    columns = ["user_id", "content_id", "watch_percentage", "started_at", "device_type"]
    viewings = ViewingEvent.objects.filter(started_at__gte=start, started_at__lt=end).values_list(*VIEWING_FIELDS)
    clicks = Event.objects.filter(type=EventType.CLICK, occurred_at__gte=start, occurred_at__lt=end).values_list(
        "profile_id", "title_id", "occurred_at", "device_type"
    )
    frame = pd.DataFrame(list(viewings), columns=columns)
    frame["rating"] = frame["watch_percentage"].astype(float) * 5
    clicked = pd.DataFrame(list(clicks), columns=["user_id", "content_id", "started_at", "device_type"])
    if len(clicked):
        clicked = clicked.assign(watch_percentage=0.0, rating=CLICK_RATING)
        frame = pd.concat([frame, clicked[frame.columns]], ignore_index=True)
    return frame


def _sample_profiles(outcomes: pd.DataFrame, known: set, n: int, seed: int) -> np.ndarray:
    labelled = np.array(sorted(set(outcomes["user_id"].unique()) & known), np.int64)
    if len(labelled) > n:
        labelled = np.sort(np.random.default_rng(seed).choice(labelled, n, replace=False))
    return labelled


def _label_contexts(outcomes: pd.DataFrame) -> dict[int, tuple[int, int]]:
    """The hour and device of each profile's first viewing after the cutoff: the request it answers."""
    first = outcomes.sort_values("started_at").drop_duplicates("user_id")
    hours = pd.to_datetime(first["started_at"], utc=True).dt.hour.to_numpy()
    return {int(p): (int(h), int(d)) for p, h, d in zip(first["user_id"], hours, first["device_type"], strict=True)}


def _models_as_of(interactions: pd.DataFrame, cutoff: dt.datetime):
    """Candidate models fitted on the viewings before the cutoff, aligned like serving's."""
    from recommendations.training.jobs import DEFAULT_PARAMS

    catalog_frame = selectors.content_catalog()
    loaded = {}
    for kind in (ModelKind.POPULARITY, ModelKind.MATRIX_FACTORIZATION, ModelKind.CONTENT):
        model = fit_model(
            kind, interactions, catalog_frame if kind == ModelKind.CONTENT else None, DEFAULT_PARAMS[kind]
        )
        loaded[kind] = LoadedModel(0, kind, f"as-of-{cutoff:%Y%m%d}", model, time.monotonic())
    catalog = catalog_index_build(version=f"as-of-{cutoff.isoformat()}")
    return build_serving_models(catalog, loaded, key=("ranker-training", cutoff.isoformat()))


def _trending_as_of(models, cutoff: dt.datetime) -> TrendingList:
    aggregates = feature_selectors.content_aggregates(as_of=cutoff)
    matrix = compute.content_features(aggregates, feature_selectors.catalog_arrays())
    popularity = matrix.column("popularity_score")
    top = np.argsort(-popularity, kind="stable")[:TRENDING_SIZE]
    top = top[popularity[top] > 0]
    rows, known = models.catalog.positions(matrix.ids[top])
    return TrendingList(rows[known], popularity[top][known].astype(np.float32), True)


def _positions(ids: np.ndarray, wanted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    rows = np.minimum(np.searchsorted(ids, wanted), max(len(ids) - 1, 0))
    return rows, ids[rows] == wanted


def _ndcg(scores: np.ndarray, data: TrainingData, k: int = 10) -> float:
    """NDCG@k of the candidates ordered by `scores`, relevant = any later viewing (as the offline metrics)."""
    hits, relevant, start = [], [], 0
    for size in data.group_sizes:
        order = np.argsort(-scores[start : start + size], kind="stable")[:k]
        labels = data.labels[start : start + size]
        row = np.zeros(k, bool)
        row[: len(order)] = labels[order] > 0
        hits.append(row)
        relevant.append(int((labels > 0).sum()))
        start += size
    return round(float(ndcg_at_k(np.array(hits), np.array(relevant), k)), 5)
