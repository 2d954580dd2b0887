"""The seed's generator interface: thin wrappers that compute one entity's features and store them.

The batch jobs use features.services instead; both run the same vectorised code in features.ml.compute.
Frames in the design's shape are accepted too (docs/design-api.md): `content_id` for title_id,
`watch_duration_sec` for watch_seconds, `completed` from watch_percentage when absent, viewings without times
taken as ending just before `as_of`, and genres by name (a `genres` column, or the metadata's `genres`).
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
from features import selectors
from features.ml import compute
from features.ml.compute import CONTENT_VIEWING_COLUMNS, VIEWING_COLUMNS, CatalogArrays, FeatureMatrix
from features.store import FeatureBatch, FeatureRow, FeatureStore
from users.loaders.dataset import COMPLETED_AT

# The design's viewing columns and ours (docs/design-api.md).
DESIGN_COLUMNS = {"content_id": "title_id", "watch_duration_sec": "watch_seconds"}


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
        """Compute profile `user_id`'s features from its viewings (VIEWING_COLUMNS or ViewingEvents, or the
        design's frame: see the module docstring), store them. A `genres` column (names, comma-separated or a
        list) gives the titles' genres instead of the catalog's."""
        as_of = as_of or timezone.now()
        history = _design_viewings(_frame(viewing_history, VIEWING_COLUMNS[1:]), as_of=as_of)
        history = history.assign(profile_id=int(user_id))
        catalog = self.catalog or selectors.catalog_arrays(title_ids=history["title_id"].unique())
        if "genres" in history.columns:
            catalog = _with_named_genres(catalog, history)
        matrix = compute.user_features(history, catalog, as_of=as_of, profile_ids=[user_id])
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
        """Compute title `content_id`'s features from its metadata (a Title, or a mapping with `genre_ids` or
        the design's genre names `genres`, and `kind`) and its viewings (started_at, watch_percentage,
        completed; the design's `content_id` column and no `completed` too), and store them."""
        if isinstance(content_metadata, Title):
            genre_ids = list(content_metadata.genres.values_list("id", flat=True))
            kind = content_metadata.kind
        else:
            genre_ids, kind = list(content_metadata.get("genre_ids", [])), content_metadata.get("kind", "movie")
            if "genres" in content_metadata and "genre_ids" not in content_metadata:
                genre_ids = list(genre_ids_named(content_metadata["genres"]).values())
        vocabulary = self.genre_ids if self.genre_ids is not None else Genre.objects.values_list("id", flat=True)
        catalog = CatalogArrays.from_frames(
            pd.DataFrame({"title_id": [int(content_id)], "is_series": [kind == Title.Kind.SERIES]}),
            pd.DataFrame({"title_id": np.full(len(genre_ids), int(content_id)), "genre_id": genre_ids}),
            vocabulary,
        )
        stats = _design_viewings(_frame(viewing_stats, CONTENT_VIEWING_COLUMNS[1:]), as_of=None)
        stats = stats.assign(title_id=int(content_id))
        aggregates = compute.content_aggregates(stats, as_of=as_of or timezone.now())
        return _store(self.feature_store, compute.content_features(aggregates, catalog, title_ids=[content_id]))


def _frame(rows: pd.DataFrame | QuerySet | Iterable[Any], columns: tuple[str, ...]) -> pd.DataFrame:
    """A DataFrame as is; a QuerySet or an iterable of ViewingEvents turned into the needed columns."""
    if isinstance(rows, pd.DataFrame):
        return rows
    if isinstance(rows, QuerySet):
        return pd.DataFrame(list(rows.values_list(*columns)), columns=list(columns))
    return pd.DataFrame([[getattr(row, c) for c in columns] for row in rows], columns=list(columns))


def _design_viewings(frame: pd.DataFrame, *, as_of: dt.datetime | None) -> pd.DataFrame:
    """The design's column names and omissions turned into ours (a copy; our own frames pass unchanged)."""
    renamed = {old: new for old, new in DESIGN_COLUMNS.items() if old in frame.columns and new not in frame.columns}
    frame = frame.rename(columns=renamed)
    if "completed" not in frame.columns and "watch_percentage" in frame.columns:
        frame = frame.assign(completed=frame["watch_percentage"].to_numpy(np.float64) >= COMPLETED_AT)
    if as_of is not None and "watch_seconds" in frame.columns:
        seconds = pd.to_timedelta(frame["watch_seconds"].to_numpy(np.float64), unit="s")
        if "started_at" not in frame.columns:  # no times: each viewing ended a second before as_of
            frame = frame.assign(started_at=pd.Timestamp(as_of) - pd.Timedelta(seconds=1) - seconds)
        if "last_watched_at" not in frame.columns:
            frame = frame.assign(last_watched_at=pd.DatetimeIndex(frame["started_at"]) + seconds)
    return frame


def genre_ids_named(names: str | Iterable[str]) -> dict[str, int]:
    """{name: id} of genres named in the catalog (a comma-separated string or a list); ValueError for others."""
    wanted = [n.strip() for n in (names.split(",") if isinstance(names, str) else names) if n.strip()]
    found = dict(Genre.objects.filter(name__in=wanted).values_list("name", "id"))
    unknown = sorted(set(wanted) - set(found))
    if unknown:
        raise ValueError(
            f"unknown genres {unknown}; the catalog has {sorted(Genre.objects.values_list('name', flat=True))}"
        )
    return {name: found[name] for name in wanted}


def _with_named_genres(catalog: CatalogArrays, history: pd.DataFrame) -> CatalogArrays:
    """The history's titles with the genres its `genres` column names (kinds from `catalog` where it knows them)."""
    per_title = history[["title_id", "genres"]].drop_duplicates("title_id")
    names = per_title["genres"].map(lambda value: value.split(",") if isinstance(value, str) else list(value))
    links = per_title.assign(genre=names).explode("genre").dropna(subset=["genre"])
    links["genre"] = links["genre"].str.strip()
    ids = genre_ids_named(links["genre"].unique().tolist())
    title_ids = per_title["title_id"].to_numpy(np.int64)
    is_series = np.zeros(len(title_ids), bool)
    if len(catalog.title_ids):
        position, known = catalog.positions(title_ids)
        is_series = known & catalog.is_series[position]
    titles = pd.DataFrame({"title_id": title_ids, "is_series": is_series})
    title_genres = pd.DataFrame(
        {"title_id": links["title_id"].to_numpy(np.int64), "genre_id": links["genre"].map(ids).to_numpy(np.int64)}
    )
    return CatalogArrays.from_frames(titles, title_genres, Genre.objects.values_list("id", flat=True))


def _store(feature_store: FeatureStore, matrix: FeatureMatrix) -> FeatureRow:
    computed_at = timezone.now()
    entity_type = matrix.features.entity_type
    feature_store.set_many(entity_type, matrix.ids, matrix.values, computed_at=computed_at)
    batch = FeatureBatch(entity_type, matrix.ids, matrix.values, np.ones(1, bool), np.array([computed_at.timestamp()]))
    return batch.row(0)
