"""The response cache holds the JSON body's bytes: a hit sends what the miss sent, and faults are never cached."""

from __future__ import annotations

import json

import pytest
from django.core.cache import cache
from rest_framework.renderers import JSONRenderer

from features.services import content_features_refresh, user_features_refresh
from recommendations.api.views import _body
from recommendations.serving.context import UserContext
from recommendations.serving.engine import RankedItem, RecommendationEngine, Recommendations, Row
from tests.conftest import SERVING_NOW


@pytest.fixture
def cached_api(api, settings, profile):
    """GET /api/recs with the response cache on, the profile's and its titles' features in the store."""
    settings.RECO_RESPONSE_CACHE_SECONDS = 600
    cache.clear()  # database ids, hence model versions in the keys, restart each run
    content_features_refresh(as_of=SERVING_NOW)
    user_features_refresh(profile_id_start=profile.pk, profile_id_end=profile.pk + 1, as_of=SERVING_NOW)
    return api


def _get(api, profile_id: int) -> dict:
    response = api.get("/api/recs", {"profile_id": profile_id, "device_type": "tv", "time_of_day": 20, "n": 12})
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["request_id"] == response["X-Request-Id"]
    return body


def test_a_hit_sends_the_json_of_the_miss_that_stored_it(cached_api, profile):
    miss, hit = _get(cached_api, profile.pk), _get(cached_api, profile.pk)
    assert miss["cached"] is False and hit["cached"] is True
    assert miss["degraded"] == ["no_ranker"] and miss["items"] and miss["rows"]  # cacheable: no ranker trained
    assert hit["request_id"] != miss["request_id"]
    shared = lambda body: {k: v for k, v in body.items() if k not in ("request_id", "cached")}  # noqa: E731
    assert shared(hit) == shared(miss)
    # The object path reads the same bytes back: the same items and rows as a fresh answer.
    engine = RecommendationEngine(use_cache=True)
    context = UserContext(profile_id=profile.pk, device_type="tv", time_of_day=20)
    cached = engine.recommend(context=context, n=12)
    fresh = RecommendationEngine(use_cache=False).recommend(context=context, n=12)
    assert cached.cached and not fresh.cached
    assert cached.items == fresh.items and cached.rows == fresh.rows
    assert [item.content_id for item in cached.items] == [item["content_id"] for item in miss["items"]]
    assert _body(cached) | {"request_id": "", "cached": False} == _body(fresh) | {"request_id": ""}


def test_a_degraded_answer_is_not_cached(api, settings, serving_world):
    """A profile whose features were never refreshed is answered (flagged) but never from the cache."""
    settings.RECO_RESPONSE_CACHE_SECONDS = 600
    cache.clear()
    content_features_refresh(as_of=SERVING_NOW)
    from users.models import ViewingEvent

    profile_id = ViewingEvent.objects.order_by("profile_id").values_list("profile_id", flat=True)[0]
    first, second = _get(api, profile_id), _get(api, profile_id)
    assert "user_features_missing" in first["degraded"]
    assert first["cached"] is False and second["cached"] is False


def test_the_body_is_what_drf_renders_of_the_answer():
    """Every field, the escapes JSONRenderer writes (U+2028/2029) and non-ASCII names included."""
    item = RankedItem(3, 41, 'Amélie\u2028 \u2029 "quoted" \\ 東京', 0.12345, "Because you watched X", ("trending",))
    result = Recommendations(
        "f" * 32,
        7,
        [item, RankedItem(4, 42, "B", -1.5, "Trending now", ("trending", "collaborative"), "bandit", 0.25)],
        [Row("trending_now", "Trending Now", (item,))],
        {"mf": "v1"},
        "r9",
        ["no_ranker"],
        timings_ms={"profile": 1.0},
        cached=False,
        experiment="exp",
        arm="b",
    )
    from recommendations.serving.engine import _with_request, response_body

    ours = _with_request(response_body(result), result.request_id, cached=False)
    drf = JSONRenderer().render(_body(result))
    assert json.loads(ours) == json.loads(drf)
    assert b"\\u2028" in ours and b"\\u2029" in ours and "東京".encode() in ours


def test_the_batch_sends_the_cached_bodies_too(cached_api, profile):
    request = {"requests": [{"profile_id": profile.pk, "n": 12, "device_type": "tv", "time_of_day": 20}]}
    single = _get(cached_api, profile.pk)  # stores the answer
    response = cached_api.post("/api/recs/batch", request, format="json")
    assert response.status_code == 200 and response["Content-Type"] == "application/json"
    (batched,) = response.json()["results"]
    assert batched["cached"] is True and batched["request_id"] != single["request_id"]
    assert {k: v for k, v in batched.items() if k not in ("request_id", "cached")} == {
        k: v for k, v in single.items() if k not in ("request_id", "cached")
    }
