"""Server-Timing on POST /api/recs/batch, and the model load of a process's first request under its own name."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from recommendations.models import ApiClient
from tests.factories.users import ProfileFactory
from users.models import ViewingEvent

KEY = "timing-test-key-0123456789abcdef"


@pytest.fixture
def api(serving_world):
    cache.clear()
    ApiClient.issue("timing-tests", key=KEY, rate="100000/min")
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=KEY)
    return client


def _timings(response) -> dict[str, float]:
    return {name: float(ms) for name, ms in (part.split(";dur=") for part in response["Server-Timing"].split(", "))}


def test_batch_says_each_stage_summed_over_its_profiles(api):
    watched = list(ViewingEvent.objects.values_list("profile_id", flat=True).distinct()[:3])
    requests = [{"profile_id": pk, "n": 5} for pk in [*watched, ProfileFactory().pk, 10**12]]
    response = api.post("/api/recs/batch", {"requests": requests}, format="json")

    assert response.status_code == 200, response.content
    timings = _timings(response)
    assert {"profile", "models", "cache", "candidates", "ranking", "postprocess", "total"} <= set(timings)
    stages = sum(ms for name, ms in timings.items() if name != "total")
    assert timings["total"] == pytest.approx(stages, abs=0.01 * len(timings))


def test_the_first_request_counts_the_model_load_under_models_not_cache(api):
    profile_id = ViewingEvent.objects.values_list("profile_id", flat=True).first()
    first = _timings(api.get("/api/recs", {"profile_id": profile_id, "n": 5}))  # serving_world left nothing loaded
    again = _timings(api.get("/api/recs", {"profile_id": profile_id, "n": 6}))

    assert first["models"] > 10 * max(again["models"], 0.01), (first, again)
    assert first["cache"] < first["models"] / 5, first
