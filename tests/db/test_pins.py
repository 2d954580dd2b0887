"""Read-your-writes pins (config.db.replicas) on the real Redis: shared across processes, expiring, and the
primary whenever they cannot be read or written."""

from __future__ import annotations

import time

import pytest
from django.core.cache import cache

from config.db import replicas
from config.db.router import ReplicaRouter
from tests.factories.users import AccountFactory, ProfileFactory
from users.models import Account, Profile

UNREACHABLE_REDIS = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": "redis://127.0.0.1:1/0",
        "OPTIONS": {"socket_connect_timeout": 0.2},
    }
}


@pytest.fixture
def with_replicas(settings):
    settings.DATABASE_REPLICA_ALIASES = ["replica1"]
    settings.DATABASE_PIN_SECONDS = 1.0
    replicas._local_pins.clear()
    replicas._everyone_until = 0.0
    yield settings
    replicas._local_pins.clear()
    replicas._everyone_until = 0.0


def pinned_elsewhere(profile_id: int) -> bool:
    """What another web host finds: only the shared pins, none of this process's own."""
    saved, replicas._local_pins = replicas._local_pins, {}
    try:
        return replicas._pin_lookup(profile_id)
    finally:
        replicas._local_pins = saved


def test_a_pin_is_shared_through_the_cache_and_expires(with_replicas):
    cache.delete_many([replicas.PIN_KEY.format(pk) for pk in (901, 902)])
    replicas.pin_profiles([901])

    assert replicas._pin_lookup(901) and pinned_elsewhere(901)
    assert not pinned_elsewhere(902)
    time.sleep(1.2)
    assert not pinned_elsewhere(901) and not replicas._pin_lookup(901)


def test_without_replicas_nothing_is_pinned(settings):
    settings.DATABASE_REPLICA_ALIASES = []
    cache.delete(replicas.PIN_KEY.format(903))
    replicas.pin_profiles([903])
    assert cache.get(replicas.PIN_KEY.format(903)) is None


def test_pins_that_cannot_be_read_count_as_pinned(with_replicas):
    with_replicas.CACHES = UNREACHABLE_REDIS
    assert replicas._pin_lookup(904) is True


def test_a_pin_that_cannot_be_shared_pins_everyone_in_this_process(with_replicas):
    with_replicas.CACHES = UNREACHABLE_REDIS
    replicas.pin_profiles([905])
    assert replicas._everyone_until > time.monotonic()
    assert replicas._pin_lookup(906)  # a profile that never wrote: still the primary, for the pin's length


def test_saving_an_account_or_a_profile_pins_the_profiles_it_changes(with_replicas, db):
    account = AccountFactory()
    profiles = [ProfileFactory(account=account, slot=slot) for slot in (1, 2)]
    other = ProfileFactory()
    router = ReplicaRouter()

    assert router.db_for_write(Account, instance=account) == replicas.PRIMARY
    assert [pinned_elsewhere(p.pk) for p in (*profiles, other)] == [True, True, False]
    router.db_for_write(Profile, instance=other)
    assert pinned_elsewhere(other.pk)
