"""Staff pages: users on either side of the staff line, and no rules version left in Redis between tests."""

from __future__ import annotations

import pytest

from tests.factories.auth import UserFactory


@pytest.fixture(autouse=True)
def _fresh_rules_version(no_published_rules_version):
    """Every test here starts without a published rules version (tests/conftest.py)."""


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
