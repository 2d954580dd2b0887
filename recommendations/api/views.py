"""GET /api/recs and POST /api/recs/batch: thin views over RecommendationEngine."""
from __future__ import annotations

import logging

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from recommendations.api.auth import ApiKeyAuthentication, ClientRateThrottle
from recommendations.api.serializers import BatchSerializer, RecsQuerySerializer, RecsResponseSerializer
from recommendations.context import UserContext
from recommendations.engine import STAGES, ProfileNotFound, RecommendationEngine, Recommendations, experiment_variant

log = logging.getLogger(__name__)
engine = RecommendationEngine(variant_for=experiment_variant)


def _context(data: dict) -> UserContext:
    return UserContext(
        user_id=data.get("user_id"), profile_id=data["profile_id"], country=data.get("country"),
        device_type=data["device_type"], time_of_day=data.get("time_of_day"),
        subscription_tier=data.get("subscription_tier"),
    )  # fmt: skip


def _body(result: Recommendations) -> dict:
    body = result.to_dict()
    body.pop("timings_ms")
    body.pop("explanations")
    return body


def server_timing(timings: dict[str, float]) -> str:
    parts = [f"{stage};dur={timings[stage]:.2f}" for stage in STAGES if stage in timings]
    parts.append(f"total;dur={sum(timings.values()):.2f}")
    return ", ".join(parts)


class RecsView(APIView):
    authentication_classes = [ApiKeyAuthentication]
    throttle_classes = [ClientRateThrottle]

    @extend_schema(
        parameters=[RecsQuerySerializer],
        responses={200: RecsResponseSerializer, 400: OpenApiResponse(description="Invalid parameters, per field"),
                   404: OpenApiResponse(description="Unknown profile")},  # fmt: skip
        summary="Recommendations and homepage rows for one profile",
    )
    def get(self, request: Request) -> Response:
        query = RecsQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        data = query.validated_data
        try:
            result = engine.recommend(context=_context(data), n=data["n"], with_rows=data["rows"])
        except ProfileNotFound as error:
            return Response({"profile_id": [str(error)]}, status=status.HTTP_404_NOT_FOUND)
        response = Response(_body(result))
        response["Server-Timing"] = server_timing(result.timings_ms)
        response["X-Request-Id"] = result.request_id
        return response


class RecsBatchView(APIView):
    authentication_classes = [ApiKeyAuthentication]
    throttle_classes = [ClientRateThrottle]

    @extend_schema(request=BatchSerializer, summary="Recommendations for many profiles in one call",
                   responses={200: OpenApiResponse(description="{results: [...]}, one per request, in order; "
                                                               "an unknown profile gives an error entry")})  # fmt: skip
    def post(self, request: Request) -> Response:
        batch = BatchSerializer(data=request.data)
        batch.is_valid(raise_exception=True)
        results = []
        for data in batch.validated_data["requests"]:
            try:
                result = engine.recommend(context=_context(data), n=data["n"], with_rows=data["rows"])
                results.append(_body(result))
            except ProfileNotFound as error:
                results.append({"profile_id": data["profile_id"], "error": str(error), "status": 404})
        return Response({"results": results})
