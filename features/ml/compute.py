"""Vectorised feature computation for many entities at once (numpy, pandas, scipy; no Django).

The definitions live in `features.ml.definitions`. Times are UTC; only viewings that started before `as_of`
count, which is what keeps offline snapshots point-in-time correct.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from features.ml.definitions import (
    BINGE_MIN_EPISODES,
    CONTENT_FEATURES,
    GENRE_SLOTS,
    INTERACTION_FEATURES,
    POPULARITY_DECAY,
    POPULARITY_HORIZON_DAYS,
    SESSION_GAP_MINUTES,
    TRENDING_WINDOW_DAYS,
    USER_FEATURES,
    FeatureSet,
)

# What user features read of each viewing (watch_percentage is not needed: `completed` says enough).
VIEWING_COLUMNS = ("profile_id", "title_id", "started_at", "last_watched_at", "watch_seconds", "completed")
CONTENT_VIEWING_COLUMNS = ("title_id", "started_at", "watch_percentage", "completed")
# What SQL (features.selectors) or `content_aggregates` hand to `content_features`, per title.
CONTENT_AGGREGATES = ("view_count_7d", "view_count_prev_7d", "popularity_score", "avg_completion_rate", "avg_rating")
US_PER_DAY = 86_400 * 1_000_000


@dataclass(frozen=True)
class FeatureMatrix:
    """Rows of one feature set: `values[i]` belongs to `ids[i]`, columns in the schema's order."""

    features: FeatureSet
    ids: np.ndarray  # (n,) int64, ascending
    values: np.ndarray  # (n, features.width) float32

    def column(self, name: str) -> np.ndarray:
        block = self.values[:, self.features.slices[name]]
        return block[:, 0] if block.shape[1] == 1 else block

    def frame(self) -> pd.DataFrame:
        """One flat column per stored float (`genre_affinity_0`, ...) plus `entity_id`."""
        frame = pd.DataFrame(self.values, columns=list(self.features.columns))
        frame.insert(0, "entity_id", self.ids)
        return frame


@dataclass(frozen=True)
class CatalogArrays:
    """What the features need of the catalog: which titles are series, and their genres by slot."""

    title_ids: np.ndarray  # (titles,) int64, ascending
    is_series: np.ndarray  # (titles,) bool
    genre_ids: np.ndarray  # (GENRE_SLOTS,) int64: the genre id of each slot, -1 for unused slots
    genre_matrix: sp.csr_matrix  # (titles, GENRE_SLOTS) float32 0/1

    @classmethod
    def from_frames(cls, titles: pd.DataFrame, title_genres: pd.DataFrame, genre_ids: Iterable[int]) -> CatalogArrays:
        """`titles`: title_id, is_series; `title_genres`: title_id, genre_id; `genre_ids`: every genre."""
        _require(titles, ("title_id", "is_series"), "titles")
        _require(title_genres, ("title_id", "genre_id"), "title_genres")
        vocabulary = np.unique(np.asarray(list(genre_ids), dtype=np.int64))
        if len(vocabulary) > GENRE_SLOTS:
            raise ValueError(f"{len(vocabulary)} genres exceed GENRE_SLOTS={GENRE_SLOTS}: raise it, bump the schemas")
        ordered = titles.sort_values("title_id")
        title_ids = ordered["title_id"].to_numpy(np.int64)
        rows, known_title = _positions(title_ids, title_genres["title_id"].to_numpy(np.int64))
        slots, known_genre = _positions(vocabulary, title_genres["genre_id"].to_numpy(np.int64))
        keep = known_title & known_genre
        matrix = sp.csr_matrix(
            (np.ones(keep.sum(), dtype=np.float32), (rows[keep], slots[keep])), shape=(len(title_ids), GENRE_SLOTS)
        )
        matrix.data[:] = 1.0  # a repeated (title, genre) pair sums to 2 in the constructor
        padded = np.full(GENRE_SLOTS, -1, dtype=np.int64)
        padded[: len(vocabulary)] = vocabulary
        return cls(title_ids, ordered["is_series"].to_numpy(bool), padded, matrix)

    def positions(self, title_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Row positions of `title_ids` (clipped) and whether each is in the catalog."""
        return _positions(self.title_ids, title_ids)


def user_features(
    viewings: pd.DataFrame, catalog: CatalogArrays, *, as_of: Any, profile_ids: Iterable[int] | None = None
) -> FeatureMatrix:
    """User features for every profile in `viewings` (and in `profile_ids`, which may have none).

    viewings: VIEWING_COLUMNS, one row per viewing, any order; times UTC datetimes.
    Returns one row per profile, ascending ids; an empty history gives the declared defaults.
    """
    _require(viewings, VIEWING_COLUMNS, "viewings")
    as_of_us = _epoch_us([as_of])[0]
    started_all = _epoch_us(viewings["started_at"])
    keep = started_all < as_of_us
    profile = viewings["profile_id"].to_numpy(np.int64)[keep]
    order = np.lexsort((started_all[keep], profile))
    profile, started = profile[order], started_all[keep][order]
    title = viewings["title_id"].to_numpy(np.int64)[keep][order]
    ended = _epoch_us(viewings["last_watched_at"])[keep][order]
    seconds = viewings["watch_seconds"].to_numpy(np.float64)[keep][order]
    completed = viewings["completed"].to_numpy(bool)[keep][order]

    ids = np.unique(profile) if profile_ids is None else np.union1d(profile, np.asarray(list(profile_ids), np.int64))
    group = np.searchsorted(ids, profile)
    n = len(ids)
    views = np.bincount(group, minlength=n).astype(np.float64)
    total_seconds = np.bincount(group, weights=seconds, minlength=n)

    # Sessions: a viewing opens one when it starts SESSION_GAP after the latest end so far in its profile.
    first_of_profile = np.ones(len(profile), dtype=bool)
    first_of_profile[1:] = profile[1:] != profile[:-1]
    latest_end = pd.Series(ended).groupby(group).cummax().to_numpy()
    previous_end = np.roll(latest_end, 1)  # wraps at row 0, which opens a session anyway
    opens = first_of_profile | (started - previous_end >= SESSION_GAP_MINUTES * 60 * 1_000_000)
    session = np.cumsum(opens, dtype=np.int64) - 1
    sessions = np.bincount(group, weights=opens, minlength=n)

    # Binge: viewings in a session with BINGE_MIN_EPISODES or more viewings of the same series.
    position, known = catalog.positions(title)
    series = np.nonzero(known & catalog.is_series[position])[0]
    _, same, counts = np.unique((session[series] << 32) | position[series], return_inverse=True, return_counts=True)
    binge = np.zeros(len(profile), dtype=np.float64)
    binge[series] = counts[same] >= BINGE_MIN_EPISODES

    affinity = _genre_affinity(group[known], position[known], seconds[known], catalog, n)
    top = np.argsort(-affinity, axis=1, kind="stable")[:, :3]
    favorite = np.where(np.take_along_axis(affinity, top, axis=1) > 0, catalog.genre_ids[top], -1)

    values = np.empty((n, USER_FEATURES.width), dtype=np.float32)
    slices = USER_FEATURES.slices
    values[:, slices["total_watch_hours"]] = (total_seconds / 3600)[:, None]
    values[:, slices["avg_session_duration"]] = _ratio(total_seconds / 60, sessions, 0.0)[:, None]
    values[:, slices["favorite_genres"]] = favorite
    completions = np.bincount(group, completed.astype(np.float64), n)
    values[:, slices["completion_rate"]] = _ratio(completions, views, np.nan)[:, None]
    values[:, slices["binge_watching_score"]] = _ratio(np.bincount(group, binge, n), views, 0.0)[:, None]
    values[:, slices["genre_affinity"]] = affinity
    return FeatureMatrix(USER_FEATURES, ids, values)


def _genre_affinity(
    group: np.ndarray, position: np.ndarray, seconds: np.ndarray, catalog: CatalogArrays, n: int
) -> np.ndarray:
    """(n, GENRE_SLOTS) watch-time share per genre; a title's time is split evenly over its genres."""
    per_title = np.asarray(catalog.genre_matrix.sum(axis=1)).ravel()
    weights = sp.diags(_ratio(np.ones_like(per_title), per_title, 0.0)) @ catalog.genre_matrix
    watched = sp.csr_matrix((seconds, (group, position)), shape=(n, len(catalog.title_ids)))
    affinity = np.asarray((watched @ weights).todense(), dtype=np.float64)
    return affinity / np.where(affinity.sum(axis=1, keepdims=True) > 0, affinity.sum(axis=1, keepdims=True), 1.0)


def content_aggregates(viewings: pd.DataFrame, *, as_of: Any) -> pd.DataFrame:
    """Per-title CONTENT_AGGREGATES from raw viewings (CONTENT_VIEWING_COLUMNS): the SQL's twin for tests
    and for one title at a time. Returns title_id plus CONTENT_AGGREGATES, one row per viewed title."""
    _require(viewings, CONTENT_VIEWING_COLUMNS, "viewings")
    as_of_us = _epoch_us([as_of])[0]
    started = _epoch_us(viewings["started_at"])
    keep = started < as_of_us
    age_days = (as_of_us - started[keep]) / US_PER_DAY
    frame = pd.DataFrame(
        {
            "title_id": viewings["title_id"].to_numpy(np.int64)[keep],
            "view_count_7d": age_days <= TRENDING_WINDOW_DAYS,
            "view_count_prev_7d": (age_days > TRENDING_WINDOW_DAYS) & (age_days <= 2 * TRENDING_WINDOW_DAYS),
            "popularity_score": np.where(
                age_days <= POPULARITY_HORIZON_DAYS, np.power(POPULARITY_DECAY, age_days), 0.0
            ),
            "avg_completion_rate": viewings["completed"].to_numpy(np.float64)[keep],
            "avg_rating": viewings["watch_percentage"].to_numpy(np.float64)[keep] * 5,
        }
    )
    sums = ["view_count_7d", "view_count_prev_7d", "popularity_score"]
    grouped = frame.groupby("title_id", sort=True)
    return grouped[sums].sum().join(grouped[["avg_completion_rate", "avg_rating"]].mean()).reset_index()


def content_features(
    aggregates: pd.DataFrame, catalog: CatalogArrays, *, title_ids: Iterable[int] | None = None
) -> FeatureMatrix:
    """Content features for `title_ids` (default: the whole catalog) from per-title aggregates.

    aggregates: title_id plus CONTENT_AGGREGATES; titles missing from it have no viewings.
    """
    _require(aggregates, ("title_id", *CONTENT_AGGREGATES), "aggregates")
    ids = catalog.title_ids if title_ids is None else np.unique(np.asarray(list(title_ids), dtype=np.int64))
    indexed = aggregates.set_index("title_id").reindex(ids)
    this_week = indexed["view_count_7d"].fillna(0).to_numpy(np.float64)
    last_week = indexed["view_count_prev_7d"].fillna(0).to_numpy(np.float64)
    position, known = catalog.positions(ids)
    genres = np.asarray(catalog.genre_matrix[position].todense(), dtype=np.float32) * known[:, None]

    values = np.empty((len(ids), CONTENT_FEATURES.width), dtype=np.float32)
    slices = CONTENT_FEATURES.slices
    values[:, slices["view_count_7d"]] = this_week[:, None]
    values[:, slices["popularity_score"]] = indexed["popularity_score"].fillna(0).to_numpy(np.float64)[:, None]
    values[:, slices["trending_score"]] = (np.log1p(this_week) - np.log1p(last_week))[:, None]
    for name in ("avg_completion_rate", "avg_rating"):
        values[:, slices[name]] = indexed[name].to_numpy(np.float64, na_value=np.nan)[:, None]
    values[:, slices["genre_indicator"]] = genres
    return FeatureMatrix(CONTENT_FEATURES, ids, values)


def interaction_features(
    *,
    user_affinity: np.ndarray,
    title_ids: np.ndarray,
    title_genres: np.ndarray,
    history: pd.DataFrame,
    as_of: Any,
) -> np.ndarray:
    """(n, 4) float32 INTERACTION_FEATURES for one profile and n candidate titles.

    user_affinity: (GENRE_SLOTS,) the profile's genre_affinity; title_genres: (n, GENRE_SLOTS) the titles'
    genre_indicator; history: the profile's viewings, columns title_id, watch_percentage, last_watched_at.
    """
    _require(history, ("title_id", "watch_percentage", "last_watched_at"), "history")
    title_ids = np.asarray(title_ids, dtype=np.int64)
    per_title = (
        pd.DataFrame(
            {
                "title_id": history["title_id"].to_numpy(np.int64),
                "watch_percentage": history["watch_percentage"].to_numpy(np.float64),
                "last_watched_us": _epoch_us(history["last_watched_at"]),
            }
        )
        .groupby("title_id")
        .max()
    )
    watched = per_title.reindex(title_ids)
    has_watched = watched["watch_percentage"].notna().to_numpy()
    days = (_epoch_us([as_of])[0] - watched["last_watched_us"].to_numpy(np.float64, na_value=np.nan)) / US_PER_DAY
    norms = np.linalg.norm(title_genres, axis=1) * np.linalg.norm(user_affinity)
    cosine = _ratio(np.asarray(title_genres, np.float64) @ np.asarray(user_affinity, np.float64), norms, 0.0)

    values = np.empty((len(title_ids), INTERACTION_FEATURES.width), dtype=np.float32)
    slices = INTERACTION_FEATURES.slices
    values[:, slices["has_watched"]] = has_watched[:, None]
    values[:, slices["watch_percentage"]] = watched["watch_percentage"].fillna(0).to_numpy(np.float64)[:, None]
    values[:, slices["days_since_watched"]] = days[:, None]
    values[:, slices["genre_affinity"]] = cosine[:, None]
    return values


def _epoch_us(values: Any) -> np.ndarray:
    """Microseconds since the Unix epoch (int64) of UTC datetimes, aware or naive."""
    index = pd.DatetimeIndex(values)
    if index.tz is not None:
        index = index.tz_convert("UTC").tz_localize(None)
    return index.to_numpy(dtype="datetime64[us]").astype(np.int64)


def _positions(sorted_ids: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if len(sorted_ids) == 0:
        return np.zeros(len(ids), dtype=np.int64), np.zeros(len(ids), dtype=bool)
    position = np.searchsorted(sorted_ids, ids).clip(0, len(sorted_ids) - 1)
    return position, sorted_ids[position] == ids


def _ratio(numerator: np.ndarray, denominator: np.ndarray, empty: float) -> np.ndarray:
    """numerator / denominator, `empty` where the denominator is 0."""
    out = np.full(np.shape(numerator), empty, dtype=np.float64)
    np.divide(numerator, denominator, out=out, where=np.asarray(denominator) != 0)
    return out


def _require(frame: pd.DataFrame, columns: Iterable[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{what} needs columns {', '.join(columns)}; missing {', '.join(missing)}")
