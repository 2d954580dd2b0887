"""Shared fixtures. Service-backed tests talk to the real PostgreSQL and Redis named by the environment."""
from __future__ import annotations

import os

import pytest
from django.conf import settings
from django.contrib.auth.models import Group

from tests.factories.auth import UserFactory
from tests.factories.catalog import GenreFactory, TitleFactory
from tests.factories.users import AccountFactory, ProfileFactory

ON_CI = os.environ.get("CI", "").lower() in {"1", "true"}


def pytest_configure(config):
    # On CI a silently embedded SQLite or local-memory cache would make the real-services tests meaningless.
    if ON_CI:
        engine = settings.DATABASES["default"]["ENGINE"]
        if not engine.endswith("postgresql"):
            raise pytest.UsageError(f"CI must test on PostgreSQL (DATABASE_URL), not {engine}.")
        if not settings.REDIS_URL:
            raise pytest.UsageError("CI must test against Redis: set REDIS_URL.")


@pytest.fixture
def is_postgres() -> bool:
    return settings.DATABASES["default"]["ENGINE"].endswith("postgresql")


@pytest.fixture
def genre(db):
    return GenreFactory(name="Drama")


@pytest.fixture
def title(db, genre):
    return TitleFactory(genres=[genre])


@pytest.fixture
def account(db):
    return AccountFactory()


@pytest.fixture
def profile(db, account):
    return ProfileFactory(account=account)


@pytest.fixture
def editor(db):
    """A staff user in the Editors group that catalog migration 0002 creates."""
    user = UserFactory(is_staff=True)
    user.groups.add(Group.objects.get(name="Editors"))
    return user


@pytest.fixture
def editor_client(client, editor):
    client.force_login(editor)
    return client
