"""Merging per-source top lists into one set of unique candidates, with quotas, keeping every source's score."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)
class MergedCandidates:
    """Unique candidates in merge order, and for each one the sources that list it and their scores.

    content_ids: int64 (m,); sources: source names, the column order of the two matrices;
    proposed: bool (m, n_sources); scores: float32 (m, n_sources), NaN where a source does not list the item.
    """

    content_ids: np.ndarray
    sources: tuple[str, ...]
    proposed: np.ndarray
    scores: np.ndarray

    def __len__(self) -> int:
        return len(self.content_ids)


def merge_candidates(
    source_lists: Mapping[str, tuple[np.ndarray, np.ndarray]],
    quotas: Mapping[str, int],
    total: int = 500,
    *,
    backfill: bool = True,
) -> MergedCandidates:
    """Merge top lists: each source's best `quota` items first (sources in `quotas` order), then, if
    `backfill`, the rest of the lists interleaved by rank relative to quota until `total` unique items.

    source_lists: name → (content ids int (n_s,), scores float (n_s,)); lists need not be sorted, and
    repeated or negative (padding) ids are dropped. A source missing from `quotas` gets quota 0 (it
    still backfills and still flags the items it lists). Flags and scores cover each source's whole list,
    not only its quota, because the ranker learns from them.
    """
    unknown = set(quotas) - set(source_lists)
    if unknown:
        raise ValueError(f"quotas name unknown sources: {sorted(unknown)}")
    sources = tuple(quotas) + tuple(name for name in source_lists if name not in quotas)
    ids_parts, score_parts, source_parts = [], [], []
    for number, name in enumerate(sources):
        ids = np.asarray(source_lists[name][0], dtype=np.int64).ravel()
        scores = np.asarray(source_lists[name][1], dtype=np.float32).ravel()
        if ids.shape != scores.shape:
            raise ValueError(f"source {name!r}: ids and scores differ in length")
        valid = ids >= 0
        if not valid.all():
            ids, scores = ids[valid], scores[valid]
        order = np.argsort(-scores, kind="stable")
        ids_parts.append(ids[order])
        score_parts.append(scores[order])
        source_parts.append(np.full(len(order), number))
    ids, scores = np.concatenate(ids_parts), np.concatenate(score_parts)
    source = np.concatenate(source_parts)
    # A source's best score for a repeated id: the first of each (source, id) pair, one unique over every list.
    span = int(ids.max()) + 1 if len(ids) else 1
    keep = np.sort(np.unique(source * span + ids, return_index=True)[1])
    if len(keep) < len(ids):
        ids, scores, source = ids[keep], scores[keep], source[keep]
    starts = np.searchsorted(source, np.arange(len(sources)))  # the lists stay grouped by source, best first
    rank = np.arange(len(ids)) - starts[source]
    quota = np.array([int(quotas.get(name, 0)) for name in sources])[source]
    in_quota = rank < quota
    # Merge order: quota entries by (source, rank), then the backfill by (rank / quota, source), so each
    # source keeps its share: a small-quota source's 50th item is as deep into it as a big one's 200th. The lists
    # are in (source, rank) order already; a stable sort of the backfill's depth keeps the sources' order on ties.
    order = np.flatnonzero(in_quota)
    if backfill:
        rest = np.flatnonzero(~in_quota)
        depth = rank[rest] / np.maximum(quota[rest], 1)
        order = np.concatenate([order, rest[np.argsort(depth, kind="stable")]])
    ordered_ids = ids[order]
    first_seen = np.sort(np.unique(ordered_ids, return_index=True)[1])[:total]
    content_ids = ordered_ids[first_seen]
    # Every (candidate, source) pair present in the lists: flags and scores.
    position = np.full(len(ids), -1)
    lookup = np.argsort(content_ids)
    found = np.searchsorted(content_ids[lookup], ids)
    found = np.minimum(found, max(len(content_ids) - 1, 0))
    hit = (content_ids[lookup][found] == ids) if len(content_ids) else np.zeros(len(ids), bool)
    position[hit] = lookup[found[hit]]
    proposed = np.zeros((len(content_ids), len(sources)), bool)
    merged_scores = np.full((len(content_ids), len(sources)), np.nan, np.float32)
    proposed[position[hit], source[hit]] = True
    merged_scores[position[hit], source[hit]] = scores[hit]
    return MergedCandidates(content_ids, sources, proposed, merged_scores)
