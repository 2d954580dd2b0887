"""The candidate sources of one request, as top-n searches over in-memory arrays (pure numpy/scipy).

Every source returns (catalog rows int64 (m,), scores float32 (m,)), best first, m <= n, only rows that
`allowed` permits and `exclude` does not name. Rows index a CatalogIndex; models score in their own
item index, mapped to catalog rows once per (model, catalog) by `ItemAlignment`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

COLLABORATIVE = "collaborative"
TRENDING = "trending"
CONTINUE_WATCHING = "continue_watching"
SIMILAR_TO_WATCHED = "similar_to_watched"
NEW_RELEASES = "new_releases"
POPULAR_IN_GENRES = "popular_in_genres"  # cold start: takes the collaborative quota without a history
EASE_SOURCE = "ease"  # item-to-item collaborative, where the catalog is small enough for EASE

SOURCES = (COLLABORATIVE, TRENDING, CONTINUE_WATCHING, SIMILAR_TO_WATCHED, NEW_RELEASES, POPULAR_IN_GENRES, EASE_SOURCE)
IN_PROGRESS = (0.1, 0.9)  # continue watching: watched share within this range (users.models IN_PROGRESS_*)
NEW_RELEASE_DAYS = 90
SAMPLED_TOP_MIN_SIZE = 20_000  # largest_positions samples a threshold from this many scores up
SAMPLE_STRIDE = 16
MODEL_MASKS_KEPT = 64  # ItemAlignment.model_mask's memory: far more than the (tier, country, cap) in use

EMPTY = (np.empty(0, np.int64), np.empty(0, np.float32))


def top_rows(
    scores: np.ndarray, n: int, *, allowed: np.ndarray | None = None, exclude: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The n best finite scores after masking: (positions int64, scores float32), best first.

    scores is modified in place (masked entries become -inf): pass a scratch buffer.
    """
    if allowed is not None:
        scores[~allowed] = -np.inf
    if exclude is not None and len(exclude):
        scores[exclude] = -np.inf
    n = min(n, len(scores))
    if n <= 0:
        return EMPTY
    part = largest_positions(scores, n)
    part = part[np.argsort(-scores[part], kind="stable")]
    part = part[np.isfinite(scores[part])]
    return part.astype(np.int64), scores[part].astype(np.float32)


def largest_positions(scores: np.ndarray, n: int) -> np.ndarray:
    """Positions of the n largest scores, unordered (ties at the boundary broken arbitrarily).

    Exact, and about 15 times faster than one argpartition over 100K scores: a strided sample gives a
    threshold that about 2n scores pass; if at least n pass, the n largest are all among them, so only
    those are partitioned. Otherwise (few finite scores, odd distributions) it partitions them all.
    NaN never counts as large.
    """
    size = len(scores)
    if n >= size:
        return np.arange(size)
    if size >= SAMPLED_TOP_MIN_SIZE and n * SAMPLE_STRIDE * 4 <= size:
        sample = scores[::SAMPLE_STRIDE]
        k = 2 * (n // SAMPLE_STRIDE) + 8
        threshold = np.partition(sample, len(sample) - k)[len(sample) - k]
        passed = np.flatnonzero(scores >= threshold)
        if len(passed) >= n:
            return passed[np.argpartition(scores[passed], len(passed) - n)[len(passed) - n :]]
    return np.argpartition(-scores, n - 1)[:n]  # negated, so that NaN sorts last


@dataclass(frozen=True, eq=False)
class ItemAlignment:
    """A model's item index against catalog rows: `rows[i]` is the catalog row of model item i (-1 if the
    catalog no longer has it); `items[r]` the model item of catalog row r (-1 if the model lacks it)."""

    rows: np.ndarray
    items: np.ndarray
    _model_masks: dict[int, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict, repr=False)

    @classmethod
    def build(cls, model_item_ids: np.ndarray, catalog_ids: np.ndarray) -> ItemAlignment:
        model_item_ids = np.asarray(model_item_ids, np.int64)
        position = np.searchsorted(catalog_ids, model_item_ids)
        position = np.minimum(position, max(len(catalog_ids) - 1, 0))
        found = catalog_ids[position] == model_item_ids if len(catalog_ids) else np.zeros(len(model_item_ids), bool)
        rows = np.where(found, position, -1).astype(np.int64)
        items = np.full(len(catalog_ids), -1, np.int64)
        items[rows[found]] = np.flatnonzero(found)
        return cls(rows, items)

    def to_model(self, catalog_rows: np.ndarray) -> np.ndarray:
        """Model items of these catalog rows, the unknown ones dropped."""
        items = self.items[np.asarray(catalog_rows, np.int64)]
        return items[items >= 0]

    def model_mask(self, catalog_mask: np.ndarray) -> np.ndarray:
        """A bool mask over model items from one over catalog rows (items gone from the catalog: False).

        A read-only catalog mask (CatalogIndex.allowed's, one per tier, country and cap) is mapped once and
        the read-only result remembered: at 100K titles the mapping costs about as much as the top-500 pick.
        """
        if catalog_mask.flags.writeable:
            return np.where(self.rows >= 0, catalog_mask[np.maximum(self.rows, 0)], False)
        known = self._model_masks.get(id(catalog_mask))
        if known is not None and known[0] is catalog_mask:
            return known[1]
        mask = np.where(self.rows >= 0, catalog_mask[np.maximum(self.rows, 0)], False)
        mask.setflags(write=False)
        if len(self._model_masks) >= MODEL_MASKS_KEPT:
            self._model_masks.clear()
        self._model_masks[id(catalog_mask)] = (catalog_mask, mask)  # holding the input keeps its id unique
        return mask


def collaborative(
    user_vector: np.ndarray,
    item_factors: np.ndarray,
    alignment: ItemAlignment,
    n: int,
    *,
    allowed: np.ndarray,
    exclude_rows: np.ndarray,
    buffer: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-n catalog rows by user_vector · item_factors (one matrix-vector product + largest_positions)."""
    scores = np.matmul(item_factors, user_vector, out=buffer) if buffer is not None else item_factors @ user_vector
    items, values = top_rows(scores, n, allowed=alignment.model_mask(allowed), exclude=alignment.to_model(exclude_rows))
    return alignment.rows[items], values


def als_fold_in(
    item_factors: np.ndarray,
    items: np.ndarray,
    confidence: np.ndarray,
    regularization: float,
    gram: np.ndarray | None = None,
) -> np.ndarray:
    """The ALS user vector for a history the model never saw (the exact least-squares step of weighted ALS).

    Minimises Σ_i c_i (1 - x·y_i)² + Σ_{unobserved} (0 - x·y_j)² + λ|x|²: with G = YᵀY,
    x = (G + Σ (c_i - 1) y_i y_iᵀ + λI)⁻¹ Σ c_i y_i. `gram` (YᵀY) can be computed once per model.
    """
    if gram is None:
        factors = np.asarray(item_factors, np.float64)
        gram = factors.T @ factors
    history = np.asarray(item_factors[np.asarray(items, np.int64)], np.float64)  # only the watched rows
    c = np.asarray(confidence, np.float64)
    a = gram + (history.T * (c - 1.0)) @ history + regularization * np.eye(history.shape[1])
    b = history.T @ c
    return np.linalg.solve(a, b).astype(np.float32)


def ranked_list(
    ranked_rows: np.ndarray, ranked_scores: np.ndarray, n: int, *, allowed: np.ndarray, exclude_rows: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The first n of a precomputed ranking (e.g. trending, rows best first) that are allowed and not excluded."""
    rows = np.asarray(ranked_rows, np.int64)
    keep = (rows >= 0) & allowed[np.maximum(rows, 0)]
    if len(exclude_rows):
        keep &= ~np.isin(rows, exclude_rows)
    return rows[keep][:n], np.asarray(ranked_scores, np.float32)[keep][:n]


def continue_watching(
    rows: np.ndarray,
    watch_percentage: np.ndarray,
    last_watched_seconds: np.ndarray,
    now_seconds: float,
    n: int,
    *,
    allowed: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Titles whose latest viewing stopped at 10–90 %, newest first; score = 1 / (1 + days idle).

    rows, watch_percentage, last_watched_seconds: the profile's viewings (catalog rows, any order).
    """
    rows = np.asarray(rows, np.int64)
    if not len(rows):
        return EMPTY
    last = np.asarray(last_watched_seconds, np.float64)
    order = np.lexsort((-last, rows))  # by title, newest viewing first
    latest = order[np.r_[True, rows[order][1:] != rows[order][:-1]]]
    pct = np.asarray(watch_percentage, np.float64)[latest]
    keep = (pct >= IN_PROGRESS[0]) & (pct <= IN_PROGRESS[1]) & allowed[rows[latest]]
    latest = latest[keep]
    latest = latest[np.argsort(-last[latest], kind="stable")][:n]
    days_idle = np.maximum(now_seconds - last[latest], 0.0) / 86400.0
    return rows[latest], (1.0 / (1.0 + days_idle)).astype(np.float32)


def similar_to_watched(
    similarity: sp.csr_matrix,
    alignment: ItemAlignment,
    history_rows: np.ndarray,
    weights: np.ndarray,
    n: int,
    *,
    allowed: np.ndarray,
    exclude_rows: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Σ over watched titles of weight × cosine neighbour similarity (item-to-item content model)."""
    items = alignment.items[np.asarray(history_rows, np.int64)]
    known = items >= 0
    if not known.any():
        return EMPTY
    history = sp.csr_matrix(
        (np.asarray(weights, np.float32)[known], (np.zeros(known.sum(), np.int64), items[known])),
        shape=(1, similarity.shape[0]),
    )
    reached = history @ similarity  # sparse (1, n_items): only the neighbours of the history
    columns, values = reached.indices.astype(np.int64), reached.data.astype(np.float32)
    rows = alignment.rows[columns]
    keep = (rows >= 0) & (values > 0)
    rows, values = rows[keep], values[keep]
    keep = allowed[rows] & ~np.isin(rows, exclude_rows)
    return top_rows_of(rows[keep], values[keep], n)


def top_rows_of(rows: np.ndarray, scores: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The n best (row, score) pairs of a short list, best first."""
    if len(rows) > n:
        part = largest_positions(scores, n)
        rows, scores = rows[part], scores[part]
    order = np.argsort(-scores, kind="stable")
    return rows[order].astype(np.int64), scores[order].astype(np.float32)


def new_releases(
    date_added_days: np.ndarray,
    today_days: int,
    n: int,
    *,
    allowed: np.ndarray,
    exclude_rows: np.ndarray,
    genre_masks: np.ndarray | None = None,
    wanted_genres: int = 0,
    window_days: int = NEW_RELEASE_DAYS,
) -> tuple[np.ndarray, np.ndarray]:
    """Titles added in the last `window_days`: those in the wanted genres first, each group newest first.

    Score = 1 / (1 + days since added), plus 1 in a wanted genre (so the list's order is its score's).
    """
    age = today_days - np.asarray(date_added_days, np.int64)
    fresh = (age >= 0) & (age <= window_days) & allowed
    if len(exclude_rows):
        fresh[np.asarray(exclude_rows, np.int64)] = False
    rows = np.flatnonzero(fresh)
    scores = 1.0 / (1.0 + age[rows])
    if wanted_genres and genre_masks is not None:
        scores = scores + ((genre_masks[rows] & np.uint32(wanted_genres)) != 0)
    return top_rows_of(rows, scores.astype(np.float32), n)


def popular_in_genres(
    popularity: np.ndarray,
    n: int,
    *,
    allowed: np.ndarray,
    genre_masks: np.ndarray,
    wanted_genres: int,
    exclude_rows: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Cold start: the most popular allowed titles in the wanted genres (popularity over catalog rows)."""
    if not wanted_genres:
        return EMPTY
    mask = allowed & ((genre_masks & np.uint32(wanted_genres)) != 0) & (popularity > 0)
    rows = np.flatnonzero(mask)
    if len(exclude_rows):
        rows = rows[~np.isin(rows, exclude_rows)]
    return top_rows_of(rows, np.asarray(popularity, np.float32)[rows], n)


def because_watched(
    similarity: sp.csr_matrix, alignment: ItemAlignment, history_rows: np.ndarray, item_rows: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """For each item, the watched title most similar to it: (catalog row, similarity); -1 / 0 if none."""
    item_rows = np.asarray(item_rows, np.int64)
    best_rows = np.full(len(item_rows), -1, np.int64)
    best = np.zeros(len(item_rows), np.float32)
    history_items = alignment.items[np.asarray(history_rows, np.int64)]
    history_rows = np.asarray(history_rows, np.int64)[history_items >= 0]
    history_items = history_items[history_items >= 0]
    targets = alignment.items[item_rows]
    if not len(history_items) or not (targets >= 0).any():
        return best_rows, best
    known = targets >= 0
    block = similarity[history_items][:, targets[known]].toarray()  # (history, items)
    pick = block.argmax(axis=0)
    values = block[pick, np.arange(block.shape[1])]
    found = values > 0
    best_rows[np.flatnonzero(known)[found]] = history_rows[pick[found]]
    best[np.flatnonzero(known)[found]] = values[found]
    return best_rows, best
