"""GET /metrics: Prometheus text format. Not public: with RECO_METRICS_TOKEN set, a scraper sends
`Authorization: Bearer <token>`; without one, only a direct loopback connection (no proxy's forwarding header)
or a signed-in staff user may read it."""

from __future__ import annotations

import hmac

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest, multiprocess

from config.errors import error_body
from config.observability.jobs import JobRunCollector
from config.observability.metrics import MULTIPROCESS_DIR

LOOPBACK = frozenset({"127.0.0.1", "::1"})
_jobs = JobRunCollector()


def _registry() -> CollectorRegistry:
    if MULTIPROCESS_DIR:
        registry = CollectorRegistry()  # every process's values, summed from their files
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = CollectorRegistry()
        registry.register(_Default())
    registry.register(_jobs)
    return registry


class _Default:
    """This process's own metrics (no multiprocess directory: runserver, tests)."""

    def collect(self):
        return REGISTRY.collect()


def may_scrape(request: HttpRequest) -> bool:
    token = settings.RECO_METRICS_TOKEN
    if token:
        sent = request.headers.get("Authorization", "")
        if hmac.compare_digest(sent.encode(), f"Bearer {token}".encode()):
            return True
    elif request.META.get("REMOTE_ADDR") in LOOPBACK and not (
        request.headers.get("X-Forwarded-For") or request.headers.get("Forwarded")
    ):
        return True
    user = getattr(request, "user", None)
    return bool(user is not None and user.is_active and user.is_staff)


@never_cache
@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    if not may_scrape(request):
        how = (
            "Send Authorization: Bearer <RECO_METRICS_TOKEN>."
            if settings.RECO_METRICS_TOKEN
            else "Scrape over loopback, or set RECO_METRICS_TOKEN and send it as a Bearer token."
        )
        return JsonResponse(error_body("forbidden", f"Metrics are not public. {how}"), status=403)
    return HttpResponse(generate_latest(_registry()), content_type=CONTENT_TYPE_LATEST)
