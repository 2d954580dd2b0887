"""Client-app authentication by API key, and a per-client fixed-window rate limit in the shared cache."""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from django.core.cache import cache
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions, throttling

from recommendations.models import ApiClient, api_key_digest

log = logging.getLogger(__name__)

HEADER = "X-Api-Key"
CLIENT_CACHE_SECONDS = 30.0  # a revoked key stops working within this
RATE_UNITS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "hour": 3600, "d": 86400, "day": 86400}


@dataclass(frozen=True)
class ClientIdentity:
    """What a view knows of the calling app (request.user)."""

    client_id: int
    name: str
    rate: str
    is_authenticated: bool = True


class _ClientCache:
    def __init__(self) -> None:
        self._entries: dict[str, tuple[float, ClientIdentity | None]] = {}
        self._lock = threading.Lock()

    def lookup(self, key: str) -> ClientIdentity | None:
        digest = api_key_digest(key)
        entry = self._entries.get(digest)
        if entry is not None and time.monotonic() - entry[0] < CLIENT_CACHE_SECONDS:
            return entry[1]
        client = ApiClient.objects.filter(key_digest=digest, is_active=True).values("id", "name", "rate").first()
        identity = ClientIdentity(client["id"], client["name"], client["rate"]) if client else None
        with self._lock:
            self._entries[digest] = (time.monotonic(), identity)
        return identity

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


client_cache = _ClientCache()


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """`X-Api-Key: <key>` (or `Authorization: Api-Key <key>`) identifies the client app."""

    def authenticate(self, request):  # noqa: ANN001, ANN201
        key = request.headers.get(HEADER)
        if not key:
            scheme, _, value = request.headers.get("Authorization", "").partition(" ")
            key = value.strip() if scheme.lower() == "api-key" else None
        if not key:
            return None
        identity = client_cache.lookup(key)
        if identity is None:
            raise exceptions.AuthenticationFailed("Unknown or revoked API key.")
        return identity, key

    def authenticate_header(self, request) -> str:  # noqa: ANN001
        return "Api-Key"  # so a missing key is a 401, not a 403


class ClientRateThrottle(throttling.BaseThrottle):
    """Each client's own rate (ApiClient.rate) over fixed windows, counted with one INCR in the cache.

    A cache outage lets requests through (logged): a throttle must never take the API down.
    """

    def allow_request(self, request, view) -> bool:  # noqa: ANN001
        identity = request.user
        if not isinstance(identity, ClientIdentity):
            return True
        limit, period = parse_rate(identity.rate)
        window = int(time.time() // period)
        key = f"throttle:{identity.client_id}:{period}:{window}"
        try:
            if cache.add(key, 1, timeout=period + 1):
                count = 1
            else:
                count = cache.incr(key)
        except Exception:
            log.warning("rate limit not enforced: cache unavailable", exc_info=True)
            return True
        self._wait = period - time.time() % period
        return count <= limit

    def wait(self) -> float | None:
        return getattr(self, "_wait", None)


def parse_rate(rate: str) -> tuple[int, int]:
    count, _, unit = rate.partition("/")
    return int(count), RATE_UNITS[unit]


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "recommendations.api.auth.ApiKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema):  # noqa: ANN001, ANN201
        return {"type": "apiKey", "in": "header", "name": HEADER}
