"""The ranker's feature matrix for one profile's candidates: one vectorised float32 assembly, no per-title loop.

Columns are fixed by `RANKER_FEATURE_NAMES`; a trained model is tied to that tuple (LambdaMARTRanker refuses
another). Missing values are NaN, which LightGBM routes as missing. Sources and models the request lacks
keep their columns (flag 0, score NaN), so one model serves requests with any subset of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from features.ml.definitions import CONTENT_FEATURES, INTERACTION_FEATURES, USER_FEATURES
from recommendations.ml.catalog import CatalogIndex, popcount32
from recommendations.ml.sources import SOURCES

# The candidate sources, in a fixed column order: reordering or renaming them retires every trained ranker.
SOURCE_SLOTS: tuple[str, ...] = tuple(SOURCES)
# Models that score every candidate (not only the ones they proposed).
MODEL_SLOTS = ("mf", "ease", "ncf", "content")

DEVICE_TV = 1  # users.models.DeviceType.TV: the one screen where 4K and HDR show
BASIC_TIER_BIT = 1  # catalog.models.SubscriptionTier.bit(BASIC)
DAYS_PER_YEAR = 365.2425

_SOURCE_NAMES = tuple(f"source_{slot}_{part}" for slot in SOURCE_SLOTS for part in ("flag", "score", "rank"))
_MODEL_NAMES = tuple(f"model_{slot}_{part}" for slot in MODEL_SLOTS for part in ("score", "z", "percentile"))
_USER_NAMES = (
    "user_watch_hours",
    "user_session_minutes",
    "user_completion_rate",
    "user_binge_score",
    "user_top_genre_share",
)
_CONTENT_NAMES = (
    "title_view_count_7d",
    "title_popularity",
    "title_trending",
    "title_avg_completion",
    "title_avg_rating",
    "title_popularity_percentile",
    "title_popularity_z",
)
_INTERACTION_NAMES = (
    "has_watched",
    "watch_percentage",
    "days_since_watched",
    "genre_affinity",
    "genre_affinity_z",
    "favorite_genre_matches",
)
_CONTEXT_NAMES = (
    "title_age_days",
    "release_year",
    "years_since_release",
    "is_original",
    "premium_only",
    "maturity",
    "is_series",
    "genre_count",
    "has_4k",
    "has_hdr",
    "tv_and_4k",
    "tv_and_hdr",
    "device_type",
    "hour",
    "weekday",
    "user_is_premium",
)
RANKER_FEATURE_NAMES: tuple[str, ...] = (
    *_SOURCE_NAMES,
    "source_count",
    "source_best_rank",
    *_MODEL_NAMES,
    "model_mean_z",
    *_USER_NAMES,
    *_CONTENT_NAMES,
    *_INTERACTION_NAMES,
    *_CONTEXT_NAMES,
)
FEATURE_INDEX = {name: i for i, name in enumerate(RANKER_FEATURE_NAMES)}

_USER_SLICES = USER_FEATURES.slices
_CONTENT_SLICES = CONTENT_FEATURES.slices
_INTERACTION_SLICES = INTERACTION_FEATURES.slices
_SOURCES_AT = FEATURE_INDEX["source_collaborative_flag"]
_MODELS_AT = FEATURE_INDEX["model_mf_score"]
_CONTENT_AT = FEATURE_INDEX["title_view_count_7d"]
_INTERACTION_AT = FEATURE_INDEX["has_watched"]
_CONTEXT_AT = FEATURE_INDEX["title_age_days"]
_USER_AT = FEATURE_INDEX["user_watch_hours"]
_LOW_32 = np.uint64(0xFFFFFFFF)
_TITLE_WIDTH = 10  # title_age_days … has_hdr: per title and day, the same for every request
# Stored columns copied as they are, in the order of the ranker's columns that take them.
_USER_COLUMNS = np.array(
    [
        _USER_SLICES[name].start
        for name in ("total_watch_hours", "avg_session_duration", "completion_rate", "binge_watching_score")
    ]
)
_CONTENT_COLUMNS = np.array(
    [
        _CONTENT_SLICES[name].start
        for name in ("view_count_7d", "popularity_score", "trending_score", "avg_completion_rate", "avg_rating")
    ]
)
_INTERACTION_COLUMNS = np.array(
    [_INTERACTION_SLICES[name].start for name in ("has_watched", "watch_percentage", "days_since_watched")]
)


@dataclass(frozen=True)
class RankingContext:
    """The request's context. device_type: users.models.DeviceType (1 TV, 2 mobile, 3 tablet, 4 web, 5 console)."""

    hour: int  # 0-23, the profile's local hour
    weekday: int  # 0 Monday - 6 Sunday
    device_type: int
    country: str
    today_days: int  # days since 1970-01-01
    premium: bool  # the account's tier is premium


@dataclass(frozen=True, eq=False)
class RankingInput:
    """Everything the features of n candidates of one profile read; arrays are not copied.

    candidate_ids: int64 (n,); source_names: names of the columns of source_flags, bool (n, S), and
    source_scores, float32 (n, S), NaN where a source does not list the candidate (names from SOURCE_SLOTS,
    any subset and order, as in MergedCandidates); model_scores: MODEL_SLOTS name -> float32 (n,), the
    model's score of every candidate, NaN where it has none; user: float32 (USER_FEATURES.width,);
    content: float32 (n, CONTENT_FEATURES.width); interaction: float32 (n, INTERACTION_FEATURES.width);
    rows: int (n,), the candidates' rows in `catalog`.
    """

    candidate_ids: np.ndarray
    source_names: tuple[str, ...]
    source_flags: np.ndarray
    source_scores: np.ndarray
    model_scores: Mapping[str, np.ndarray]
    user: np.ndarray
    content: np.ndarray
    interaction: np.ndarray
    catalog: CatalogIndex
    rows: np.ndarray
    context: RankingContext


@lru_cache(maxsize=64)
def _source_columns(source_names: tuple[str, ...]) -> np.ndarray:
    unknown = [name for name in source_names if name not in SOURCE_SLOTS]
    if unknown:
        raise ValueError(f"unknown candidate sources {unknown}; known: {', '.join(SOURCE_SLOTS)}")
    return np.array([SOURCE_SLOTS.index(name) for name in source_names], dtype=np.int64)


def _descending_ranks(values: np.ndarray) -> np.ndarray:
    """0-based rank of each value in its column, best (largest) first, ties by row; NaN rows rank last (caller
    masks them). A stable argsort's ranks, from one sort of unique integer keys (value bits, then row): ~2x faster
    than numpy's stable argsort of floats for the request's (500, 7) and (500, 4) blocks."""
    n, k = values.shape
    v = np.ascontiguousarray(values.T, dtype=np.float32)
    v += np.float32(0.0)  # -0.0 becomes 0.0: the two tie, as they compare equal
    bits = v.view(np.uint32)
    key = np.where(bits >> np.uint32(31), bits, ~bits & np.uint32(0x7FFFFFFF))  # the larger value, the smaller key
    key[np.isnan(v)] = np.uint32(0xFFFFFFFF)  # every NaN after every number, in row order
    keys = (key.astype(np.uint64) << np.uint64(32)) | np.arange(n, dtype=np.uint64)
    keys.sort(axis=1)
    ranks = np.empty((k, n), np.float32)
    ranks[np.arange(k)[:, None], (keys & _LOW_32).astype(np.intp)] = np.arange(n, dtype=np.float32)
    return ranks.T


def _column_stats(values: np.ndarray, present: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per column: count of non-NaN values, their mean and standard deviation (no warnings on empty columns)."""
    count = present.sum(axis=0)
    filled = np.where(present, values, 0.0)
    mean = filled.sum(axis=0) / np.maximum(count, 1)
    variance = (np.where(present, values - mean, 0.0) ** 2).sum(axis=0) / np.maximum(count, 1)
    return count, mean, np.sqrt(variance)


def _check(inp: RankingInput) -> int:
    n = len(inp.candidate_ids)
    s = len(inp.source_names)
    shapes = {
        "source_flags": (inp.source_flags.shape, (n, s)),
        "source_scores": (inp.source_scores.shape, (n, s)),
        "user": (inp.user.shape, (USER_FEATURES.width,)),
        "content": (inp.content.shape, (n, CONTENT_FEATURES.width)),
        "interaction": (inp.interaction.shape, (n, INTERACTION_FEATURES.width)),
        "rows": (inp.rows.shape, (n,)),
    }
    for name, (got, expected) in shapes.items():
        if got != expected:
            raise ValueError(f"RankingInput.{name} has shape {got}, expected {expected}")
    for name, scores in inp.model_scores.items():
        if name not in MODEL_SLOTS:
            raise ValueError(f"unknown model {name!r}; known: {', '.join(MODEL_SLOTS)}")
        if scores.shape != (n,):
            raise ValueError(f"model_scores[{name!r}] has shape {scores.shape}, expected {(n,)}")
    return n


@lru_cache(maxsize=4)
def _title_block(catalog: CatalogIndex, today_days: int) -> np.ndarray:
    """float32 (len(catalog), _TITLE_WIDTH): the per-title columns title_age_days … has_hdr of every title as of
    `today_days`, computed once per catalog and day (a new catalog is a new object); a request gathers its rows."""
    block = np.empty((len(catalog), _TITLE_WIDTH), np.float32)
    release_year = catalog.release_year.astype(np.float32)
    release_year[release_year <= 0] = np.nan
    block[:, 0] = today_days - catalog.date_added_days
    block[:, 1] = release_year
    block[:, 2] = 1970 + today_days / DAYS_PER_YEAR - release_year
    block[:, 3] = catalog.is_original
    block[:, 4] = (catalog.available_tiers & BASIC_TIER_BIT) == 0
    block[:, 5] = catalog.maturity
    block[:, 6] = catalog.is_series
    block[:, 7] = popcount32(catalog.genre_masks)
    block[:, 8] = catalog.has_4k
    block[:, 9] = catalog.has_hdr
    block.setflags(write=False)
    return block


def assemble(inp: RankingInput) -> np.ndarray:
    """The feature matrix of the candidates: float32 (n, len(RANKER_FEATURE_NAMES)), NaN for missing values.

    Within-request features (source ranks, model z-scores and percentiles, popularity percentile) compare
    the candidates with each other, which is what a per-query ranker needs when raw scales drift between
    users and between model versions. The per-title columns come from a block computed once per catalog and
    day (_title_block), gathered by row.
    """
    n = _check(inp)
    out = np.empty((n, len(RANKER_FEATURE_NAMES)), np.float32)

    # Sources: flag, score and rank inside the source for each of the fixed slots.
    slots = len(SOURCE_SLOTS)
    flags = np.zeros((n, slots), bool)
    scores = np.full((n, slots), np.nan, np.float32)
    columns = _source_columns(tuple(inp.source_names))
    flags[:, columns] = inp.source_flags
    scores[:, columns] = np.where(inp.source_flags, inp.source_scores, np.nan)
    ranks = np.where(flags, _descending_ranks(scores), np.nan)
    block = out[:, _SOURCES_AT : _SOURCES_AT + 3 * slots].reshape(n, slots, 3)
    block[:, :, 0] = flags
    block[:, :, 1] = scores
    block[:, :, 2] = ranks
    # Counts and minima along a row, over column-major copies (one vector op per column, not a loop per row).
    out[:, _SOURCES_AT + 3 * slots] = np.asfortranarray(flags).sum(axis=1)
    with np.errstate(invalid="ignore"):
        out[:, _SOURCES_AT + 3 * slots + 1] = np.fmin.reduce(
            np.asfortranarray(ranks), axis=1
        )  # NaN: no source lists it

    # Models: raw score, z-score and percentile (1 best, 0 worst) within the request.
    models = len(MODEL_SLOTS)
    model_scores = np.full((n, models), np.nan, np.float32)
    for slot, name in enumerate(MODEL_SLOTS):
        given = inp.model_scores.get(name)
        if given is not None:
            model_scores[:, slot] = given
    present = ~np.isnan(model_scores)
    count, mean, std = _column_stats(model_scores, present)
    z = np.where(std > 0, (model_scores - mean) / np.where(std > 0, std, 1.0), 0.0)
    z = np.where(present, z, np.nan)
    percentile = 1.0 - _descending_ranks(model_scores) / np.maximum(count - 1, 1)
    block = out[:, _MODELS_AT : _MODELS_AT + 3 * models].reshape(n, models, 3)
    block[:, :, 0] = model_scores
    block[:, :, 1] = z
    block[:, :, 2] = np.where(present, percentile, np.nan)
    with np.errstate(invalid="ignore"):
        out[:, _MODELS_AT + 3 * models] = np.where(present, z, 0.0).sum(axis=1) / np.asfortranarray(present).sum(axis=1)

    # User: the same value on every row; trees use it to condition the per-title features.
    user = inp.user
    affinity = user[_USER_SLICES["genre_affinity"]]
    out[:, _USER_AT : _USER_AT + 4] = user[_USER_COLUMNS]
    out[:, _USER_AT + 4] = affinity.max()

    # Content: the stored title features, and popularity relative to the other candidates.
    content = inp.content
    out[:, _CONTENT_AT : _CONTENT_AT + 5] = content[:, _CONTENT_COLUMNS]
    popularity = content[:, _CONTENT_SLICES["popularity_score"]][:, 0]
    relative = np.stack([popularity, inp.interaction[:, _INTERACTION_SLICES["genre_affinity"]][:, 0]], axis=1)
    relative_present = ~np.isnan(relative)
    count, mean, std = _column_stats(relative, relative_present)
    relative_z = np.where(std > 0, (relative - mean) / np.where(std > 0, std, 1.0), 0.0)
    out[:, _CONTENT_AT + 5] = 1.0 - _descending_ranks(relative[:, :1])[:, 0] / max(int(count[0]) - 1, 1)
    out[:, _CONTENT_AT + 6] = relative_z[:, 0]

    # Interaction: the request-time features, the affinity z-score, favourite genres the title has.
    out[:, _INTERACTION_AT : _INTERACTION_AT + 3] = inp.interaction[:, _INTERACTION_COLUMNS]
    out[:, _INTERACTION_AT + 3] = relative[:, 1]
    out[:, _INTERACTION_AT + 4] = relative_z[:, 1]
    catalog, rows = inp.catalog, inp.rows
    favorites = user[_USER_SLICES["favorite_genres"]]
    favorite_mask = catalog.genre_mask_of(favorites[favorites >= 0].astype(np.int64))
    out[:, _INTERACTION_AT + 5] = popcount32(catalog.genre_masks[rows] & favorite_mask)

    # Catalog and context: the title block's rows, the screen's 4K/HDR, the request's constants.
    context = inp.context
    titles = out[:, _CONTEXT_AT : _CONTEXT_AT + _TITLE_WIDTH]
    np.take(_title_block(catalog, int(context.today_days)), rows, axis=0, out=titles)
    if context.device_type == DEVICE_TV:
        out[:, _CONTEXT_AT + 10 : _CONTEXT_AT + 12] = titles[:, 8:10]
    else:
        out[:, _CONTEXT_AT + 10 : _CONTEXT_AT + 12] = 0.0
    out[:, _CONTEXT_AT + 12 :] = (context.device_type, context.hour, context.weekday, context.premium)
    return out
