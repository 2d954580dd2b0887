"""An API client with its own key and a small world of profiles and titles."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from recommendations.api.auth import client_cache
from tests.factories.catalog import TitleFactory
from tests.factories.events import ApiClientFactory
from tests.factories.users import ProfileFactory

KEY = "events-test-key-0123456789abcdef"


@pytest.fixture
def app_client(db):
    """The ApiClient row the test posts as (its key is KEY)."""
    client_cache.clear()
    cache.clear()  # throttle windows of earlier runs
    yield ApiClientFactory(key=KEY, rate="100000/min")
    client_cache.clear()


@pytest.fixture
def api(app_client) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=KEY)
    return client


@pytest.fixture
def profiles(db) -> list:
    return ProfileFactory.create_batch(3)


@pytest.fixture
def titles(db) -> list:
    return TitleFactory.create_batch(6, duration_minutes=100)
