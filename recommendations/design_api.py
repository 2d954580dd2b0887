"""The design document's Python API by its names (docs/design-api.md), thin over the serving code.

Models are the `ml` library's own classes; the engine is RecommendationEngine; `diversify_recommendations`
runs the engine's diversification (ranking.ml.diversify) and `batch_recommend` the engine, profile by profile.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Protocol

import numpy as np
import pandas as pd
from django.utils import timezone

from features.design_api import FeatureStore, OnlineFeatures
from ranking.ml.diversify import diversify_titles, title_vectors
from recommendations.ml.matrix_factorization import MatrixFactorization
from recommendations.ml.ncf import NeuralCollaborativeFiltering
from recommendations.models import ModelKind, ModelVersion
from recommendations.serving import engine as serving_engine
from recommendations.serving.context import UserContext
from recommendations.serving.engine import MAX_N, ProfileNotFound, RankedItem, Recommendations
from recommendations.serving.state import ServingModels, serving_state
from recommendations.training.jobs import model_train_interactions

__all__ = [
    "MatrixFactorization",
    "NeuralCollaborativeFiltering",
    "RankedItem",
    "RecommendationEngine",
    "Recommendations",
    "UserContext",
    "batch_recommend",
    "diversify_recommendations",
    "get_features",
    "similarity",
]

DESIGN_LIST_LENGTH = 20  # the design's MMR keeps 20


class Scored(Protocol):
    content_id: int
    score: float


class RecommendationEngine(serving_engine.RecommendationEngine):
    """The engine, plus the design's batch call `predict_batch(features)` and its training call
    `train_collaborative_filtering(interactions)`."""

    def predict_batch(self, features: Mapping[int, Any], n: int = DESIGN_LIST_LENGTH) -> list[Recommendations | None]:
        """Recommendations for each profile id of `features`, in its order (None for an unknown profile). The
        features themselves are not needed: the engine reads each profile's in one round trip."""
        return [_recommend_or_none(self, int(profile_id), n) for profile_id in features]

    def train_collaborative_filtering(
        self, interactions: pd.DataFrame, *, params: dict[str, Any] | None = None, activation: str = "if-not-worse"
    ) -> ModelVersion:
        """Fit matrix factorization on a frame of user_id, content_id, rating and register it; it serves only past
        the activation gate every training goes through (enough validation, beats popularity, not worse than the
        active one): the version's status and notes say which (recommendations.training.jobs)."""
        return model_train_interactions(
            kind=ModelKind.MATRIX_FACTORIZATION, interactions=interactions, params=params, activation=activation
        ).version


def get_features(user_id: int) -> OnlineFeatures:
    """A profile's online features, as the design's FeatureStore reads them."""
    return FeatureStore().get_online_features("user", int(user_id))


def batch_recommend(
    user_ids: Sequence[int],
    batch_size: int = 100,
    *,
    n: int = DESIGN_LIST_LENGTH,
    engine: serving_engine.RecommendationEngine | None = None,
) -> Iterator[tuple[int, Recommendations | None]]:
    """(profile id, its Recommendations) for each id, `batch_size` at a time, through the engine's request path
    (the response cache included); None for an unknown profile."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, not {batch_size}")
    if not 1 <= n <= MAX_N:
        raise ValueError(f"n must be 1..{MAX_N}")
    serving = engine or RecommendationEngine()
    for start in range(0, len(user_ids), batch_size):
        for user_id in user_ids[start : start + batch_size]:
            yield int(user_id), _recommend_or_none(serving, int(user_id), n)


def diversify_recommendations(
    items: Iterable[Scored], lambda_param: float = 0.7, *, n: int = DESIGN_LIST_LENGTH
) -> list[Scored]:
    """The engine's diversification of ranked items (anything with content_id and score, e.g. RankedItems): MMR
    with lambda_param (1.0 pure relevance, 0.0 pure diversity) over genre and MF-factor similarity, then the
    homepage mix repair. Returns at most n of the items, in display order."""
    items = list(items)
    if not items:
        return []
    models = serving_state.models()
    rows = _catalog_rows(models, [item.content_id for item in items])
    picked = diversify_titles(
        models.catalog,
        rows,
        np.array([item.score for item in items], np.float64),
        k=min(n, len(items)),
        today_days=int(timezone.now().timestamp() // serving_engine.SECONDS_PER_DAY),
        item_factors=_mf_factors(models, rows),
        lam=float(lambda_param),
    )
    return [items[int(i)] for i in picked]


def similarity(item: Scored, other: Scored) -> float:
    """How alike two titles are to the diversification (cosine of their genre and MF-factor vectors, 0..1)."""
    models = serving_state.models()
    rows = _catalog_rows(models, [item.content_id, other.content_id])
    vectors = title_vectors(models.catalog, rows, item_factors=_mf_factors(models, rows))
    return float(np.clip(vectors[0] @ vectors[1], 0.0, 1.0))


def _recommend_or_none(serving: serving_engine.RecommendationEngine, profile_id: int, n: int) -> Recommendations | None:
    try:
        return serving.recommend(user_id=profile_id, n=n)
    except ProfileNotFound:
        return None


def _catalog_rows(models: ServingModels, content_ids: list[int]) -> np.ndarray:
    rows, known = models.catalog.positions(np.asarray(content_ids, np.int64))
    if not known.all():
        unknown = np.asarray(content_ids)[~known][:5].tolist()
        raise ValueError(f"titles not in the catalog: {unknown}")
    return rows


def _mf_factors(models: ServingModels, rows: np.ndarray) -> np.ndarray | None:
    """The active MF's item factors of these catalog rows (zero rows for titles it does not know), or None."""
    mf = models.get(ModelKind.MATRIX_FACTORIZATION)
    if mf is None:
        return None
    items = mf.alignment.items[rows]
    factors = np.asarray(mf.model.item_factors[np.maximum(items, 0)], np.float32)
    factors[items < 0] = 0.0
    return factors
