"""ReplicaReadMiddleware: which requests' reads may go to a replica (config.db.replicas decides per read).

GET /api/recs (for the profile its query names), POST /api/recs/batch (the view names each profile) and GET
staff pages. The API's replica waits are capped at DATABASE_REPLICA_TIMEOUT_SECONDS, so a hung replica costs a
request that much before its read runs on the primary, inside the API's own deadline; staff pages wait as long
as their deadline. Every other request (the admin, POST /api/events, health probes) reads the primary.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from config.db.replicas import replica_reads

_SAFE = ("GET", "HEAD")


class ReplicaReadMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not settings.DATABASE_REPLICA_ALIASES:
            return self.get_response(request)
        path, method = request.path, request.method
        api_timeout = settings.DATABASE_REPLICA_TIMEOUT_SECONDS
        if path == "/api/recs" and method in _SAFE:
            profile = request.GET.get("profile_id", "")
            with replica_reads(
                profile_id=int(profile) if profile.isascii() and profile.isdigit() else None,
                replica_timeout=api_timeout,
            ):
                return self.get_response(request)
        if path == "/api/recs/batch" and method == "POST":
            with replica_reads(replica_timeout=api_timeout):
                return self.get_response(request)
        if path.startswith("/staff/") and method in _SAFE:
            with replica_reads():
                return self.get_response(request)
        return self.get_response(request)
