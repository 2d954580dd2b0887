"""Staff pages: users on either side of the staff line, and no rules version left in Redis between tests."""
from __future__ import annotations

import pytest
from django.core.cache import cache

from ranking.rules import RULES_VERSION_KEY
from tests.factories.auth import UserFactory


@pytest.fixture(autouse=True)
def no_published_rules_version():
    cache.delete(RULES_VERSION_KEY)  # database ids restart each run; a version left in Redis would be stale
    yield
    cache.delete(RULES_VERSION_KEY)


@pytest.fixture
def outsider_client(client, db):
    """Signed in, active, but not staff (a viewer's account, say)."""
    client.force_login(UserFactory(is_staff=False))
    return client


@pytest.fixture
def superuser_client(client, db):
    """Staff with every permission: may activate and roll back model versions."""
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client
