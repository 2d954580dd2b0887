"""The rules version lives in the real cache (Redis under `make test`): every test starts without one."""

from __future__ import annotations

import pytest

from tests.factories.auth import UserFactory


@pytest.fixture(autouse=True)
def _fresh_rules_version(no_published_rules_version):
    """Every test here starts without a published rules version (tests/conftest.py)."""


@pytest.fixture
def staff_client(client, db):
    """A staff user outside the Editors group."""
    client.force_login(UserFactory(is_staff=True))
    return client
