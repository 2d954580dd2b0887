"""Named locks so that two runs of the same job never overlap (Redis, or the local cache without Redis)."""
from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings
from django.core.cache import cache

LOCK_PREFIX = "reco:lock:"


@contextmanager
def job_lock(name: str, *, timeout_seconds: int) -> Iterator[bool]:
    """Yields whether the lock was acquired (never waits). It expires after `timeout_seconds` if the holder dies."""
    key = LOCK_PREFIX + name
    if settings.REDIS_URL:
        from django_redis import get_redis_connection
        from redis.exceptions import LockError

        lock = get_redis_connection("default").lock(key, timeout=timeout_seconds, blocking=False)
        acquired = lock.acquire()
        try:
            yield acquired
        finally:
            if acquired:
                try:
                    lock.release()
                except LockError:  # expired and maybe taken over: not ours to release any more
                    pass
        return
    token = uuid.uuid4().hex
    acquired = cache.add(key, token, timeout_seconds)
    try:
        yield acquired
    finally:
        if acquired and cache.get(key) == token:
            cache.delete(key)


def lock_held(name: str) -> bool:
    if settings.REDIS_URL:
        from django_redis import get_redis_connection

        return bool(get_redis_connection("default").exists(LOCK_PREFIX + name))
    return cache.get(LOCK_PREFIX + name) is not None
