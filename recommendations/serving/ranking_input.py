"""What the ranker reads for one profile's candidates, built the same way at serving and at training time.

Serving passes features read from the online store; ranker training passes the same features computed
as of its cutoff. Either way this module turns them, the candidates and the request context into a
ranking.ml.features.RankingInput, with no query and no per-candidate Python.
"""

from __future__ import annotations

import datetime as dt

import numpy as np

from features.ml.definitions import INTERACTION_FEATURES, USER_FEATURES
from ranking.ml.features import RankingContext, RankingInput
from recommendations.ml import sources
from recommendations.models import ModelKind
from recommendations.serving.candidate_inputs import CandidateSet
from recommendations.serving.context import ProfileState
from recommendations.serving.state import ServingModels

SECONDS_PER_DAY = 86_400
PREMIUM_TIER = 3
MODEL_SLOTS = ("mf", "ease", "ncf", "content")


def ranking_input_build(
    *,
    state: ProfileState,
    candidates: CandidateSet,
    models: ServingModels,
    user: np.ndarray,
    content: np.ndarray,
    hour: int,
    device_type: int,
    now: dt.datetime,
) -> RankingInput:
    """user: float32 (USER_FEATURES.width,); content: float32 (n, CONTENT_FEATURES.width) in candidate order."""
    merged = candidates.merged
    return RankingInput(
        candidate_ids=merged.content_ids,
        source_names=merged.sources,
        source_flags=merged.proposed,
        source_scores=merged.scores,
        model_scores=model_scores(candidates, models),
        user=user,
        content=content,
        interaction=interaction_features(state, candidates, models, user, now),
        catalog=models.catalog,
        rows=candidates.rows,
        context=RankingContext(
            hour=int(hour),
            weekday=now.weekday(),
            device_type=int(device_type),
            country=state.country,
            today_days=int(now.timestamp() // SECONDS_PER_DAY),
            premium=state.tier >= PREMIUM_TIER,
        ),
    )


def model_scores(candidates: CandidateSet, models: ServingModels) -> dict[str, np.ndarray]:
    """Each model's score of every candidate (NaN where it has none): MF for all, EASE/content where proposed."""
    merged = candidates.merged
    n = len(merged)
    scores = {slot: np.full(n, np.nan, np.float32) for slot in MODEL_SLOTS}
    mf = models.get(ModelKind.MATRIX_FACTORIZATION)
    if mf is not None and candidates.user_vector is not None:
        items = mf.alignment.items[candidates.rows]
        known = items >= 0
        scores["mf"][known] = np.asarray(mf.model.item_factors[items[known]]) @ candidates.user_vector
    for source, slot in ((sources.EASE_SOURCE, "ease"), (sources.SIMILAR_TO_WATCHED, "content")):
        if source in merged.sources:
            scores[slot] = merged.scores[:, merged.sources.index(source)]
    return scores


def user_vector_of(row) -> np.ndarray:
    """A FeatureRow as the stored float32 vector, in schema order."""
    return np.concatenate([np.asarray(row.values[f.name], np.float32).ravel() for f in USER_FEATURES.features])


def interaction_features(
    state: ProfileState, candidates: CandidateSet, models: ServingModels, user: np.ndarray, now: dt.datetime
) -> np.ndarray:
    """INTERACTION_FEATURES of every candidate from the history arrays already loaded (no query, no pandas)."""
    n = len(candidates.rows)
    values = np.zeros((n, INTERACTION_FEATURES.width), np.float32)
    slices = INTERACTION_FEATURES.slices
    ids = candidates.content_ids
    order = np.argsort(ids)
    position = np.minimum(np.searchsorted(ids[order], state.history_title_ids), max(n - 1, 0))
    hit = ids[order][position] == state.history_title_ids if n else np.zeros(0, bool)
    target = order[position[hit]]
    pct = np.zeros(n, np.float32)
    last = np.full(n, -np.inf)
    np.maximum.at(pct, target, state.history_watch_percentage[hit])
    np.maximum.at(last, target, state.history_last_watched[hit])
    watched = np.isfinite(last)
    days = np.where(watched, (now.timestamp() - np.where(watched, last, 0.0)) / SECONDS_PER_DAY, np.nan)
    values[:, slices["has_watched"]] = watched[:, None]
    values[:, slices["watch_percentage"]] = pct[:, None]
    values[:, slices["days_since_watched"]] = days[:, None]
    affinity = np.asarray(user[USER_FEATURES.slices["genre_affinity"]], np.float32)
    genres = models.catalog.genre_indicator(candidates.rows)[:, : len(affinity)]
    norms = np.linalg.norm(genres, axis=1) * np.linalg.norm(affinity)
    cosine = np.divide(genres @ affinity, norms, out=np.zeros(n, np.float32), where=norms > 0)
    values[:, slices["genre_affinity"]] = cosine[:, None]
    return values


def blend_sources(merged) -> np.ndarray:
    """Without a ranker: each candidate's best within-source percentile (sources in quota order weigh more)."""
    scores = np.where(np.isnan(merged.scores), -np.inf, merged.scores)
    ranks = np.argsort(np.argsort(-scores, axis=0, kind="stable"), axis=0, kind="stable")
    counts = np.maximum(merged.proposed.sum(axis=0), 1)
    percentile = np.where(merged.proposed, 1.0 - ranks / counts, 0.0)
    weights = np.linspace(1.0, 0.8, len(merged.sources))
    return (percentile * weights).max(axis=1).astype(np.float32)
