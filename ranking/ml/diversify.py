"""Diversification of a ranked list: vectorised MMR, then light repair of the homepage mix targets (pure numpy).

The targets (issue text): in the top 20, at least 5 distinct genres where the candidates allow, a mix of recent
and older titles, and 10-20 % of items outside the profile's usual genres. MMR spreads the list; a greedy repair
then swaps the best-scoring candidate that fixes a missed target for the lowest-ranked item whose removal costs
nothing, and stops when no swap helps (so the targets degrade gracefully when the candidates cannot meet them).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from recommendations.ml.catalog import GENRE_BITS, CatalogIndex, popcount32

DAYS_PER_YEAR = 365.2425


def mmr(
    relevance: np.ndarray,
    similarity: np.ndarray,
    lam: float,
    k: int,
    *,
    similarity_kind: Literal["matrix", "vectors"] | None = None,
) -> np.ndarray:
    """Maximal marginal relevance: int64 (min(k, n),) candidate indices in pick order.

    relevance: float (n,), min-max scaled to [0, 1] here so that it mixes with cosine similarities.
    similarity: an (n, n) similarity matrix, or (n, d) L2-normalised item vectors (similarity = dot product).
    A square array is taken as a matrix unless `similarity_kind="vectors"` says otherwise (n == d is ambiguous).
    lam: 1 = pure relevance order, 0 = pure novelty. Each pick costs O(n) (O(n·d) for vectors): a running
    max-similarity vector replaces the pairwise loop.
    """
    relevance = np.asarray(relevance, dtype=np.float64).reshape(-1)
    n = len(relevance)
    if not 0.0 <= lam <= 1.0:
        raise ValueError(f"lam must be in [0, 1], not {lam}")
    similarity = np.asarray(similarity, dtype=np.float32)
    if similarity.ndim != 2 or similarity.shape[0] != n:
        raise ValueError(f"similarity must be (n, n) or (n, d) with n={n}; got shape {similarity.shape}")
    if similarity_kind is None:
        similarity_kind = "matrix" if similarity.shape == (n, n) else "vectors"
    if similarity_kind == "matrix" and similarity.shape != (n, n):
        raise ValueError(f"a similarity matrix must be ({n}, {n}); got {similarity.shape}")
    k = max(0, min(int(k), n))
    order = np.empty(k, dtype=np.int64)
    if k == 0:
        return order

    low, high = relevance.min(), relevance.max()
    scaled = (relevance - low) / (high - low) if high > low else np.zeros(n)
    gain = lam * scaled  # picked candidates get -inf here
    penalty = 1.0 - lam
    max_similarity = np.empty(n, dtype=np.float64)
    score = np.empty(n, dtype=np.float64)
    for step in range(k):
        if step == 0:
            pick = int(gain.argmax())
        else:
            np.multiply(max_similarity, penalty, out=score)
            np.subtract(gain, score, out=score)
            pick = int(score.argmax())
        order[step] = pick
        gain[pick] = -np.inf
        row = similarity[pick] if similarity_kind == "matrix" else similarity @ similarity[pick]
        if step == 0:
            max_similarity[:] = row
        else:
            np.maximum(max_similarity, row, out=max_similarity)
    return order


def genre_vectors(genre_masks: np.ndarray) -> np.ndarray:
    """float32 (n, GENRE_BITS): L2-normalised genre indicators (zero rows for titles without genres)."""
    masks = np.asarray(genre_masks, dtype=np.uint32).reshape(-1)
    indicator = ((masks[:, None] >> np.arange(GENRE_BITS, dtype=np.uint32)) & np.uint32(1)).astype(np.float32)
    return _normalise_rows(indicator)


def _normalise_rows(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    unit: np.ndarray = np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)
    return unit


def blend_vectors(genre_unit: np.ndarray, factor_vectors: np.ndarray | None, factor_weight: float) -> np.ndarray:
    """Vectors whose dot products are (1 - w)·genre cosine + w·factor cosine (w = factor_weight)."""
    if factor_vectors is None or factor_weight <= 0:
        return np.asarray(genre_unit, dtype=np.float32)
    if not 0.0 <= factor_weight <= 1.0:
        raise ValueError(f"factor_weight must be in [0, 1], not {factor_weight}")
    factors = _normalise_rows(np.asarray(factor_vectors, dtype=np.float32))
    if len(factors) != len(genre_unit):
        raise ValueError(f"need one factor vector per candidate: {len(factors)} for {len(genre_unit)}")
    return np.hstack([genre_unit * math.sqrt(1.0 - factor_weight), factors * math.sqrt(factor_weight)])


@dataclass(frozen=True)
class DiversityTargets:
    """What the top `window` should hold; shares are of the window's length."""

    window: int = 20
    min_genres: int = 5
    min_recent_share: float = 0.2
    min_older_share: float = 0.2
    outside_usual_share: tuple[float, float] = (0.10, 0.20)

    def quotas(self, window: int, has_usual_genres: bool) -> dict[str, int]:
        low, high = self.outside_usual_share
        min_outside = math.ceil(low * window - 1e-9) if has_usual_genres else 0
        max_outside = max(math.floor(high * window + 1e-9), min_outside) if has_usual_genres else window
        return {
            "min_genres": self.min_genres,
            "min_recent": math.ceil(self.min_recent_share * window - 1e-9),
            "min_older": math.ceil(self.min_older_share * window - 1e-9),
            "min_outside": min_outside,
            "max_outside": max_outside,
        }


@dataclass(frozen=True)
class DiversityReport:
    window: int  # how many items were measured (the list may be shorter than asked)
    distinct_genres: int
    share_recent: float
    share_outside_usual: float


def _genre_count(masks: np.ndarray) -> int:
    """Distinct genres over these masks."""
    union = np.bitwise_or.reduce(masks, initial=np.uint32(0))
    return int(popcount32(np.reshape(union, 1))[0])  # 1-d: the scalar path overflows with a warning


def outside_usual(genre_masks: np.ndarray, usual_genres: int) -> np.ndarray:
    """bool (n,): titles with genres, none of them usual (titles without genres are neither inside nor out)."""
    masks = np.asarray(genre_masks, dtype=np.uint32)
    outside: np.ndarray = (masks != 0) & ((masks & np.uint32(usual_genres)) == 0)
    return outside


def diversity_report(
    order: np.ndarray, genre_masks: np.ndarray, is_recent: np.ndarray, *, usual_genres: int, window: int = 20
) -> DiversityReport:
    """Distinct genres, share of recent titles and share outside the usual genres in the top `window` of `order`."""
    top = np.asarray(order, dtype=np.int64)[:window]
    masks = np.asarray(genre_masks, dtype=np.uint32)[top]
    if not len(top):
        return DiversityReport(0, 0, 0.0, 0.0)
    return DiversityReport(
        window=len(top),
        distinct_genres=_genre_count(masks),
        share_recent=float(np.asarray(is_recent, dtype=bool)[top].mean()),
        share_outside_usual=float(outside_usual(masks, usual_genres).mean()),
    )


def usual_genre_mask(affinity: np.ndarray, *, coverage: float = 0.8, max_genres: int = 5) -> np.uint32:
    """A profile's usual genres: its strongest genre slots covering `coverage` of its affinity, at most max_genres."""
    affinity = np.clip(np.asarray(affinity, dtype=np.float64).reshape(-1)[:GENRE_BITS], 0, None)
    total = affinity.sum()
    if total <= 0:
        return np.uint32(0)
    slots = np.argsort(-affinity, kind="stable")
    cumulative = np.cumsum(affinity[slots]) / total
    count = min(int(np.searchsorted(cumulative, coverage - 1e-9)) + 1, max_genres, int((affinity > 0).sum()))
    return np.uint32(np.bitwise_or.reduce(np.left_shift(np.uint32(1), slots[:count].astype(np.uint32))))


def _deficit(
    genres: np.ndarray | int,
    recent: np.ndarray | int,
    older: np.ndarray | int,
    outside: np.ndarray | int,
    quotas: dict[str, int],
) -> np.ndarray:
    """How far counts (arrays of any shape) are from the quotas, summed over the targets."""
    return (
        np.maximum(quotas["min_genres"] - genres, 0)
        + np.maximum(quotas["min_recent"] - recent, 0)
        + np.maximum(quotas["min_older"] - older, 0)
        + np.maximum(quotas["min_outside"] - outside, 0)
        + np.maximum(outside - quotas["max_outside"], 0)
    )


def _repair(
    top: np.ndarray,
    pool: np.ndarray,
    masks: np.ndarray,
    recent: np.ndarray,
    outside: np.ndarray,
    quotas: dict[str, int],
) -> tuple[np.ndarray, list[int]]:
    """Greedy swaps between `top` and `pool` (relevance order) until no swap lowers the deficit.

    Each round scores every (position, candidate) swap at once: (window × pool) arrays of the counts after it.
    """
    top = top.copy()
    candidates: list[int] = list(pool)
    removed: list[int] = []
    window = len(top)
    while candidates:
        top_masks = masks[top]
        genres_now = _genre_count(top_masks)
        recent_now, outside_now = int(recent[top].sum()), int(outside[top].sum())
        deficit_now = int(_deficit(genres_now, recent_now, window - recent_now, outside_now, quotas))
        if deficit_now == 0:
            break
        before = np.concatenate([[0], np.bitwise_or.accumulate(top_masks)[:-1]]).astype(np.uint32)
        after = np.concatenate([np.bitwise_or.accumulate(top_masks[::-1])[::-1][1:], [0]]).astype(np.uint32)
        without = before | after  # genres of the window without each position
        pool_arr = np.asarray(candidates, dtype=np.int64)
        genres = popcount32(without[:, None] | masks[pool_arr][None, :])
        recent_after = recent_now - recent[top][:, None].astype(np.int64) + recent[pool_arr][None, :]
        outside_after = outside_now - outside[top][:, None].astype(np.int64) + outside[pool_arr][None, :]
        gain = deficit_now - _deficit(genres, recent_after, window - recent_after, outside_after, quotas)
        helping = np.flatnonzero(gain.max(axis=0) > 0)
        if not len(helping):
            break  # the candidates cannot meet the remaining targets
        column = int(helping[0])  # the best-scoring candidate that helps
        best = gain[:, column] == gain[:, column].max()
        position = int(np.flatnonzero(best)[-1])  # the lowest-ranked item it can replace
        removed.append(int(top[position]))
        top[position] = candidates.pop(column)
    return top, removed


def diversify(
    relevance: np.ndarray,
    genre_masks: np.ndarray,
    is_recent: np.ndarray,
    *,
    k: int,
    usual_genres: int = 0,
    lam: float = 0.7,
    item_vectors: np.ndarray | None = None,
    targets: DiversityTargets = DiversityTargets(),
) -> np.ndarray:
    """Order candidates for display: int64 (min(k, n),) indices into the candidate arrays.

    relevance: float (n,); genre_masks: uint32 (n,); is_recent: bool (n,); usual_genres: the profile's usual genre
    bit mask (0 = unknown: no outside-usual target); item_vectors: (n, d) L2-normalised, default genre vectors.
    """
    relevance = np.asarray(relevance, dtype=np.float64).reshape(-1)
    masks = np.asarray(genre_masks, dtype=np.uint32).reshape(-1)
    recent = np.asarray(is_recent, dtype=bool).reshape(-1)
    n = len(relevance)
    if len(masks) != n or len(recent) != n:
        raise ValueError(f"relevance, genre_masks and is_recent need one entry per candidate ({n})")
    vectors = genre_vectors(masks) if item_vectors is None else item_vectors
    order = mmr(relevance, vectors, lam, k, similarity_kind="vectors")
    window = min(targets.window, len(order))
    if window == 0:
        return order

    quotas = targets.quotas(window, has_usual_genres=bool(usual_genres))
    outside = outside_usual(masks, usual_genres)
    chosen = np.zeros(n, dtype=bool)
    chosen[order[:window]] = True
    pool = np.flatnonzero(~chosen)
    pool = pool[np.argsort(-relevance[pool], kind="stable")]
    top, removed = _repair(order[:window], pool, masks, recent, outside, quotas)

    in_top = np.zeros(n, dtype=bool)
    in_top[top] = True
    rest = [*removed, *(int(i) for i in order[window:] if not in_top[i])]
    return np.concatenate([top, np.asarray(rest, dtype=np.int64)])[: len(order)]


def title_vectors(
    catalog: CatalogIndex, rows: np.ndarray, *, item_factors: np.ndarray | None = None, factor_weight: float = 0.5
) -> np.ndarray:
    """Similarity vectors of catalog rows: genre cosine, blended with MF item-factor cosine when factors are given.

    item_factors: (len(rows), f) factors aligned with `rows` (zero rows for titles the model does not know).
    """
    return blend_vectors(genre_vectors(catalog.genre_masks[rows]), item_factors, factor_weight)


def recent_titles(catalog: CatalogIndex, rows: np.ndarray, *, today_days: int, recent_years: int = 3) -> np.ndarray:
    """bool (len(rows),): released in the last `recent_years` calendar years (unknown year: added that recently)."""
    this_year = 1970 + int(today_days // DAYS_PER_YEAR)
    release_year = catalog.release_year[rows].astype(np.int64)
    added_recently = catalog.date_added_days[rows] > today_days - recent_years * DAYS_PER_YEAR
    recent: np.ndarray = np.where(release_year > 0, release_year > this_year - recent_years, added_recently)
    return recent


def diversify_titles(
    catalog: CatalogIndex,
    rows: np.ndarray,
    relevance: np.ndarray,
    *,
    k: int,
    today_days: int,
    usual_genres: int = 0,
    item_factors: np.ndarray | None = None,
    factor_weight: float = 0.5,
    lam: float = 0.7,
    targets: DiversityTargets = DiversityTargets(),
) -> np.ndarray:
    """`diversify` for catalog rows: int64 indices into `rows` in display order."""
    rows = np.asarray(rows, dtype=np.int64).reshape(-1)
    return diversify(
        relevance,
        catalog.genre_masks[rows],
        recent_titles(catalog, rows, today_days=today_days),
        k=k,
        usual_genres=usual_genres,
        lam=lam,
        item_vectors=title_vectors(catalog, rows, item_factors=item_factors, factor_weight=factor_weight),
        targets=targets,
    )
