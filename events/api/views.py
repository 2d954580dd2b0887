"""POST /api/events: a thin view over events_ingest."""
from __future__ import annotations

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from events.api.parsing import batch_parse
from events.api.serializers import EventBatchResultSerializer, EventBatchSerializer
from events.services import EventError, events_ingest
from recommendations.api.auth import ApiKeyAuthentication, ClientRateThrottle


class EventsView(APIView):
    authentication_classes = [ApiKeyAuthentication]
    throttle_classes = [ClientRateThrottle]

    @extend_schema(
        request=EventBatchSerializer,
        responses={
            200: EventBatchResultSerializer,
            400: OpenApiResponse(description="No valid event (same body, with `code`), or a malformed envelope"),
            413: OpenApiResponse(description="Body over DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MB): send smaller batches"),
        },
        summary="Impressions, clicks, plays, progress and completions, up to 1,000 a batch",
    )
    def post(self, request: Request) -> Response:
        try:
            data = request.data
        except RequestDataTooBig:
            return Response({"code": "batch_too_large", "message": f"Send at most {settings.DATA_UPLOAD_MAX_MEMORY_SIZE:,} "
                             "bytes a request: split the batch."}, status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)  # fmt: skip
        batch = batch_parse(data, now=timezone.now())
        if batch.envelope_errors:
            return Response({"code": "invalid_batch", "message": "The body is not a batch of events.",
                             "details": batch.envelope_errors}, status=status.HTTP_400_BAD_REQUEST)  # fmt: skip
        result = events_ingest(client_id=request.user.client_id, events=batch.events) if batch.events else None
        errors = sorted(batch.errors + (result.errors if result else []), key=lambda error: error.index)
        body = {
            "accepted": result.accepted if result else 0,
            "duplicates": result.duplicates if result else 0,
            "rejected": len(errors),
            "errors": [_error(error) for error in errors],
        }
        if len(errors) == len(batch.events) + len(batch.errors):
            body = {"code": "no_valid_events", "message": "No event in the batch is valid.", **body}
            return Response(body, status=status.HTTP_400_BAD_REQUEST)
        return Response(body)


def _error(error: EventError) -> dict:
    return {"index": error.index, "event_id": error.event_id, "errors": error.errors}
