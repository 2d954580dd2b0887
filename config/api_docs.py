"""The error shape for the OpenAPI schema: every operation documents each status it can return."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers


class ErrorSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="Stable, snake_case: what a client may branch on.")
    message = serializers.CharField(help_text="For people.")
    details = serializers.DictField(help_text="Field errors ({field: [message, ...]}) or other facts; {} when none.")


STATUS_DESCRIPTIONS = {
    400: "Invalid input: `details` holds the messages per field",
    401: "No API key, or an unknown or revoked one",
    403: "The API key lacks the scope this operation needs",
    404: "Not found",
    413: "The body is too large: send smaller batches",
    429: "Over the client's rate, or too many wrong keys from this address; see Retry-After",
    503: "The database is unreachable; see Retry-After",
}


def error_responses(*statuses: int, descriptions: dict[int, str] | None = None) -> dict[int, OpenApiResponse]:
    descriptions = {**STATUS_DESCRIPTIONS, **(descriptions or {})}
    return {status: OpenApiResponse(ErrorSerializer, description=descriptions[status]) for status in statuses}
