"""Feature-store fixtures: a store with its own key namespace, the raw Redis client, hand-made histories."""

from __future__ import annotations

import uuid

import pytest
from django.conf import settings

from catalog.models import Genre, Title
from features.store import FeatureStore, RedisBackend
from tests.factories.catalog import GenreFactory, TitleFactory
from tests.factories.users import ProfileFactory, ViewingEventFactory
from tests.features.histories import CONTENT_HISTORY, GENRES, TITLES, USER_HISTORY


@pytest.fixture
def store():
    """The configured store (Redis with REDIS_URL, else the database table) under a namespace of its own."""
    feature_store = FeatureStore(namespace=f"fs-test-{uuid.uuid4().hex[:12]}")
    yield feature_store
    if isinstance(feature_store.backend, RedisBackend):
        client = feature_store.backend.client
        keys = list(client.scan_iter(f"{feature_store.namespace}:*", count=1000))
        if keys:
            client.delete(*keys)


@pytest.fixture
def redis_store(store):
    """The store on real Redis. Skipped only without REDIS_URL; an unreachable Redis fails the test."""
    if not settings.REDIS_URL:
        pytest.skip("no REDIS_URL: the embedded database store is in use")
    assert isinstance(store.backend, RedisBackend)
    store.backend.client.ping()
    return store


@pytest.fixture
def catalog_rows(db) -> tuple[dict[str, Genre], dict[str, Title]]:
    """The genres and titles of tests.features.histories, created in slot (id) order."""
    genres = {name: GenreFactory(name=f"features-{name}") for name in GENRES}
    titles = {
        name: TitleFactory(kind=kind, episode_count=10 if kind == "series" else 1, genres=[genres[g] for g in names])
        for name, (kind, names) in TITLES.items()
    }
    return genres, titles


@pytest.fixture
def user_histories(catalog_rows):
    """One profile per USER_HISTORY entry, with its viewings; returns {name: profile}."""
    _, titles = catalog_rows
    profiles = {name: ProfileFactory() for name in USER_HISTORY}
    for name, history in USER_HISTORY.items():
        for title, started, ended, seconds, percentage, completed in history:
            ViewingEventFactory(
                profile=profiles[name],
                title=titles[title],
                started_at=started,
                last_watched_at=ended,
                watch_seconds=seconds,
                watch_percentage=percentage,
                completed=completed,
            )
    return profiles


@pytest.fixture
def content_histories(catalog_rows):
    _, titles = catalog_rows
    for title, views in CONTENT_HISTORY.items():
        for started, percentage, completed in views:
            ViewingEventFactory(
                title=titles[title], started_at=started, watch_percentage=percentage, completed=completed
            )
    return titles
