"""One error contract for the whole HTTP surface: every error is JSON `{"code", "message", "details"}`.

- `exception_handler` (REST_FRAMEWORK["EXCEPTION_HANDLER"]) renders ApplicationError, DRF's own errors
  (validation → `invalid` with field errors in `details`, 401, 403, 404, 405, 415, 429) and an unreachable
  database (503 with Retry-After) for every DRF view.
- `DatabaseUnavailableMiddleware` does the same for non-DRF views (staff pages, admin, health).
- `handler400/403/404/500` (config/urls.py) answer JSON under /api/ and plain pages elsewhere, never
  Django's debug pages.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import DatabaseError, InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string
from rest_framework import exceptions as drf
from rest_framework.response import Response
from rest_framework.views import set_rollback

from config.errors import ApplicationError, error_body

log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 2
UNAVAILABLE = (OperationalError, InterfaceError)

_DRF_CODES = {
    drf.ParseError: "malformed_request",
    drf.AuthenticationFailed: "authentication_failed",
    drf.NotAuthenticated: "not_authenticated",
    drf.PermissionDenied: "permission_denied",
    drf.NotFound: "not_found",
    drf.MethodNotAllowed: "method_not_allowed",
    drf.NotAcceptable: "not_acceptable",
    drf.UnsupportedMediaType: "unsupported_media_type",
    drf.Throttled: "rate_limited",
}


def database_unavailable_body() -> dict[str, Any]:
    return error_body("database_unavailable", "The database is unreachable; retry in a few seconds.")


def exception_handler(error: Exception, context: dict) -> Response | None:
    if isinstance(error, ApplicationError):
        set_rollback()
        return Response(error.body(), status=error.status, headers=error.headers or None)
    if isinstance(error, UNAVAILABLE):
        log.warning("database unavailable: %s", error)
        set_rollback_quietly()
        return Response(database_unavailable_body(), status=503, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
    if isinstance(error, RequestDataTooBig):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        return Response(
            error_body(
                "body_too_large", f"Send at most {limit:,} bytes a request: split the batch.", {"max_bytes": limit}
            ),
            status=413,
        )
    if isinstance(error, drf.ValidationError):
        details = error.detail if isinstance(error.detail, dict) else {"non_field_errors": error.detail}
        return Response(error_body("invalid", "Some parameters are invalid; see details.", details), status=400)
    if isinstance(error, drf.APIException):
        headers = {}
        if isinstance(error, drf.Throttled) and error.wait is not None:
            headers["Retry-After"] = str(max(1, int(error.wait + 0.999)))
        if isinstance(error, drf.NotAuthenticated | drf.AuthenticationFailed) and getattr(error, "auth_header", None):
            headers["WWW-Authenticate"] = error.auth_header
        code = next((c for cls, c in _DRF_CODES.items() if isinstance(error, cls)), str(error.default_code))
        return Response(error_body(code, _text(error.detail)), status=error.status_code, headers=headers or None)
    return None  # a bug: Django's handler500 answers (JSON under /api/), and the error is logged


def set_rollback_quietly() -> None:
    with contextlib.suppress(DatabaseError):  # the connection is gone: nothing to roll back
        set_rollback()


def _text(detail: Any) -> str:
    if isinstance(detail, list | tuple):
        return " ".join(str(part) for part in detail)
    return str(detail)


class DatabaseUnavailableMiddleware:
    """An unreachable database gives 503 + Retry-After (JSON under /api/, a short page elsewhere), not a 500."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, UNAVAILABLE):
            return None
        log.warning("database unavailable on %s: %s", request.path, exception)
        if _wants_json(request):
            response: HttpResponse = JsonResponse(database_unavailable_body(), status=503)
        else:
            response = HttpResponse(render_to_string("503.html"), status=503)
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response


def _wants_json(request: HttpRequest) -> bool:
    return request.path.startswith(("/api/", "/healthz", "/readyz"))


def _page_or_json(request: HttpRequest, status: int, code: str, message: str, template: str) -> HttpResponse:
    if _wants_json(request):
        return JsonResponse(error_body(code, message), status=status)
    return HttpResponse(render_to_string(template, {"message": message}), status=status)


def handler400(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return _page_or_json(request, 400, "bad_request", "The request could not be understood.", "400.html")


def handler403(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return _page_or_json(request, 403, "permission_denied", "You may not do this.", "403.html")


def handler404(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return _page_or_json(request, 404, "not_found", "Nothing is here.", "404.html")


def handler500(request: HttpRequest) -> HttpResponse:
    """Django calls this while handling the exception, so an unreachable database raised outside a view (in a
    middleware: sessions, authentication) still becomes a 503."""
    error = sys.exc_info()[1]
    if isinstance(error, UNAVAILABLE):
        return DatabaseUnavailableMiddleware(lambda r: HttpResponse()).process_exception(request, error)
    return _page_or_json(
        request, 500, "server_error", "Something went wrong on our side; it has been logged.", "500.html"
    )
