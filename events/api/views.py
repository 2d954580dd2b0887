"""POST /api/events: a thin view over events_ingest."""

from __future__ import annotations

from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.api_docs import error_responses
from config.errors import InvalidInput
from config.observability.metrics import events_counted
from events.api.parsing import batch_parse, batch_rows_sent
from events.api.serializers import EventBatchResultSerializer, EventBatchSerializer
from events.services import EventError, events_ingest
from recommendations.api.auth import ApiKeyAuthentication, ClientRateThrottle, HasScope
from recommendations.models import ApiScope

ROWS_PER_REQUEST = 50  # ~2 ms of worker time: a batch costs one request of the client's rate per 50 rows


class EventsView(APIView):
    authentication_classes = [ApiKeyAuthentication]
    permission_classes = [HasScope]
    throttle_classes = [ClientRateThrottle]
    required_scope = ApiScope.WRITE_EVENTS.value

    @extend_schema(
        request=EventBatchSerializer,
        responses={
            200: EventBatchResultSerializer,
            **error_responses(
                400,
                401,
                403,
                413,
                429,
                503,
                descriptions={
                    400: "Not a batch, or events that do not match the schema (`details.errors`); nothing is stored",
                    413: "Over 2.5 MB (`body_too_large`) or over 2,000 rows (`too_many_rows`): send smaller batches",
                },
            ),
        },
        summary="Impressions, clicks, plays, progress and completions: up to 1,000 events and 2,000 rows a batch",
    )
    def post(self, request: Request) -> Response:
        batch = batch_parse(request.data, now=timezone.now())
        if batch.error:
            raise batch.error
        malformed = [error for error in batch.errors if error.malformed]
        if malformed:  # a client bug: nothing is stored, so resending the fixed batch loses nothing
            events_counted(accepted=0, duplicates=0, rejected=len(malformed))
            raise InvalidInput(
                "Some events do not match the schema; nothing was stored. Fix them and send the batch again.",
                code="invalid_events",
                details={"errors": [_error(e) for e in malformed]},
            )
        result = events_ingest(client_id=request.user.client_id, events=batch.events) if batch.events else None
        errors = sorted(batch.errors + (result.errors if result else []), key=lambda error: error.index)
        events_counted(
            accepted=result.accepted if result else 0,
            duplicates=result.duplicates if result else 0,
            rejected=len(errors),
        )
        return Response(
            {
                "accepted": result.accepted if result else 0,
                "duplicates": result.duplicates if result else 0,
                "rejected": len(errors),
                "errors": [_error(error) for error in errors],
            }
        )

    def request_cost(self, request: Request) -> int:
        """Rows the batch asks to store (an impression stores one per item), per ROWS_PER_REQUEST."""
        return 1 + batch_rows_sent(request.data) // ROWS_PER_REQUEST


def _error(error: EventError) -> dict:
    return {"index": error.index, "event_id": error.event_id, "errors": error.errors}
