"""/api/recs over HTTP: authentication per client app, validation, 404, throttling, batch, schema, timing."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.core.management import call_command
from rest_framework.test import APIClient

from recommendations.models import ApiClient
from users.models import Profile


def test_recs_answers_with_items_rows_versions_and_server_timing(api, profile):
    response = api.get("/api/recs", {"profile_id": profile.pk, "device_type": "mobile", "time_of_day": 21, "n": 10})

    assert response.status_code == 200, response.content
    body = response.json()
    assert len(body["items"]) == 10 and body["rows"] and body["request_id"] == response["X-Request-Id"]
    assert set(body["model_versions"]) >= {"mf", "content", "popularity"}
    assert {"rank", "content_id", "title", "score", "reason", "sources"} <= set(body["items"][0])
    stages = [part.split(";")[0] for part in response["Server-Timing"].split(", ")]
    assert {"candidates", "features", "ranking", "diversification", "postprocess", "total"} <= set(stages)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({}, "profile_id"),
        ({"profile_id": "abc"}, "profile_id"),
        ({"profile_id": 1, "n": 0}, "n"),
        ({"profile_id": 1, "n": 101}, "n"),
        ({"profile_id": 1, "time_of_day": 24}, "time_of_day"),
        ({"profile_id": 1, "device_type": "toaster"}, "device_type"),
        ({"profile_id": 1, "country": "USA"}, "country"),
        ({"profile_id": 1, "subscription_tier": 9}, "subscription_tier"),
        ({"profile_id": 1, "device_type": ""}, "device_type"),  # DRF alone reads an empty one as absent
        ({"profile_id": 1, "country": ""}, "country"),
        ({"profile_id": 1, "country": "US\n"}, "country"),  # a regex `$` takes the newline, DRF trims it
        ({"profile_id": 1, "country": " US"}, "country"),
        ({"profile_id": 1, "n": "5\n"}, "n"),
        ({"profile_id": "1\n"}, "profile_id"),
    ],
)
def test_bad_parameters_get_400_naming_the_field(api, params, field):
    response = api.get("/api/recs", params)
    body = response.json()
    assert response.status_code == 400 and body["code"] == "invalid" and field in body["details"]


def test_unknown_profile_is_404(api):
    response = api.get("/api/recs", {"profile_id": 10**12})
    assert response.status_code == 404 and response.json()["code"] == "not_found"
    assert "profile_id" in response.json()["details"]


def test_a_profile_of_another_account_is_404(api, profile):
    response = api.get("/api/recs", {"profile_id": profile.pk, "user_id": profile.account_id + 10**9})
    assert response.status_code == 404


def test_no_key_is_401_and_a_wrong_or_revoked_key_too(serving_world, profile):
    client = APIClient()
    assert client.get("/api/recs", {"profile_id": profile.pk}).status_code == 401
    client.credentials(HTTP_X_API_KEY="not-a-key-at-all")
    assert client.get("/api/recs", {"profile_id": profile.pk}).status_code == 401
    revoked, key = ApiClient.issue("revoked")
    ApiClient.objects.filter(pk=revoked.pk).update(is_active=False)
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
    assert client.get("/api/recs", {"profile_id": profile.pk}).status_code == 401


def test_each_client_is_throttled_at_its_own_rate(serving_world, profile):
    cache.clear()
    _, key = ApiClient.issue("slow-app", rate="3/min")
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=key)
    codes = [client.get("/api/recs", {"profile_id": profile.pk, "n": 1, "rows": "false"}).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]


def test_batch_serves_many_profiles_and_reports_unknown_ones(api, profile):
    other = Profile.objects.exclude(pk=profile.pk).first()
    response = api.post(
        "/api/recs/batch",
        {
            "requests": [
                {"profile_id": profile.pk, "n": 5},
                {"profile_id": other.pk, "n": 5, "rows": False},
                {"profile_id": 10**12},
            ]
        },
        format="json",
    )
    assert response.status_code == 200
    results = response.json()["results"]
    assert [len(r.get("items", [])) for r in results] == [5, 5, 0]
    assert results[1]["rows"] == [] and results[2]["code"] == "not_found"
    assert set(results[2]) == {"code", "message", "details"} and results[2]["details"]["status"] == 404


def test_batch_validation_names_the_bad_request(api):
    response = api.post("/api/recs/batch", {"requests": [{"profile_id": 1}, {"n": 3}]}, format="json")
    errors = response.json()["details"]["requests"]
    assert response.status_code == 400
    assert "profile_id" in (errors[1] if isinstance(errors, list) else errors["1"])  # the second request's error


def test_schema_and_docs_are_served(api):
    schema = api.get("/api/schema/", {"format": "json"})
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert "/api/recs" in paths and "/api/recs/batch" in paths
    assert "ApiKey" in schema.json()["components"]["securitySchemes"]
    assert api.get("/api/docs/").status_code == 200


def test_create_api_client_command_prints_a_working_key(serving_world, profile, capsys):
    call_command("create_api_client", "cli-app", "--rate", "10/s")
    key = capsys.readouterr().out.strip()
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=key)
    assert client.get("/api/recs", {"profile_id": profile.pk, "n": 3}).status_code == 200
