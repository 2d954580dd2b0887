"""Who may open the staff pages: active staff only (editors are staff in the Editors group)."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse


def is_staff_member(user) -> bool:
    return bool(user.is_authenticated and user.is_active and user.is_staff)


def staff_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Anonymous users go to the admin login (302, back here afterwards); signed-in users outside staff get 403,
    since logging in again as the same user would not help."""

    @wraps(view)
    def guarded(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        user = request.user
        if not user.is_authenticated:
            return redirect_to_login(request.get_full_path(), reverse("admin:login"))
        if not is_staff_member(user):
            return render(request, "staff/forbidden.html", status=403)
        return view(request, *args, **kwargs)

    return guarded
