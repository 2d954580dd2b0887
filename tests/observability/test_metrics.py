"""/metrics: who may read it, and what a request, an event batch and the job runs put in it (#18)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.cache import cache
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from config.observability.logs import request_id_var
from features.services import content_features_refresh, user_features_refresh
from features.store import FeatureStore
from recommendations.models import ApiClient, ApiScope
from tasks.models import JobRun
from tests.conftest import SERVING_NOW
from tests.events.helpers import event, post
from tests.factories.catalog import TitleFactory
from tests.factories.users import ProfileFactory
from tests.observability.helpers import samples, value
from users.models import Profile, ViewingEvent

KEY = "metrics-test-key-0123456789abcdef"
STAGES = ("profile", "models", "cache", "candidates", "features", "ranking", "rules", "diversification", "postprocess")


def scrape(client: Client | None = None, **headers: str) -> dict:
    response = (client or Client()).get("/metrics", **headers)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain")
    return samples(response.content.decode())


@pytest.fixture
def api(serving_world, settings):
    settings.RECO_METRICS_INPUT_SAMPLE = 1  # every answer's candidates and feature age
    cache.clear()
    ApiClient.issue(
        "metrics-tests",
        key=KEY,
        rate="100000/min",
        scopes=[ApiScope.READ_RECOMMENDATIONS.value, ApiScope.WRITE_EVENTS.value],
    )
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=KEY)
    return client


@pytest.fixture
def profile(serving_world) -> Profile:
    """A profile with history whose features are in the store (an answer without them is degraded, uncached)."""
    profile = Profile.objects.get(pk=ViewingEvent.objects.order_by("-profile_id").values("profile_id")[0]["profile_id"])
    store = FeatureStore()
    content_features_refresh(as_of=SERVING_NOW, store=store)
    user_features_refresh(profile_id_start=profile.pk, profile_id_end=profile.pk + 1, as_of=SERVING_NOW, store=store)
    return profile


def _server_timing(response) -> dict[str, float]:
    parts = (part.split(";dur=") for part in response["Server-Timing"].split(", "))
    return {name: float(ms) for name, ms in parts}


def test_a_request_is_counted_per_endpoint_stage_cache_outcome_source_and_flag(api, profile):
    before = scrape()
    first = api.get("/api/recs", {"profile_id": profile.pk, "n": 10})
    second = api.get("/api/recs", {"profile_id": profile.pk, "n": 10})
    after = scrape()
    assert first.status_code == second.status_code == 200

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("reco_http_request_duration_seconds_count", endpoint="/api/recs", method="GET", status="2xx") == 2
    assert (
        grew("reco_recommendations_total", cache="miss") == 1 and grew("reco_recommendations_total", cache="hit") == 1
    )
    for stage in ("profile", "models", "cache"):
        assert grew("reco_engine_stage_seconds_count", stage=stage) == 2
    for stage in ("candidates", "features", "ranking", "postprocess"):
        assert grew("reco_engine_stage_seconds_count", stage=stage) == 1  # a cache hit stops after `cache`
    # Both answers carry the world's one flag (it trains no ranker); the hit repeats what was cached.
    assert first.json()["degraded"] == ["no_ranker"]
    assert grew("reco_degraded_answers_total", reason="no_ranker") == 2
    sources = {dict(labels)["source"] for name, labels in after if name == "reco_candidates_count"}
    assert {"collaborative", "trending"} <= sources
    assert grew("reco_feature_age_seconds_count", entity="content") == 1
    assert grew("reco_feature_age_seconds_count", entity="user") == 1
    served = {
        dict(labels)["kind"]: dict(labels)["version"]
        for (name, labels), v in after.items()
        if name == "reco_model_version_served" and v == 1
    }
    assert served == first.json()["model_versions"]


def test_stage_histograms_add_up_to_what_server_timing_said(api, profile):
    others = ProfileFactory.create_batch(3)
    before = scrape()
    said: dict[str, float] = {}
    for target in [profile, *others, profile]:
        response = api.get("/api/recs", {"profile_id": target.pk, "n": 5})
        for stage, ms in _server_timing(response).items():
            said[stage] = said.get(stage, 0.0) + ms
    after = scrape()
    for stage in STAGES:
        grown = (
            value(after, "reco_engine_stage_seconds_sum", stage=stage)
            - value(before, "reco_engine_stage_seconds_sum", stage=stage)
        ) * 1000
        assert grown == pytest.approx(said.get(stage, 0.0), abs=0.01 * 5 + 1e-6), stage  # the header's 0.01 ms
    total = (value(after, "reco_engine_seconds_sum") - value(before, "reco_engine_seconds_sum")) * 1000
    assert total == pytest.approx(said["total"], abs=0.05)


def test_events_are_counted_accepted_duplicate_and_rejected(api):
    profile, title = ProfileFactory(), TitleFactory(duration_minutes=90)
    good = event("click", profile.pk, content_id=title.pk)
    before = scrape()
    assert post(api, [good, event("click", 10**12, content_id=title.pk)]).status_code == 200
    assert post(api, [good]).json()["duplicates"] == 1
    after = scrape()
    for outcome in ("accepted", "duplicate", "rejected"):
        assert (
            value(after, "reco_events_total", outcome=outcome) - value(before, "reco_events_total", outcome=outcome)
            == 1
        )


def test_job_runs_of_the_last_day_by_status_and_the_last_success(db):
    now = timezone.now()
    for status, minutes in ((JobRun.Status.SUCCEEDED, 30), (JobRun.Status.SUCCEEDED, 20), (JobRun.Status.FAILED, 10)):
        JobRun.objects.create(
            job="tasks.metrics_test",
            status=status,
            started_at=now - dt.timedelta(minutes=minutes),
            finished_at=now - dt.timedelta(minutes=minutes - 1),
            duration_seconds=minutes,
        )
    JobRun.objects.create(job="tasks.metrics_test", status=JobRun.Status.FAILED, started_at=now - dt.timedelta(days=2))
    from config.observability.views import _jobs

    _jobs._cached = None
    scraped = scrape()
    job = "tasks.metrics_test"
    assert value(scraped, "reco_job_metrics_up") == 1
    assert value(scraped, "reco_job_runs_24h", job=job, status="succeeded") == 2
    assert value(scraped, "reco_job_runs_24h", job=job, status="failed") == 1  # the 2-day-old one is out
    assert value(scraped, "reco_job_duration_max_seconds_24h", job=job, status="succeeded") == 30
    assert value(scraped, "reco_job_duration_mean_seconds_24h", job=job, status="succeeded") == 25
    last = value(scraped, "reco_job_last_success_timestamp_seconds", job=job)
    assert last == pytest.approx((now - dt.timedelta(minutes=19)).timestamp(), abs=1)


@pytest.mark.django_db
def test_metrics_are_not_public(settings, django_user_model):
    far = Client(REMOTE_ADDR="203.0.113.9")
    refused = far.get("/metrics")
    assert refused.status_code == 403 and set(refused.json()) == {"code", "message", "details"}
    assert refused.json()["code"] == "forbidden"
    # Loopback through a proxy on the same host is someone else's request.
    assert Client().get("/metrics", HTTP_X_FORWARDED_FOR="203.0.113.9").status_code == 403
    assert Client().get("/metrics").status_code == 200  # loopback, no token configured

    settings.RECO_METRICS_TOKEN = "scrape-token-0123456789"
    assert Client().get("/metrics").status_code == 403  # with a token, loopback alone is not enough
    assert far.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong-token").status_code == 403
    assert far.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-token-0123456789").status_code == 200

    staff = django_user_model.objects.create_user("ops", password="pw-0123456789", is_staff=True)
    far.force_login(staff)
    assert far.get("/metrics").status_code == 200


def test_recs_answer_carries_the_request_id_of_its_log_lines(api, profile):
    response = api.get("/api/recs", {"profile_id": profile.pk})
    assert response["X-Request-Id"] == response.json()["request_id"]
    assert len(response["X-Request-Id"]) == 32
    assert request_id_var.get() == ""  # nothing left behind for the next request


def test_every_metric_the_dashboard_plots_is_exported(api, profile):
    import json
    import re
    from pathlib import Path

    dashboard = json.loads((Path(__file__).resolve().parents[2] / "docs" / "grafana" / "reco.json").read_text())
    plotted = {
        re.sub(r"_(bucket|sum|count)$", "", name)
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
        for name in re.findall(r"reco_[a-z0-9_]+", target["expr"])
    }
    JobRun.objects.create(
        job="tasks.dashboard_test",
        status=JobRun.Status.SUCCEEDED,
        started_at=timezone.now(),
        finished_at=timezone.now(),
        duration_seconds=1.0,
    )
    assert api.get("/api/recs", {"profile_id": profile.pk}).status_code == 200
    assert post(api, [event("click", profile.pk, content_id=10**12)]).status_code == 200
    from config.observability.views import _jobs

    _jobs._cached = None
    exported = {re.sub(r"_(bucket|sum|count|total)$", "", name) for name, _ in scrape()}
    assert {re.sub(r"_total$", "", name) for name in plotted} <= exported


def test_candidates_and_feature_age_are_observed_in_one_answer_in_the_sample(api, profile, settings):
    settings.RECO_METRICS_INPUT_SAMPLE = 4
    before = scrape()
    for n in (5, 6, 7, 8):  # four cache misses
        assert api.get("/api/recs", {"profile_id": profile.pk, "n": n}).status_code == 200
    after = scrape()
    assert value(after, "reco_recommendations_total") - value(before, "reco_recommendations_total") == 4
    assert (
        value(after, "reco_feature_age_seconds_count", entity="user")
        - value(before, "reco_feature_age_seconds_count", entity="user")
        == 1
    )
