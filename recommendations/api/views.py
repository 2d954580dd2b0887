"""GET /api/recs and POST /api/recs/batch: thin views over RecommendationEngine."""

from __future__ import annotations

import logging

from django.http import HttpResponse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.views import APIView

from config.api_docs import error_responses
from config.db.replicas import profile_reads
from config.errors import NotFound, error_body
from recommendations.api.auth import ApiKeyAuthentication, ClientRateThrottle, HasScope
from recommendations.api.serializers import (
    BatchResponseSerializer,
    BatchSerializer,
    RecsQuerySerializer,
    RecsResponseSerializer,
)
from recommendations.models import ApiScope
from recommendations.serving.context import UserContext
from recommendations.serving.engine import (
    STAGES,
    ProfileNotFound,
    RecommendationEngine,
    Recommendations,
    RenderedRecommendations,
    experiment_variant,
)
from users.models import DeviceType

log = logging.getLogger(__name__)
engine = RecommendationEngine(variant_for=experiment_variant)


def _context(data: dict) -> UserContext:
    return UserContext(
        user_id=data.get("user_id"),
        profile_id=data["profile_id"],
        country=data.get("country"),
        device_type=data.get("device_type", DeviceType.TV),
        time_of_day=data.get("time_of_day"),
        subscription_tier=data.get("subscription_tier"),
    )


def _body(result: Recommendations) -> dict:
    body = result.to_dict()
    body.pop("timings_ms")
    body.pop("explanations")
    return body


def server_timing(timings: dict[str, float]) -> str:
    parts = [f"{stage};dur={timings[stage]:.2f}" for stage in STAGES if stage in timings]
    parts.append(f"total;dur={sum(timings.values()):.2f}")
    return ", ".join(parts)


def summed_timings(results: list[Recommendations] | list[RenderedRecommendations]) -> dict[str, float]:
    """A batch's stages: each stage's milliseconds summed over its profiles."""
    total: dict[str, float] = {}
    for result in results:
        for stage, ms in result.timings_ms.items():
            total[stage] = total.get(stage, 0.0) + ms
    return total


class _RecsApiView(APIView):
    authentication_classes = [ApiKeyAuthentication]
    permission_classes = [HasScope]
    throttle_classes = [ClientRateThrottle]
    required_scope = ApiScope.READ_RECOMMENDATIONS.value


class RecsView(_RecsApiView):
    @extend_schema(
        parameters=[RecsQuerySerializer],
        responses={
            200: RecsResponseSerializer,
            **error_responses(
                400, 401, 403, 404, 429, 503, descriptions={404: "Unknown profile, or a user_id that does not own it"}
            ),
            414: OpenApiResponse(description="A query string longer than the web server takes (4 KB)"),
        },
        summary="Recommendations and homepage rows for one profile",
    )
    def get(self, request: Request) -> HttpResponse:
        query = RecsQuerySerializer(data=request.query_params, context={"query": True})
        query.is_valid(raise_exception=True)
        data = query.validated_data
        try:
            result = engine.recommend_json(
                _context(data),
                n=data["n"],
                with_rows=data["rows"],
                request_id=getattr(request, "request_id", None),
            )  # the logs' id too
        except ProfileNotFound as error:
            raise NotFound(str(error), details={"profile_id": [str(error)]}) from None
        # The engine's bytes as they are (a cache hit builds no object): what JSONRenderer would have written.
        response = HttpResponse(result.body, content_type="application/json")
        response["Server-Timing"] = server_timing(result.timings_ms)
        response["X-Request-Id"] = result.request_id
        return response


class RecsBatchView(_RecsApiView):
    @extend_schema(
        request=BatchSerializer,
        summary="Recommendations for many profiles in one call",
        responses={200: BatchResponseSerializer, **error_responses(400, 401, 403, 413, 429, 503)},
    )
    def post(self, request: Request) -> HttpResponse:
        batch = BatchSerializer(data=request.data)
        batch.is_valid(raise_exception=True)
        bodies, answered = [], []
        for data in batch.validated_data["requests"]:
            try:
                with profile_reads(data["profile_id"]):  # this profile's pin decides where its reads go
                    result = engine.recommend_json(_context(data), n=data["n"], with_rows=data["rows"])
                bodies.append(result.body)  # each answer's bytes as GET /api/recs sends them (hits: from the cache)
                answered.append(result)
            except ProfileNotFound as error:
                error_details = {"profile_id": data["profile_id"], "status": 404}
                bodies.append(JSONRenderer().render(error_body("not_found", str(error), error_details)))
        response = HttpResponse(b'{"results":[' + b",".join(bodies) + b"]}", content_type="application/json")
        response["Server-Timing"] = server_timing(summed_timings(answered))
        return response

    def request_cost(self, request: Request) -> int:
        """Each profile of the batch counts as one request against the client's rate."""
        requests = request.data.get("requests") if isinstance(request.data, dict) else None
        return len(requests) if isinstance(requests, list) else 1
