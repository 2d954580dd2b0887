"""Token buckets in Redis (one atomic script per request), with a bounded in-process fallback.

A bucket holds at most `capacity` tokens and refills at `rate` tokens a second; a request takes `cost` tokens or
is refused, with the seconds until it could pass. Unlike fixed windows, no window boundary lets twice the rate
through: over any period T at most `capacity + rate·T` tokens are spent. When Redis is unreachable the same
buckets live in this process (at most LOCAL_BUCKETS of them, least recently used dropped), so limits keep
holding per process instead of vanishing. On a Redis Cluster each bucket is one key, so its script runs on the
one node of that key's slot; a node that is down sends only its buckets to the local fallback.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

from django.conf import settings

from config.redis_cluster import shared_redis

log = logging.getLogger(__name__)

LOCAL_BUCKETS = 10_000
_SCRIPT = """
local tokens_key = KEYS[1]
local rate, capacity, cost = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local state = redis.call('HMGET', tokens_key, 'tokens', 'at')
local tokens = tonumber(state[1]) or capacity
local at = tonumber(state[2]) or now
tokens = math.min(capacity, tokens + math.max(0, now - at) * rate)
local allowed = 0
if tokens >= cost then
  tokens = tokens - cost
  allowed = 1
end
redis.call('HSET', tokens_key, 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', tokens_key, math.ceil((capacity / rate) * 1000) + 1000)
return {allowed, tostring(tokens)}
"""


@dataclass(frozen=True)
class Decision:
    allowed: bool
    tokens: float  # left after this request
    retry_after: float  # seconds until `cost` tokens are there again (0 when allowed)
    shared: bool  # False: counted in this process only (Redis unavailable or not configured)


class _LocalBuckets:
    def __init__(self, size: int = LOCAL_BUCKETS) -> None:
        self.size = size
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, key: str, rate: float, capacity: float, cost: float) -> tuple[bool, float]:
        now = time.monotonic()
        with self._lock:
            tokens, at = self._buckets.pop(key, (capacity, now))
            tokens = min(capacity, tokens + max(0.0, now - at) * rate)
            allowed = tokens >= cost
            if allowed:
                tokens -= cost
            self._buckets[key] = (tokens, now)
            while len(self._buckets) > self.size:
                self._buckets.popitem(last=False)
        return allowed, tokens

    def clear(self) -> None:
        with self._lock:
            self._buckets.clear()


local_buckets = _LocalBuckets()
_script = None  # (client, registered script): registered again when the cache's client changes
_warned_at = 0.0


def take(key: str, *, rate: float, capacity: float, cost: float = 1.0) -> Decision:
    """Take `cost` tokens from bucket `key` (rate: tokens per second). Never raises for Redis trouble."""
    allowed, tokens, shared = None, 0.0, False
    try:
        client = shared_redis()
        if client is not None:
            allowed, tokens = _take_shared(client, key, rate, capacity, cost)
            shared = True
    except Exception as error:
        _warn(error)
    if allowed is None:
        allowed, tokens = local_buckets.take(key, rate, capacity, cost)
    retry_after = 0.0 if allowed else (cost - tokens) / rate
    return Decision(bool(allowed), tokens, retry_after, shared)


def _take_shared(client, key: str, rate: float, capacity: float, cost: float) -> tuple[bool, float]:
    global _script
    if _script is None or _script[0] is not client:
        _script = (client, client.register_script(_SCRIPT))
    allowed, tokens = _script[1](keys=[f"{settings.CACHE_KEY_PREFIX}:bucket:{key}"], args=[rate, capacity, cost])
    return bool(int(allowed)), float(tokens)


def _warn(error: Exception) -> None:
    global _warned_at
    if time.monotonic() - _warned_at > 60:  # once a minute, not once a request
        _warned_at = time.monotonic()
        log.warning("rate limits counted per process: Redis unavailable (%s)", error)


def seconds_header(seconds: float) -> str:
    return str(max(1, math.ceil(seconds)))
