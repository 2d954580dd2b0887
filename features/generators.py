"""The seed's generator interface: thin wrappers that compute one entity's features and store them.

The batch jobs use features.services instead; both run the same vectorised code in features.compute.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd
from django.db.models import QuerySet
from django.utils import timezone

from catalog.models import Genre, Title
from features import compute, selectors
from features.compute import CONTENT_VIEWING_COLUMNS, VIEWING_COLUMNS, CatalogArrays, FeatureMatrix
from features.store import FeatureBatch, FeatureRow, FeatureStore


class UserFeatureGenerator:
    def __init__(self, feature_store: FeatureStore, *, catalog: CatalogArrays | None = None) -> None:
        self.feature_store = feature_store
        self.catalog = catalog  # None: read the titles of each history from the database

    def update_user_features(
        self,
        user_id: int,
        viewing_history: pd.DataFrame | QuerySet | Iterable[Any],
        *,
        as_of: dt.datetime | None = None,
    ) -> FeatureRow:
        """Compute profile `user_id`'s features from its viewings (VIEWING_COLUMNS or ViewingEvents), store them."""
        history = _frame(viewing_history, VIEWING_COLUMNS[1:]).assign(profile_id=int(user_id))
        catalog = self.catalog or selectors.catalog_arrays(title_ids=history["title_id"].unique())
        matrix = compute.user_features(history, catalog, as_of=as_of or timezone.now(), profile_ids=[user_id])
        return _store(self.feature_store, matrix)


class ContentFeatureGenerator:
    def __init__(self, feature_store: FeatureStore, *, genre_ids: Iterable[int] | None = None) -> None:
        self.feature_store = feature_store
        self.genre_ids = None if genre_ids is None else list(genre_ids)  # None: the database's genres

    def update_content_features(
        self,
        content_id: int,
        content_metadata: Title | Mapping[str, Any],
        viewing_stats: pd.DataFrame | QuerySet | Iterable[Any],
        *,
        as_of: dt.datetime | None = None,
    ) -> FeatureRow:
        """Compute title `content_id`'s features from its metadata (a Title, or a mapping with `genre_ids`
        and `kind`) and its viewings (started_at, watch_percentage, completed), and store them."""
        if isinstance(content_metadata, Title):
            genre_ids = list(content_metadata.genres.values_list("id", flat=True))
            kind = content_metadata.kind
        else:
            genre_ids, kind = list(content_metadata.get("genre_ids", [])), content_metadata.get("kind", "movie")
        vocabulary = self.genre_ids if self.genre_ids is not None else Genre.objects.values_list("id", flat=True)
        catalog = CatalogArrays.from_frames(
            pd.DataFrame({"title_id": [int(content_id)], "is_series": [kind == Title.Kind.SERIES]}),
            pd.DataFrame({"title_id": np.full(len(genre_ids), int(content_id)), "genre_id": genre_ids}),
            vocabulary,
        )
        stats = _frame(viewing_stats, CONTENT_VIEWING_COLUMNS[1:]).assign(title_id=int(content_id))
        aggregates = compute.content_aggregates(stats, as_of=as_of or timezone.now())
        return _store(self.feature_store, compute.content_features(aggregates, catalog, title_ids=[content_id]))


def _frame(rows: pd.DataFrame | QuerySet | Iterable[Any], columns: tuple[str, ...]) -> pd.DataFrame:
    """A DataFrame as is; a QuerySet or an iterable of ViewingEvents turned into the needed columns."""
    if isinstance(rows, pd.DataFrame):
        return rows
    if isinstance(rows, QuerySet):
        return pd.DataFrame(list(rows.values_list(*columns)), columns=list(columns))
    return pd.DataFrame([[getattr(row, c) for c in columns] for row in rows], columns=list(columns))


def _store(feature_store: FeatureStore, matrix: FeatureMatrix) -> FeatureRow:
    computed_at = timezone.now()
    entity_type = matrix.features.entity_type
    feature_store.set_many(entity_type, matrix.ids, matrix.values, computed_at=computed_at)
    batch = FeatureBatch(entity_type, matrix.ids, matrix.values, np.ones(1, bool), np.array([computed_at.timestamp()]))
    return batch.row(0)
