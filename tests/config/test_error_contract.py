"""Every error over HTTP is JSON {code, message, details}; bodies are bounded; limits count cost; scopes hold."""

from __future__ import annotations

import json

import pytest
from django.core.cache import cache
from django.test import Client
from rest_framework.test import APIClient

from config import ratelimit
from recommendations.api.auth import AUTH_FAILURE_BURST, client_cache
from recommendations.models import ApiClient, ApiScope

KEY = "contract-test-key-0123456789abcdef"


@pytest.fixture(autouse=True)
def _fresh_limits(db):
    client_cache.clear()
    ratelimit.local_buckets.clear()
    cache.clear()
    yield
    client_cache.clear()
    ratelimit.local_buckets.clear()


def _api(key: str = KEY, **issue) -> APIClient:
    ApiClient.issue(issue.pop("name", "contract"), key=key, **issue)
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=key)
    return client


def assert_error(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"code", "message", "details"}, body
    assert isinstance(body["details"], dict) and body["message"]
    if code is not None:
        assert body["code"] == code, body
    return body


def test_unknown_api_paths_and_anonymous_calls_get_the_one_shape():
    assert_error(Client().get("/api/nothing-here"), 404, "not_found")
    assert_error(APIClient().get("/api/recs", {"profile_id": 1}), 401, "not_authenticated")
    body = assert_error(_api().get("/api/recs", {"profile_id": "x"}), 400, "invalid")
    assert "profile_id" in body["details"]


def test_a_404_page_never_lists_the_url_patterns():
    response = Client().get("/no-such-page")
    assert response.status_code == 404
    assert b"URLconf" not in response.content and b"api/schema" not in response.content


def test_a_wrong_key_is_401_and_wrong_keys_are_throttled_per_address_without_remembering_them():
    client = APIClient(REMOTE_ADDR="10.1.2.3")
    codes = []
    for attempt in range(AUTH_FAILURE_BURST + 3):
        client.credentials(HTTP_X_API_KEY=f"wrong-key-{attempt}")
        codes.append(client.get("/api/recs", {"profile_id": 1}).status_code)
    assert codes[:AUTH_FAILURE_BURST] == [401] * AUTH_FAILURE_BURST
    assert set(codes[AUTH_FAILURE_BURST:]) == {429}
    limited = client.get("/api/recs", {"profile_id": 1})
    assert_error(limited, 429, "rate_limited")
    assert int(limited["Retry-After"]) >= 1
    assert client_cache._entries == {}  # wrong keys cost no memory
    other = APIClient(REMOTE_ADDR="10.9.9.9")
    other.credentials(HTTP_X_API_KEY="wrong-key-x")
    assert other.get("/api/recs", {"profile_id": 1}).status_code == 401  # another address is not affected


def test_a_key_without_the_scope_gets_403():
    reader = _api(scopes=[ApiScope.READ_RECOMMENDATIONS])
    body = assert_error(reader.post("/api/events", {"events": []}, format="json"), 403, "permission_denied")
    assert "events:write" in body["message"]
    writer = _api(key="writer-key-0123456789abcdef", name="writer", scopes=[ApiScope.WRITE_EVENTS])
    assert_error(writer.get("/api/recs", {"profile_id": 1}), 403, "permission_denied")


@pytest.mark.parametrize("path", ["/api/events", "/api/recs/batch"])
def test_deeply_nested_json_is_400_not_500(path):
    nested = "[" * 5000 + "]" * 5000
    body = assert_error(_api().generic("POST", path, nested, content_type="application/json"), 400, "malformed_request")
    assert "nested" in body["message"]
    assert_error(
        _api(key="k2-0123456789abcdefghij", name="k2").generic(
            "POST",
            path,
            json.dumps({"events": [{"a": [[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]}]}),
            content_type="application/json",
        ),
        400,
        "malformed_request",
    )


def test_a_body_over_the_byte_limit_is_413(settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    body = json.dumps({"events": [{"event_id": "x" * 2000}]})
    assert_error(_api().generic("POST", "/api/events", body, content_type="application/json"), 413, "body_too_large")


def test_form_bodies_are_refused_with_415():
    response = _api().post("/api/recs/batch", {"requests": "1"})  # multipart
    assert_error(response, 415, "unsupported_media_type")


def test_a_batch_counts_each_profile_against_the_rate():
    client = _api(rate="5/min")  # a burst of 5 requests
    batch = {"requests": [{"profile_id": 10**12 + i} for i in range(3)]}
    assert client.post("/api/recs/batch", batch, format="json").status_code == 200  # 3 of 5
    limited = client.post("/api/recs/batch", batch, format="json")  # 3 more: over
    assert_error(limited, 429, "rate_limited")
    assert limited["Retry-After"]


def test_an_unknown_profile_in_a_batch_is_an_entry_in_the_error_shape():
    results = _api().post("/api/recs/batch", {"requests": [{"profile_id": 10**12}]}, format="json").json()["results"]
    assert set(results[0]) == {"code", "message", "details"} and results[0]["code"] == "not_found"


def test_the_schema_documents_every_error_status_and_only_json_bodies():
    schema = _api().get("/api/schema/", {"format": "json"}).json()
    expected = {
        "/api/recs": ("get", {"400", "401", "403", "404", "429", "503"}),
        "/api/recs/batch": ("post", {"400", "401", "403", "413", "429", "503"}),
        "/api/events": ("post", {"400", "401", "403", "413", "429", "503"}),
    }
    for path, (method, statuses) in expected.items():
        operation = schema["paths"][path][method]
        assert statuses <= set(operation["responses"]), (path, sorted(operation["responses"]))
        if "requestBody" in operation:
            assert set(operation["requestBody"]["content"]) == {"application/json"}
    device = next(p for p in schema["paths"]["/api/recs"]["get"]["parameters"] if p["name"] == "device_type")
    assert "default" not in device["schema"] or device["schema"]["default"] in device["schema"]["enum"]


def test_a_token_bucket_never_lets_twice_the_rate_through_at_a_boundary():
    allowed = sum(ratelimit.take("boundary", rate=10.0, capacity=10.0).allowed for _ in range(25))
    assert allowed == 10  # a full bucket, then nothing until it refills (a fixed window would reset)


def test_local_buckets_are_bounded():
    buckets = ratelimit._LocalBuckets(size=100)
    for i in range(1000):
        buckets.take(f"k{i}", 1.0, 5.0, 1.0)
    assert len(buckets._buckets) == 100


@pytest.fixture
def hold_database_down(transactional_db):
    """Calling it holds the database's circuit breaker open (its probe keeps failing): queries fail at once."""
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("the breaker wraps the PostgreSQL backend")
    held = []

    def still_down() -> None:
        raise ConnectionError("held down by the test")

    def hold() -> None:
        connection.ensure_connection()
        guard = connection.connection.breaker
        held.append((guard, guard.probe))
        guard.probe = still_down
        guard.record_failure(ConnectionError("held down by the test"))
        connection.close()

    yield hold
    for guard, probe in held:
        guard.probe = probe
        guard.reset()


def test_with_the_database_down_every_surface_answers_503_with_retry_after(hold_database_down):
    from tests.factories.auth import UserFactory

    staff = Client()
    staff.force_login(UserFactory(is_staff=True, is_superuser=True))
    hold_database_down()
    api = APIClient()
    api.credentials(HTTP_X_API_KEY="any-key-0123456789abcdef")
    response = api.get("/api/recs", {"profile_id": 1})
    assert_error(response, 503, "database_unavailable")
    assert response["Retry-After"] == "2"
    ready = Client().get("/readyz")
    assert ready.status_code == 503 and ready["Retry-After"] and ready.json()["checks"]["database"] == "unreachable"
    for path in ("/staff/", "/admin/"):
        response = staff.get(path)
        assert response.status_code == 503, (path, response.status_code)
        assert response["Retry-After"] and b"unreachable" in response.content
    assert Client().get("/healthz").status_code == 200  # liveness never asks the database
