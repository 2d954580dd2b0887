"""Fixtures of the recommendation tests: an API client app with its key, and a profile with a viewing history."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from recommendations.models import ApiClient
from users.models import Profile, ViewingEvent

API_KEY = "test-key-0123456789abcdef"


@pytest.fixture
def api(serving_world) -> APIClient:
    """/api clients authenticated as one client app (1,000 requests a minute), over the serving world."""
    ApiClient.issue("tests", key=API_KEY, rate="1000/min")
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=API_KEY)
    return client


@pytest.fixture
def profile(serving_world) -> Profile:
    """The serving world's profile with the highest id among those with viewings (here, in place of tests/conftest.py's
    empty profile)."""
    return Profile.objects.get(pk=ViewingEvent.objects.order_by("-profile_id").values("profile_id")[0]["profile_id"])
