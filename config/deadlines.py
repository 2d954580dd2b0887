"""How long this thread may wait for the database, per call: set per request by DeadlineMiddleware.

The request path (`/api/`, health) gets RECO_API_DB_TIMEOUT_SECONDS, staff and admin pages
RECO_PAGE_DB_TIMEOUT_SECONDS; jobs and commands set none (their long queries are bounded by Celery's time
limits). `config.db` enforces it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from django.conf import settings
from django.http import HttpRequest, HttpResponse

_local = threading.local()
FAST_PATHS = ("/api/", "/healthz", "/readyz")


def database_deadline() -> float | None:
    return getattr(_local, "seconds", None)


@contextmanager
def database_deadline_set(seconds: float | None) -> Iterator[None]:
    previous = getattr(_local, "seconds", None)
    _local.seconds = seconds
    try:
        yield
    finally:
        _local.seconds = previous


class DeadlineMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        fast = request.path.startswith(FAST_PATHS)
        seconds = settings.RECO_API_DB_TIMEOUT_SECONDS if fast else settings.RECO_PAGE_DB_TIMEOUT_SECONDS
        with database_deadline_set(seconds or None):
            return self.get_response(request)
