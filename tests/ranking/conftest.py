"""The rules version lives in the real cache (Redis under `make test`): every test starts without one."""
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
def staff_client(client, db):
    """A staff user outside the Editors group."""
    client.force_login(UserFactory(is_staff=True))
    return client
