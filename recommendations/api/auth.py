"""Client apps: API-key authentication, scopes, a cost-counting rate limit and failed-key throttling.

- A key is looked up once and remembered for CLIENT_CACHE_SECONDS (known keys only: wrong keys are never
  stored, so a flood of distinct wrong keys costs no memory).
- Wrong keys are throttled per client address: after AUTH_FAILURE_BURST failures, that address gets 429
  until its bucket refills (AUTH_FAILURE_RATE a second), before any database lookup.
- Each client's rate (ApiClient.rate, e.g. 6000/min) is a token bucket (config/ratelimit.py): a request
  costs what it asks for (`view.request_cost(request)`: a batch counts each profile, events count rows), and
  a burst spends at most a tenth of the per-period rate (at least MAX_COST, at most the whole rate).
- Operations declare the scope they need (`required_scope`); a key without it gets 403.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions, permissions, throttling

from config import ratelimit
from config.reloading import VersionedSnapshot
from recommendations.models import ApiClient, api_key_digest

log = logging.getLogger(__name__)

HEADER = "X-Api-Key"
CLIENT_CACHE_SECONDS = 30.0  # a revoked key stops working within this
RATE_UNITS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "hour": 3600, "d": 86400, "day": 86400}
AUTH_FAILURE_BURST = 20
AUTH_FAILURE_RATE = 0.2  # a second: 12 wrong keys a minute per address once the burst is spent
MAX_COST = 100  # the dearest request (a batch of 100 profiles); a bucket always holds at least this
MAX_KEY_LENGTH = 256


@dataclass(frozen=True)
class ClientIdentity:
    """What a view knows of the calling app (request.user)."""

    client_id: int
    name: str
    rate: str
    scopes: frozenset[str] = frozenset()
    is_authenticated: bool = True


class _ClientCache:
    """Each known key's identity, read again when CLIENT_CACHE_SECONDS old (one reader per key at a time)."""

    def __init__(self) -> None:
        self._entries: dict[str, VersionedSnapshot[None, ClientIdentity | None]] = {}
        self._lock = threading.Lock()

    def lookup(self, key: str) -> ClientIdentity | None:
        digest = api_key_digest(key)
        entry = self._entries.get(digest)
        if entry is None:
            entry = VersionedSnapshot(
                f"API key {digest[:8]}",
                build=lambda _version, _previous: _client_read(digest),
                check_seconds=CLIENT_CACHE_SECONDS,
                log=log,
            )
        identity = entry.get()
        with self._lock:
            if identity is None:
                self._entries.pop(digest, None)  # unknown or revoked: never kept
            else:
                self._entries[digest] = entry
        return identity

    def is_cached(self, key: str) -> bool:
        entry = self._entries.get(api_key_digest(key))
        return entry is not None and entry.peek() is not None and entry.fresh()

    def clear(self) -> None:
        with self._lock:
            self._entries = {}


def _client_read(digest: str) -> ClientIdentity | None:
    client = ApiClient.objects.filter(key_digest=digest, is_active=True).values("id", "name", "rate", "scopes").first()
    if client is None:
        return None
    return ClientIdentity(client["id"], client["name"], client["rate"], frozenset(client["scopes"] or ()))


client_cache = _ClientCache()


class TooManyFailedKeys(exceptions.Throttled):
    default_detail = "Too many requests with a wrong API key from this address."


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """`X-Api-Key: <key>` (or `Authorization: Api-Key <key>`) identifies the client app."""

    def authenticate(self, request):
        key = request.headers.get(HEADER)
        if not key:
            scheme, _, value = request.headers.get("Authorization", "").partition(" ")
            key = value.strip() if scheme.lower() == "api-key" else None
        if not key:
            return None
        address = client_address(request)
        if not client_cache.is_cached(key):
            spent = ratelimit.take(f"authfail:{address}", rate=AUTH_FAILURE_RATE, capacity=AUTH_FAILURE_BURST, cost=0)
            if spent.tokens < 1:
                raise TooManyFailedKeys(wait=(1 - spent.tokens) / AUTH_FAILURE_RATE)
        identity = client_cache.lookup(key) if len(key) <= MAX_KEY_LENGTH and key.isascii() else None
        if identity is None:
            ratelimit.take(f"authfail:{address}", rate=AUTH_FAILURE_RATE, capacity=AUTH_FAILURE_BURST)
            raise exceptions.AuthenticationFailed("Unknown or revoked API key.")
        return identity, key

    def authenticate_header(self, request) -> str:
        return "Api-Key"  # so a missing key is a 401, not a 403


def client_address(request) -> str:
    """The peer address (behind a proxy, the proxy must set REMOTE_ADDR: gunicorn's forwarded_allow_ips)."""
    return request.META.get("REMOTE_ADDR", "") or "unknown"


class HasScope(permissions.BasePermission):
    """The client's key carries the scope the operation declares as `required_scope`."""

    message = "This API key may not do this."

    def has_permission(self, request, view) -> bool:
        identity = request.user
        needed = getattr(view, "required_scope", None)
        if not isinstance(identity, ClientIdentity):
            return False
        if needed is not None and needed not in identity.scopes:
            self.message = f"This API key lacks the {needed!r} scope."
            return False
        return True


class ClientRateThrottle(throttling.BaseThrottle):
    """Each client's own rate as a token bucket; a request costs `view.request_cost(request)` (default 1)."""

    def allow_request(self, request, view) -> bool:
        identity = request.user
        if not isinstance(identity, ClientIdentity):
            return True
        limit, period = parse_rate(identity.rate)
        rate = limit / period
        capacity = max(limit / 10, min(limit, MAX_COST))
        cost_of = getattr(view, "request_cost", None)
        cost = min(max(1, int(cost_of(request)) if cost_of else 1), capacity)  # the dearest empties the bucket
        decision = ratelimit.take(f"client:{identity.client_id}", rate=rate, capacity=capacity, cost=cost)
        self._wait = decision.retry_after
        return decision.allowed

    def wait(self) -> float | None:
        return getattr(self, "_wait", None)


def parse_rate(rate: str) -> tuple[int, int]:
    count, _, unit = rate.partition("/")
    return int(count), RATE_UNITS[unit]


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "recommendations.api.auth.ApiKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "header", "name": HEADER}
