"""Job locks tied to a live holder, so that two runs of a job never overlap and a dead one never blocks.

A lock is a key holding its holder's token with a short TTL (settings.RECO_JOB_LOCK_SECONDS, 60 s): the
job's heartbeat renews it every third of that while the job runs, so a holder killed with `kill -9` lets
go within one TTL instead of after the job's whole time limit. Redis (one server or a cluster: every
command and script touches the lock's one key, so one slot) when configured, else the local cache (one
process: the embedded and eager modes).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings
from django.core.cache import cache

from config.redis_cluster import shared_redis

LOCK_PREFIX = "reco:lock:"

# Renew only while the key still holds our token; take it again if it vanished (Redis restarted empty),
# never from another holder. Returns 1 while we hold it.
_RENEW = """
local held = redis.call('get', KEYS[1])
if held == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end
if not held then
  if redis.call('set', KEYS[1], ARGV[1], 'PX', ARGV[2], 'NX') then return 1 end
end
return 0
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


def _redis():
    return shared_redis()


class JobLock:
    """One holder's claim on a named lock; `token` identifies the holder (it is recorded on the JobRun)."""

    def __init__(self, name: str, *, ttl_seconds: int | None = None, token: str | None = None) -> None:
        self.name = name
        self.key = LOCK_PREFIX + name
        self.ttl_seconds = int(ttl_seconds or settings.RECO_JOB_LOCK_SECONDS)
        self.token = token or uuid.uuid4().hex

    def acquire(self) -> bool:
        """Take the lock if nobody holds it (never waits)."""
        if (client := _redis()) is not None:
            return bool(client.set(self.key, self.token, nx=True, px=self.ttl_seconds * 1000))
        return cache.add(self.key, self.token, self.ttl_seconds)

    def renew(self) -> bool:
        """Extend our hold by one TTL; False when another holder has it (ours lapsed and was taken)."""
        if (client := _redis()) is not None:
            return bool(client.eval(_RENEW, 1, self.key, self.token, self.ttl_seconds * 1000))
        held = cache.get(self.key)
        if held == self.token:
            return cache.touch(self.key, self.ttl_seconds)
        return held is None and cache.add(self.key, self.token, self.ttl_seconds)

    def release(self) -> None:
        """Let go, only if we still hold it (a lapsed lock may belong to someone else by now)."""
        if (client := _redis()) is not None:
            client.eval(_RELEASE, 1, self.key, self.token)
        elif cache.get(self.key) == self.token:
            cache.delete(self.key)

    def holder(self) -> str | None:
        """The token of whoever holds the lock now, or None."""
        if (client := _redis()) is not None:
            held = client.get(self.key)
            return held.decode() if isinstance(held, bytes) else held
        return cache.get(self.key)


@contextmanager
def job_lock(name: str, *, timeout_seconds: int | None = None) -> Iterator[bool]:
    """Yields whether the lock was acquired (never waits); released on exit. Without a heartbeat, so for
    work shorter than `timeout_seconds` (the lock then lapses on its own if the holder dies)."""
    lock = JobLock(name, ttl_seconds=timeout_seconds)
    acquired = lock.acquire()
    try:
        yield acquired
    finally:
        if acquired:
            lock.release()
