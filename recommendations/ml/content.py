"""Content similarity: TF-IDF vectors over genres, cast, directors and keywords, cosine top-k neighbours."""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recommendations.ml import defaults
from recommendations.ml.base import DENSE_BLOCK_CELLS, Recommender, top_k
from recommendations.ml.constants import CONTENT_FIELDS, ITEM_COL, PAD_ID


def _tokens(values: pd.Series) -> pd.Series:
    """One token per row from list-like cells or '|'-separated strings; empty cells dropped."""
    if values.map(lambda cell: isinstance(cell, str)).any():
        values = values.map(lambda cell: cell.split("|") if isinstance(cell, str) else cell)
    exploded = values.explode().dropna().astype(str).str.strip()
    return exploded[exploded != ""]


def tfidf_vectors(catalog: pd.DataFrame, fields: Mapping[str, float]) -> sp.csr_matrix:
    """L2-normalised TF-IDF rows, float32 (len(catalog), n_terms), in catalog row order.

    A term is field:value, present or not (tf = 1); idf = ln((1 + n) / (1 + df)) + 1 as in scikit-learn;
    each field's terms are scaled by its weight before the row is normalised. Fields missing from the
    catalog are skipped; a title with no term keeps a zero row.
    """
    parts = []
    for field, weight in fields.items():
        if field not in catalog.columns or weight == 0:
            continue
        tokens = _tokens(catalog[field].reset_index(drop=True))
        parts.append(pd.DataFrame({"row": tokens.index, "term": field + ":" + tokens.to_numpy(), "weight": weight}))
    if not parts:
        raise ValueError(f"catalog has none of the content fields {sorted(fields)}")
    pairs = pd.concat(parts, ignore_index=True).drop_duplicates(["row", "term"])  # tf = 1: presence only
    term_codes = pd.factorize(pairs["term"])[0]
    shape = (len(catalog), term_codes.max() + 1 if len(term_codes) else 0)
    matrix = sp.csr_matrix((pairs["weight"].to_numpy(np.float64), (pairs["row"].to_numpy(), term_codes)), shape=shape)
    document_frequency = np.bincount(matrix.indices, minlength=matrix.shape[1])
    idf = np.log((1 + len(catalog)) / (1 + document_frequency)) + 1
    matrix = matrix @ sp.diags(idf)
    norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=1)).ravel())
    matrix = sp.diags(np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)) @ matrix
    return sp.csr_matrix(matrix, dtype=np.float32)


def cosine_top_k(vectors: sp.csr_matrix, k: int = 50, block_rows: int | None = None) -> sp.csr_matrix:
    """Each row's k most similar other rows (cosine of L2-normalised rows), float32 CSR (n, n).

    Computed block by block, so memory stays at one dense (block_rows × n) array plus the k × n result.
    Zero similarities are not stored.
    """
    n = vectors.shape[0]
    block_rows = block_rows or max(1, min(n, DENSE_BLOCK_CELLS // max(n, 1)))
    transposed = vectors.T.tocsr()
    counts, indices, data = [], [], []
    for start in range(0, n, block_rows):
        stop = min(start + block_rows, n)
        block = (vectors[start:stop] @ transposed).toarray()
        block[np.arange(stop - start), np.arange(start, stop)] = 0.0  # a title is not its own neighbour
        columns, values = top_k(block, k)
        keep = values > 0
        counts.append(keep.sum(axis=1))
        indices.append(columns[keep])  # row-major, so rows stay in order
        data.append(values[keep])
    indptr = np.r_[0, np.cumsum(np.concatenate(counts))]
    return sp.csr_matrix((np.concatenate(data).astype(np.float32), np.concatenate(indices), indptr), shape=(n, n))


class ContentSimilarity(Recommender):
    """Item-to-item similarity from metadata; a user's scores = Σ over watched items of rating × similarity.

    The item map covers the whole catalog, so a title with no views is reachable as a neighbour.
    """

    params = ("n_neighbors", "fields")

    def __init__(
        self, n_neighbors: int = defaults.CONTENT["n_neighbors"], fields: Mapping[str, float] | None = None
    ) -> None:
        self.n_neighbors = int(n_neighbors)
        self.fields = dict(fields or CONTENT_FIELDS)

    def fit(self, interactions: pd.DataFrame, catalog: pd.DataFrame) -> ContentSimilarity:
        """interactions: user_id, content_id, rating; catalog: content_id plus list-like or '|'-joined columns
        named as in `fields` (genres, cast, directors, keywords). Interactions on titles outside the catalog
        are ignored.
        """
        started = time.perf_counter()
        if ITEM_COL not in catalog.columns:
            raise ValueError("catalog needs a content_id column")
        catalog = catalog.drop_duplicates(ITEM_COL).sort_values(ITEM_COL)  # row order = IdMap order
        self._index(interactions, item_ids=catalog[ITEM_COL].to_numpy())
        self.similarity = cosine_top_k(tfidf_vectors(catalog, self.fields), self.n_neighbors)
        self.fit_seconds = time.perf_counter() - started
        return self

    def _scores(self, user_index: np.ndarray) -> np.ndarray:
        scores = (self.user_items[user_index] @ self.similarity).toarray()
        scores[scores == 0] = -np.inf  # not a neighbour of anything watched: not a candidate, leave the slot empty
        return scores

    def similar(self, content_id: int, n: int = 10) -> list[tuple[int, float]]:
        """The n most similar titles [(content_id, cosine), ...], best first (at most n_neighbors)."""
        self._check_fitted()
        row = self.similarity[self.item_map.to_index(content_id)]
        order = np.argsort(-row.data, kind="stable")[:n]
        ids = self.item_map.to_raw(row.indices[order])
        return [(int(i), float(s)) for i, s in zip(ids, row.data[order], strict=True)]

    def recommend_from_history(
        self, content_ids: np.ndarray, weights: np.ndarray | None = None, n: int = 10, *, exclude_seen: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-n for a history given at serving time (no fitted user needed).

        content_ids: int (m,); weights: float (m,), e.g. ratings (default 1). Unknown titles are ignored.
        Returns content ids int64 (n,) and scores float32 (n,), PAD_ID / -inf past the reachable titles.
        """
        self._check_fitted()
        index = self.item_map.to_index(content_ids, strict=False)
        weights = np.ones(len(index), np.float32) if weights is None else np.asarray(weights, np.float32)
        known = index >= 0
        history = sp.csr_matrix(
            (weights[known], (np.zeros(known.sum(), np.int64), index[known])), shape=(1, len(self.item_map))
        )
        scores = (history @ self.similarity).toarray().astype(np.float32)
        scores[scores == 0] = -np.inf  # as in _scores
        if exclude_seen:
            scores[0, index[known]] = -np.inf
        columns, values = top_k(scores, n)
        ids = np.full(n, PAD_ID, np.int64)
        out = np.full(n, -np.inf, np.float32)
        found = np.isfinite(values[0])
        ids[: columns.shape[1]] = np.where(found, self.item_map.to_raw(columns[0]), PAD_ID)
        out[: columns.shape[1]] = values[0]
        return ids, out

    def _mapped_arrays(self) -> dict[str, np.ndarray]:
        return {
            "similarity_indptr": self.similarity.indptr,
            "similarity_indices": self.similarity.indices,
            "similarity_data": self.similarity.data,
        }

    def _restore(self, arrays: dict[str, np.ndarray], path: Path, mmap: bool) -> None:
        n = len(self.item_map)
        parts = (arrays["similarity_data"], arrays["similarity_indices"], arrays["similarity_indptr"])
        self.similarity = sp.csr_matrix(parts, shape=(n, n), copy=False)
