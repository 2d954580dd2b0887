"""The whole pipeline on real services: features computed by a real Celery worker into Redis, models from
the registry, /api/recs over HTTP; and the degraded paths when Redis, a model or an artifact fails."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from django.conf import settings
from rest_framework.test import APIClient

from features.store import FeatureStore
from recommendations.api import views
from recommendations.models import ApiClient, ModelKind, ModelVersion
from tasks.features import refresh_content_features, refresh_user_features_shard
from tests.conftest import serving_caches_reset
from users.models import Profile, ViewingEvent

KEY = "pipeline-key-0123456789"


@pytest.fixture
def api(serving_world):
    ApiClient.issue("pipeline", key=KEY, rate="1000/min")
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=KEY)
    return client


def _profile() -> Profile:
    return Profile.objects.get(pk=ViewingEvent.objects.order_by("-profile_id").values("profile_id")[0]["profile_id"])


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_features_from_the_worker_feed_the_served_recommendations(
    transactional_db, serving_world, celery_worker_process, api
):
    profile = _profile()
    refresh_content_features.delay().get(timeout=120)
    ids = Profile.objects.order_by("id").values_list("id", flat=True)
    assert refresh_user_features_shard.delay(ids.first(), ids.last() + 1).get(timeout=120) == len(ids)
    assert FeatureStore().get_online_features("user", profile.pk).computed_at is not None

    response = api.get("/api/recs", {"profile_id": profile.pk, "n": 20})

    assert response.status_code == 200, response.content
    body = response.json()
    assert "feature_store_unavailable" not in body["degraded"]
    assert "trending_from_popularity" not in body["degraded"]  # the worker wrote the trending list
    assert not {"user_features_missing", "content_features_missing"} & set(body["degraded"])
    assert len(body["items"]) == 20
    assert any(row["key"] == "trending_now" for row in body["rows"])


def test_features_missing_from_a_reachable_store_are_flagged(api):
    """An emptied Redis (a restart, a flush) answers, but the defaults it gives are not silent."""
    from django.core.cache import cache

    cache.clear()
    profile = _profile()
    body = api.get("/api/recs", {"profile_id": profile.pk, "n": 5}).json()
    assert {"user_features_missing", "content_features_missing"} <= set(body["degraded"])
    assert "feature_store_unavailable" not in body["degraded"]

    # The refresh puts them back, and the next answer has them: the degraded one was never cached.
    from features.services import content_features_refresh, user_features_refresh

    content_features_refresh()
    user_features_refresh(profile_id_start=profile.pk, profile_id_end=profile.pk + 1)
    body = api.get("/api/recs", {"profile_id": profile.pk, "n": 5}).json()
    assert not body["cached"] and not {"user_features_missing", "content_features_missing"} & set(body["degraded"])


def test_with_redis_down_the_api_still_answers_degraded(api, settings, monkeypatch):
    down = f"redis://127.0.0.1:{_closed_port()}/0"
    settings.CACHES = (
        {"default": {**settings.CACHES["default"], "LOCATION": down}} if settings.REDIS_URL else settings.CACHES
    )
    monkeypatch.setattr(views.engine, "store", FeatureStore.from_url(down, socket_timeout=0.2))
    response = api.get("/api/recs", {"profile_id": _profile().pk})
    assert response.status_code == 200, response.content
    degraded = response.json()["degraded"]
    assert "feature_store_unavailable" in degraded and "trending_from_popularity" in degraded
    if settings.REDIS_URL:
        assert "cache_unavailable" in degraded
    assert len(response.json()["items"]) == 20


def test_a_corrupt_artifact_never_replaces_a_model_and_the_api_still_answers(api, tmp_path):
    active = ModelVersion.objects.get(kind=ModelKind.MATRIX_FACTORIZATION, status=ModelVersion.Status.ACTIVE)
    assert "mf" in api.get("/api/recs", {"profile_id": _profile().pk}).json()["model_versions"]  # copied, verified
    factors = Path(settings.RECO_ARTIFACT_DIR) / active.artifact_path / "item_factors.npy"
    factors.write_bytes(b"not a numpy file")

    serving_caches_reset()  # a fresh process on this host: its verified private copy still serves
    assert "mf" in api.get("/api/recs", {"profile_id": _profile().pk}).json()["model_versions"]

    settings.RECO_SERVING_CACHE_DIR = tmp_path / "another-host"
    serving_caches_reset()  # a fresh host: it must copy the artifact now, and the copy fails verification
    response = api.get("/api/recs", {"profile_id": _profile().pk})

    assert response.status_code == 200
    body = response.json()
    assert "mf" not in body["model_versions"] and "no_collaborative_model" in body["degraded"]
    assert len(body["items"]) == 20


def test_with_no_active_model_at_all_the_api_answers_from_what_is_left(api):
    ModelVersion.objects.update(status=ModelVersion.Status.RETIRED)
    serving_caches_reset()
    response = api.get("/api/recs", {"profile_id": _profile().pk})
    assert response.status_code == 200
    body = response.json()
    assert body["model_versions"] == {} and {"no_collaborative_model", "no_content_model"} <= set(body["degraded"])
