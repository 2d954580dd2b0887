"""Candidate generation for one request: the serving state and profile read, handed to the one pipeline.

The pipeline itself (sources, quotas, merge) is pure and shared with ranker training and the offline
evaluation: recommendations.ml.candidate_pipeline. Here only what the request holds becomes its inputs:
the profile's entitlements as an allowed mask, its history, the active models and the trending list.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

from recommendations.ml.candidate_pipeline import (
    TOTAL_CANDIDATES,
    CandidateModels,
    CandidateSet,
    ProfileHistory,
    favourite_genres,
    generate,
)
from recommendations.models import ModelKind
from recommendations.serving.context import ProfileState
from recommendations.serving.state import ServingModels, TrendingList

__all__ = ["CandidateSet", "candidates_generate", "pipeline_inputs"]
_favourite_genres = favourite_genres  # the name tests and bench/serving.py use


def pipeline_inputs(state: ProfileState, models: ServingModels) -> tuple[ProfileHistory, CandidateModels]:
    """The pipeline's view of a profile and of the serving models."""
    catalog = models.catalog
    profile = ProfileHistory(
        profile_id=state.profile_id,
        allowed=catalog.allowed(tier=state.tier, country=state.country, maturity_cap=state.maturity_cap),
        onboarding_genre_ids=tuple(state.onboarding_genre_ids),
        title_ids=state.history_title_ids,
        watch_percentage=state.history_watch_percentage,
        last_watched=state.history_last_watched,
    )
    inputs = CandidateModels(
        catalog=catalog,
        popularity=models.popularity,
        mf=models.get(ModelKind.MATRIX_FACTORIZATION),
        mf_gram=models.mf_gram,
        content=models.get(ModelKind.CONTENT),
        ease=models.get(ModelKind.EASE),
    )
    return profile, inputs


def candidates_generate(
    state: ProfileState,
    models: ServingModels,
    trending: TrendingList,
    *,
    now: dt.datetime,
    quotas: dict[str, int] | None = None,
    total: int = TOTAL_CANDIDATES,
) -> CandidateSet:
    profile, inputs = pipeline_inputs(state, models)
    result = generate(
        profile, inputs, (trending.rows, trending.scores), now_seconds=now.timestamp(), quotas=quotas, total=total
    )
    if trending.from_store:
        return result
    return dataclasses.replace(result, degraded=("trending_from_popularity", *result.degraded))
