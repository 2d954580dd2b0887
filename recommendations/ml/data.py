"""Interaction frames, raw-id <-> index maps and the user × item CSR matrix."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recommendations.ml.constants import INTERACTION_COLUMNS, ITEM_COL, RATING_COL, USER_COL


def validate_interactions(interactions: pd.DataFrame) -> pd.DataFrame:
    """Check the (user_id, content_id, rating) frame at the boundary; return just those columns.

    Ids must be integers (database keys), ratings finite numbers. Raises ValueError otherwise.
    """
    if not isinstance(interactions, pd.DataFrame) or not set(INTERACTION_COLUMNS) <= set(interactions.columns):
        raise ValueError("interactions needs columns user_id, content_id, rating")
    frame = interactions.loc[:, list(INTERACTION_COLUMNS)]
    for column in (USER_COL, ITEM_COL):
        if not pd.api.types.is_integer_dtype(frame[column].dtype):
            raise ValueError(f"interactions.{column} must hold integers, not {frame[column].dtype}")
    if not pd.api.types.is_numeric_dtype(frame[RATING_COL].dtype):
        raise ValueError(f"interactions.rating must be numeric, not {frame[RATING_COL].dtype}")
    if not np.isfinite(frame[RATING_COL].to_numpy(dtype=np.float64)).all():
        raise ValueError("interactions.rating must be finite")
    return frame


class IdMap:
    """Raw integer ids <-> contiguous indices 0..n-1, in ascending id order (vectorised by searchsorted)."""

    def __init__(self, ids: Iterable[int] | np.ndarray) -> None:
        self.ids = np.unique(np.asarray(ids, dtype=np.int64))  # sorted, unique: index i holds raw id ids[i]

    def __len__(self) -> int:
        return len(self.ids)

    def __repr__(self) -> str:
        return f"IdMap({len(self)} ids)"

    def contains(self, raw_ids: np.ndarray | Iterable[int]) -> np.ndarray:
        """Bool array, shape of `raw_ids`: which ids are known."""
        return self.to_index(raw_ids, strict=False) >= 0

    def to_index(self, raw_ids: np.ndarray | Iterable[int], *, strict: bool = True) -> np.ndarray:
        """Map raw ids (any shape, int) to int64 indices; unknown ids raise KeyError, or give -1 if not strict."""
        raw = np.asarray(raw_ids, dtype=np.int64)
        position = np.searchsorted(self.ids, raw)
        clipped = np.minimum(position, max(len(self.ids) - 1, 0))
        found = (position < len(self.ids)) & (self.ids[clipped] == raw) if len(self.ids) else np.zeros(raw.shape, bool)
        if strict and not found.all():
            raise KeyError(f"unknown ids: {raw[~found][:5].tolist()}")
        return np.where(found, clipped, -1)

    def to_raw(self, indices: np.ndarray | Iterable[int]) -> np.ndarray:
        """Map int indices (any shape) back to raw int64 ids."""
        return self.ids[np.asarray(indices, dtype=np.int64)]


def interaction_matrix(
    interactions: pd.DataFrame, user_map: IdMap, item_map: IdMap, *, binary: bool = False
) -> sp.csr_matrix:
    """User × item CSR matrix, float32, shape (len(user_map), len(item_map)).

    Rows whose user or item is not in the maps are dropped; a repeated (user, item) pair keeps its largest
    rating (a rewatch is not a stronger signal than the best rating). `binary` stores 1.0 instead.
    """
    frame = validate_interactions(interactions)
    users = user_map.to_index(frame[USER_COL].to_numpy(), strict=False)
    items = item_map.to_index(frame[ITEM_COL].to_numpy(), strict=False)
    values = np.ones(len(frame), np.float32) if binary else frame[RATING_COL].to_numpy(dtype=np.float32)
    known = (users >= 0) & (items >= 0)
    users, items, values = users[known], items[known], values[known]
    keys = users * len(item_map) + items
    order = np.lexsort((values, keys))  # within a key, the largest value comes last
    keys, values = keys[order], values[order]
    last = np.r_[keys[1:] != keys[:-1], True] if len(keys) else np.zeros(0, bool)
    keys, values = keys[last], values[last]
    shape = (len(user_map), len(item_map))
    return sp.csr_matrix((values, (keys // len(item_map), keys % len(item_map))), shape=shape, dtype=np.float32)


def item_counts(interactions: pd.DataFrame) -> pd.Series:
    """Number of distinct users per content_id (index: content_id, int64 counts), most popular first."""
    frame = validate_interactions(interactions)
    return frame.drop_duplicates([USER_COL, ITEM_COL]).groupby(ITEM_COL).size().sort_values(ascending=False)
