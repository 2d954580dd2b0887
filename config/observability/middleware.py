"""First in the chain: gives each request its id (logs carry it, the response says it in X-Request-Id) and
times it into reco_http_request_duration_seconds per endpoint (the URL pattern, never the raw path)."""

from __future__ import annotations

import time
import uuid

from django.core.signals import request_finished

from config.observability import metrics
from config.observability.logs import request_id_var


class RequestObservabilityMiddleware:
    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        request.request_id = uuid.uuid4().hex  # ours, never a client's: the body's request_id joins events to it
        # Kept until the response is closed: Django logs an error response after the middleware chain.
        request_id_var.set(request.request_id)
        response = self.get_response(request)
        if "X-Request-Id" not in response:
            response["X-Request-Id"] = request.request_id
        match = getattr(request, "resolver_match", None)
        endpoint = f"/{match.route}" if match is not None and match.route else "unmatched"
        metrics.http_observe(endpoint, request.method, response.status_code, time.perf_counter() - started)
        return response


def _request_done(**_: object) -> None:
    request_id_var.set("")


request_finished.connect(_request_done, dispatch_uid="reco_request_id_done")
