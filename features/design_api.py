"""The design document's feature-store API (docs/design-api.md): FeatureStore(redis_host=, redis_port=) answering
plain mappings, over features.store; the generators are features.generators' (they take the design's frames)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlparse

import numpy as np
import redis
from django.conf import settings

from catalog.models import Genre
from features import store
from features.generators import ContentFeatureGenerator, UserFeatureGenerator, genre_ids_named
from features.keys import DEFAULT_NAMESPACE
from features.ml.definitions import USER, feature_set

__all__ = ["ContentFeatureGenerator", "FeatureStore", "OnlineFeatures", "UserFeatureGenerator"]

SOCKET_TIMEOUT_SECONDS = 0.5  # as FeatureStore.from_url: a read past it degrades, flagged, instead of waiting
GENRE_NAMED = "favorite_genres"  # the one feature the design shows by name (stored as genre ids)


class OnlineFeatures(dict):
    """One entity's features as the design prints them: {name: number or list}; what the store knows about the
    read rides along as attributes (computed_at None and every name in `defaulted` when nothing was stored)."""

    def __init__(self, values: Mapping[str, Any], *, row: store.FeatureRow) -> None:
        super().__init__(values)
        self.entity_type, self.entity_id = row.entity_type, row.entity_id
        self.computed_at: dt.datetime | None = row.computed_at
        self.defaulted = row.defaulted
        self.store_unavailable = row.store_unavailable


class FeatureStore(store.FeatureStore):
    """features.store.FeatureStore, built the design's way and read as plain mappings.

    redis_host / redis_port / redis_db: a Redis of its own (db default: REDIS_URL's database, else 0), with
    SOCKET_TIMEOUT_SECONDS on every call; without redis_host, the product's configured store.
    """

    def __init__(
        self,
        connection: redis.Redis | None = None,
        *,
        redis_host: str | None = None,
        redis_port: int = 6379,
        redis_db: int | None = None,
        namespace: str = DEFAULT_NAMESPACE,
        backend: store.Backend | None = None,
    ) -> None:
        if redis_host is not None:
            if connection is not None or backend is not None:
                raise ValueError("give redis_host/redis_port, or a connection or backend, not both")
            connection = redis.Redis(
                host=redis_host,
                port=int(redis_port),
                db=_configured_db() if redis_db is None else int(redis_db),
                socket_timeout=SOCKET_TIMEOUT_SECONDS,
                socket_connect_timeout=SOCKET_TIMEOUT_SECONDS,
                retry=None,
            )
        super().__init__(connection, namespace=namespace, backend=backend)

    def get_online_features(  # type: ignore[override]  # the design's mapping, not a FeatureRow
        self, entity_type: str, entity_id: int, feature_names: Iterable[str] | None = None
    ) -> OnlineFeatures:
        """{name: value} of one entity (every feature when `feature_names` is None): numbers, vectors as lists,
        favorite_genres as genre names (fewer than 3 when fewer genres were watched)."""
        row = super().get_online_features(entity_type, entity_id, feature_names)
        values: dict[str, Any] = {}
        for name, value in row.values.items():
            values[name] = value.tolist() if isinstance(value, np.ndarray) else value
        if entity_type == USER and GENRE_NAMED in values:
            ids = [genre for genre in values[GENRE_NAMED] if genre >= 0]
            names = dict(Genre.objects.filter(id__in=ids).values_list("id", "name"))
            values[GENRE_NAMED] = [names[genre] for genre in ids if genre in names]
        return OnlineFeatures(values, row=row)

    def set_batch_features(
        self,
        entity_type: str,
        entity_id: int,
        features: Mapping[str, Any],
        ttl_seconds: int | None = None,
        *,
        computed_at: dt.datetime | None = None,
    ) -> None:
        """features.store.FeatureStore.set_batch_features; favorite_genres may also be genre names, as read."""
        genres = features.get(GENRE_NAMED) if entity_type == USER else None
        if genres is not None and any(isinstance(genre, str) for genre in genres):
            ids = list(genre_ids_named([str(genre) for genre in genres]).values())
            width = feature_set(USER).feature(GENRE_NAMED).width
            if len(ids) > width:
                raise ValueError(f"{GENRE_NAMED} holds at most {width} genres, not {len(ids)}")
            features = {**features, GENRE_NAMED: ids + [-1] * (width - len(ids))}
        super().set_batch_features(entity_type, entity_id, features, ttl_seconds, computed_at=computed_at)


def _configured_db() -> int:
    url = getattr(settings, "REDIS_URL", "") or ""
    path = urlparse(url).path.strip("/") if url else ""
    return int(path) if path.isdigit() else 0
