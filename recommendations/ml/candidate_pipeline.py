"""Candidate generation for one profile (pure): the sources, merged into ~500 unique candidates.

The one pipeline: serving (recommendations.serving.candidate_inputs, over what the request read), ranker training and the
offline evaluation (recommendations.ml.evaluation_candidates, over a data set's train split) all call
`generate` with the same parameters.

Sources (quotas in recommendations.ml.defaults.CANDIDATE_QUOTAS): collaborative (MF user vector, folded in
from the live history for profiles the model has not seen), trending (a ranked list given by the caller),
continue watching (10–90 % watched), similar to watched (content neighbours of the recent history),
new releases (recently added, in the profile's genres); EASE backfills when it is active (small catalogs).
A profile with no history gets popular titles in its onboarding genres instead of collaborative.
Every source only proposes allowed titles.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from recommendations.ml import defaults, sources
from recommendations.ml.candidates import MergedCandidates, merge_candidates
from recommendations.ml.catalog import GENRE_BITS, CatalogIndex

TOTAL_CANDIDATES = 500
HISTORY_LIMIT = 200  # newest viewings a request reads: enough for every source
SIMILAR_HISTORY = 50  # newest viewings that seed "similar to watched"
RECENCY_HALF_LIFE_DAYS = 30.0
FAVOURITE_GENRES = 3
EASE_DEPTH = 200  # EASE has no quota of its own: it backfills from this many titles
SECONDS_PER_DAY = 86_400.0


class Aligned(Protocol):
    """A fitted model and its item index mapped onto catalog rows (serving's AlignedModel is one)."""

    @property
    def model(self) -> Any: ...

    @property
    def alignment(self) -> sources.ItemAlignment: ...


@dataclass(frozen=True, eq=False)
class CandidateModels:
    """What the sources score with; a missing model is None (its source is skipped, flagged)."""

    catalog: CatalogIndex
    popularity: np.ndarray  # float32 over catalog rows
    mf: Aligned | None = None
    mf_gram: np.ndarray | None = None  # YᵀY of the MF item factors, for folding in unseen profiles
    content: Aligned | None = None
    ease: Aligned | None = None


@dataclass(frozen=True, eq=False)
class ProfileHistory:
    """A profile as the sources see it: who it is, what it may watch, its newest viewings (newest first)."""

    profile_id: int
    allowed: np.ndarray  # bool over catalog rows
    onboarding_genre_ids: tuple[int, ...] = ()
    title_ids: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    watch_percentage: np.ndarray = field(default_factory=lambda: np.empty(0, np.float32))
    last_watched: np.ndarray = field(default_factory=lambda: np.empty(0, np.float64))  # epoch seconds


@dataclass(frozen=True, eq=False)
class CandidateSet:
    """~500 candidates: catalog rows, title ids, and per source whether it proposed each and its score."""

    rows: np.ndarray  # int64 (m,) catalog rows
    merged: MergedCandidates  # content_ids, sources, proposed (m, S), scores (m, S)
    history_rows: np.ndarray  # the profile's viewed titles as catalog rows, newest first (unique)
    favourite_genres: int  # genre bit mask: onboarding genres plus the most watched recent genres
    cold_start: bool
    user_vector: np.ndarray | None = None  # the MF vector used (trained or folded in), for ranker scores
    degraded: tuple[str, ...] = ()
    source_ms: dict[str, float] = field(default_factory=dict)

    @property
    def content_ids(self) -> np.ndarray:
        return self.merged.content_ids


def generate(
    profile: ProfileHistory,
    models: CandidateModels,
    trending: tuple[np.ndarray, np.ndarray],
    *,
    now_seconds: float,
    quotas: dict[str, int] | None = None,
    total: int = TOTAL_CANDIDATES,
) -> CandidateSet:
    """The candidates of one profile; `trending`: (catalog rows, scores), best first."""
    catalog, allowed = models.catalog, profile.allowed
    quotas = dict(quotas or defaults.CANDIDATE_QUOTAS)
    rows, known = catalog.positions(profile.title_ids)
    history_rows, first = np.unique(rows[known], return_index=True)
    history_rows = history_rows[np.argsort(first)]  # unique, newest first
    h_rows, h_pct = rows[known], np.asarray(profile.watch_percentage)[known]
    h_last = np.asarray(profile.last_watched, np.float64)[known]
    onboarding = catalog.genre_mask_of(np.array(profile.onboarding_genre_ids, np.int64))
    favourite = favourite_genres(catalog.genre_masks, onboarding, history_rows)
    degraded: list[str] = []
    lists: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    timings: dict[str, float] = {}

    def timed(name: str, make: Callable[[], tuple[np.ndarray, np.ndarray]]) -> None:
        started = time.perf_counter()
        lists[name] = make()
        timings[name] = (time.perf_counter() - started) * 1000

    cold = not len(history_rows)
    vector = None
    mf = models.mf
    if mf is not None and not cold:
        vector = user_vector(profile.profile_id, mf.model, mf.alignment, models.mf_gram, h_rows, h_pct)
        if vector is not None:
            timed(
                sources.COLLABORATIVE,
                lambda: sources.collaborative(
                    vector,
                    mf.model.item_factors,
                    mf.alignment,
                    quotas[sources.COLLABORATIVE] * 2,
                    allowed=allowed,
                    exclude_rows=history_rows,
                ),
            )
    elif mf is None:
        degraded.append("no_collaborative_model")
    if sources.COLLABORATIVE not in lists:
        quota = quotas.pop(sources.COLLABORATIVE, 0)
        quotas[sources.POPULAR_IN_GENRES] = quota
        timed(
            sources.POPULAR_IN_GENRES,
            lambda: sources.popular_in_genres(
                models.popularity,
                quota,
                allowed=allowed,
                genre_masks=catalog.genre_masks,
                wanted_genres=int(favourite),
                exclude_rows=history_rows,
            ),
        )
    timed(
        sources.TRENDING,
        lambda: sources.ranked_list(
            trending[0], trending[1], quotas[sources.TRENDING] * 2, allowed=allowed, exclude_rows=history_rows
        ),
    )
    timed(
        sources.CONTINUE_WATCHING,
        lambda: sources.continue_watching(
            h_rows, h_pct, h_last, now_seconds, quotas[sources.CONTINUE_WATCHING], allowed=allowed
        ),
    )
    content = models.content
    if content is not None and not cold:
        recent = slice(0, SIMILAR_HISTORY)
        age_days = np.maximum(now_seconds - h_last[recent], 0) / SECONDS_PER_DAY
        weights = np.maximum(h_pct[recent], 0.1) * 0.5 ** (age_days / RECENCY_HALF_LIFE_DAYS)
        timed(
            sources.SIMILAR_TO_WATCHED,
            lambda: sources.similar_to_watched(
                content.model.similarity,
                content.alignment,
                h_rows[recent],
                weights,
                quotas[sources.SIMILAR_TO_WATCHED] * 2,
                allowed=allowed,
                exclude_rows=history_rows,
            ),
        )
    elif content is None:
        degraded.append("no_content_model")
    today = int(now_seconds // SECONDS_PER_DAY)
    timed(
        sources.NEW_RELEASES,
        lambda: sources.new_releases(
            catalog.date_added_days,
            today,
            quotas[sources.NEW_RELEASES] * 2,
            allowed=allowed,
            exclude_rows=history_rows,
            genre_masks=catalog.genre_masks,
            wanted_genres=int(favourite),
        ),
    )
    ease = models.ease
    if ease is not None and not cold:
        quotas.setdefault(sources.EASE_SOURCE, 0)
        timed(sources.EASE_SOURCE, lambda: ease_scores(ease, h_rows, allowed, history_rows, EASE_DEPTH))

    started = time.perf_counter()
    used = {name: quota for name, quota in quotas.items() if name in lists}
    merged = merge_candidates(lists, used, total)
    timings["merge"] = (time.perf_counter() - started) * 1000
    candidate_rows = merged.content_ids  # the lists carry catalog rows; turn them into title ids
    merged = MergedCandidates(catalog.content_ids[candidate_rows], merged.sources, merged.proposed, merged.scores)
    return CandidateSet(candidate_rows, merged, history_rows, int(favourite), cold, vector, tuple(degraded), timings)


def user_vector(
    profile_id: int,
    model: Any,
    alignment: sources.ItemAlignment,
    gram: np.ndarray | None,
    h_rows: np.ndarray,
    h_pct: np.ndarray,
) -> np.ndarray | None:
    """The trained vector of a known profile, else the ALS fold-in of its live history."""
    index = model.user_map.to_index(np.array([profile_id]), strict=False)[0]
    if index >= 0:
        return np.asarray(model.user_factors[index], np.float32)
    items = alignment.items[h_rows]
    known = items >= 0
    if not known.any() or gram is None:
        return None
    if model.objective != "als":  # no closed form: the mean of the watched items' vectors
        return np.asarray(np.asarray(model.item_factors[items[known]], np.float32).mean(axis=0), np.float32)
    confidence = model.alpha * np.asarray(h_pct[known], np.float64) * 5.0
    return sources.als_fold_in(model.item_factors, items[known], confidence, model.regularization, gram)


def ease_scores(
    ease: Aligned, h_rows: np.ndarray, allowed: np.ndarray, exclude_rows: np.ndarray, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """x_u B over the watched titles' rows of EASE's item weights: top-n catalog rows."""
    items = ease.alignment.items[h_rows]
    items = np.unique(items[items >= 0])
    if not len(items):
        return sources.EMPTY
    scores = np.asarray(ease.model.item_weights[items], np.float32).sum(axis=0)
    picked, values = sources.top_rows(
        scores, n, allowed=ease.alignment.model_mask(allowed), exclude=ease.alignment.to_model(exclude_rows)
    )
    return ease.alignment.rows[picked], values


def favourite_genres(genre_masks: np.ndarray, onboarding: int | np.uint32, history_rows: np.ndarray) -> np.uint32:
    """Onboarding genres plus the FAVOURITE_GENRES most frequent genres of the recent history."""
    recent = genre_masks[history_rows[:SIMILAR_HISTORY]]
    if not len(recent):
        return np.uint32(onboarding)
    bits = (recent[:, None] >> np.arange(GENRE_BITS, dtype=np.uint32)) & np.uint32(1)
    counts = bits.sum(axis=0).astype(np.int64)  # signed: the descending sort below negates it
    top = np.argsort(-counts, kind="stable")[:FAVOURITE_GENRES]
    top = top[counts[top] > 0]
    mask = np.bitwise_or.reduce(np.left_shift(np.uint32(1), top.astype(np.uint32)), initial=np.uint32(0))
    return np.uint32(np.uint32(onboarding) | mask)
