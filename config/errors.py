"""Typed application errors and the one error shape every API response uses: `{"code", "message", "details"}`.

Services and views raise an ApplicationError subclass (plain Python: no DRF, so services stay free of the
web layer); `config.api_errors.exception_handler` turns it, and every DRF and Django error, into that shape.
`code` is a stable snake_case word a client may branch on; `message` is for people; `details` holds field
errors (`{field: [message, ...]}`) or other structured facts, and is `{}` when there is nothing more to say.
"""

from __future__ import annotations

from typing import Any


class ApplicationError(Exception):
    """An expected failure with a status, a stable code, a message for people and optional details."""

    status: int = 400
    code: str = "invalid"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        details: dict[str, Any] | None = None,
        status: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or type(self).code
        self.status = status or type(self).status
        self.details = details or {}
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return error_body(self.code, self.message, self.details)


class InvalidInput(ApplicationError):
    status, code = 400, "invalid"


class NotAuthenticated(ApplicationError):
    status, code = 401, "not_authenticated"


class PermissionDenied(ApplicationError):
    status, code = 403, "permission_denied"


class NotFound(ApplicationError):
    status, code = 404, "not_found"


class Conflict(ApplicationError):
    status, code = 409, "conflict"


class PayloadTooLarge(ApplicationError):
    status, code = 413, "payload_too_large"


class RateLimited(ApplicationError):
    status, code = 429, "rate_limited"


class ServiceUnavailable(ApplicationError):
    status, code = 503, "service_unavailable"


def error_body(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"code": code, "message": message, "details": details or {}}
