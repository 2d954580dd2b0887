"""What a login refused by django-axes answers: 429 with Retry-After, in the one error shape for clients that
ask for JSON, else a page in the admin's frame. axes calls it (AXES_LOCKOUT_CALLABLE) once a username has failed
AXES_FAILURE_LIMIT times from one address, for every try until the cool-off has passed."""

from __future__ import annotations

import math

from axes.helpers import get_cool_off
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from config.errors import RateLimited

LOCKED_CODE = "login_locked"


def login_locked_response(
    request: HttpRequest, original_response: HttpResponse | None = None, credentials: dict | None = None
) -> HttpResponse:
    cool_off = get_cool_off(request)
    seconds = max(1, math.ceil(cool_off.total_seconds())) if cool_off else None
    wait = f"try again in {math.ceil(seconds / 60)} min" if seconds else "ask an administrator to unlock it"
    error = RateLimited(
        f"Too many failed logins for this account from this address: {wait}.",
        code=LOCKED_CODE,
        details={"retry_after_seconds": seconds},
    )
    accept = request.headers.get("Accept", "")
    if ("application/json" in accept and "text/html" not in accept) or request.headers.get("X-Requested-With"):
        response: HttpResponse = JsonResponse(error.body(), status=error.status)
    else:
        response = render(request, "staff/login_locked.html", {"message": error.message}, status=error.status)
    if seconds:
        response["Retry-After"] = str(seconds)
    return response
