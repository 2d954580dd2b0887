"""Health: services reachable, active models and their age, feature freshness, cache hit rate."""

from __future__ import annotations

import datetime as dt
import uuid

import numpy as np
import pytest
from django.urls import reverse

from features.ml.definitions import CONTENT, USER, feature_set
from features.store import FeatureStore
from recommendations.services import model_version_activate
from staff import health
from tests.factories.catalog import TitleFactory
from tests.factories.recommendations import ModelVersionFactory
from tests.factories.users import AccountFactory, ProfileFactory, ViewingEventFactory


def test_feature_freshness_is_the_share_of_sampled_profiles_with_features(db):
    profiles = [ProfileFactory(account=AccountFactory()) for _ in range(10)]
    store = FeatureStore(namespace=f"fs-test-{uuid.uuid4().hex[:12]}")
    fresh = [p.pk for p in profiles[:4]]
    store.set_many(USER, fresh, np.zeros((len(fresh), feature_set(USER).width), np.float32))

    result = health.feature_freshness(entity_type=USER, store=store, seed=1)

    assert result["sampled"] == 10
    assert result["fresh_share"] == pytest.approx(0.4) and result["present_share"] == pytest.approx(0.4)
    assert 0 <= result["median_age_seconds"] < 60
    assert result["ttl_seconds"] == 3600


def test_without_a_beat_features_older_than_their_schedule_are_stale_though_the_week_long_ttl_keeps_them(db, settings):
    settings.CELERY_BROKER_URL = ""  # the embedded set-up: no beat refreshes anything
    settings.FEATURE_TTL_SECONDS = {USER: 7 * 86400, CONTENT: 7 * 86400}
    titles = [TitleFactory() for _ in range(4)]
    store = FeatureStore(namespace=f"fs-test-{uuid.uuid4().hex[:12]}")
    width = feature_set(CONTENT).width
    store.set_many(
        CONTENT,
        [t.pk for t in titles[:3]],
        np.zeros((3, width), np.float32),
        computed_at=dt.datetime.now(dt.UTC) - dt.timedelta(hours=3),
    )
    store.set_many(CONTENT, [titles[3].pk], np.zeros((1, width), np.float32))

    result = health.feature_freshness(entity_type=CONTENT, store=store, seed=1)

    assert result["present_share"] == 1.0
    assert result["fresh_share"] == pytest.approx(0.25)  # only the one refreshed within the 5-min schedule
    assert result["fresh_within_seconds"] == 300 and result["beat"] is False
    assert result["median_age_seconds"] > 3600


def test_a_stored_7_day_count_behind_the_history_is_reported_stale(db):
    behind, right = TitleFactory(name="Machine of the Lantern"), TitleFactory()
    now = dt.datetime.now(dt.UTC)
    for title, views in ((behind, 5), (right, 2)):
        for day in range(views):
            ViewingEventFactory(title=title, started_at=now - dt.timedelta(days=day, hours=1))
    ViewingEventFactory(title=right, started_at=now - dt.timedelta(days=9))  # outside the week
    store = FeatureStore(namespace=f"fs-test-{uuid.uuid4().hex[:12]}")
    schema = feature_set(CONTENT)
    values = np.zeros((2, schema.width), np.float32)
    values[:, schema.slices["view_count_7d"]] = [[3], [2]]  # counted before two more viewings came in
    store.set_many(CONTENT, [behind.pk, right.pk], values)

    checked = health.feature_freshness(entity_type=CONTENT, store=store, seed=1)["view_counts"]

    assert checked["checked"] == 2 and checked["stale"] == 1 and checked["stale_share"] == 0.5
    assert checked["worst"] == {"title_id": behind.pk, "name": "Machine of the Lantern", "stored": 3, "actual": 5}


def test_health_json_reports_every_check(editor_client, settings):
    version = ModelVersionFactory()
    model_version_activate(version_id=version.pk)

    response = editor_client.get(reverse("staff:health-json"))

    body = response.json()
    assert response.status_code == 200
    assert set(body["checks"]) == {"database", "redis", "broker", "worker", "replicas"}
    assert body["checks"]["database"]["status"] == "ok"
    if settings.REDIS_URL:
        assert body["checks"]["redis"]["status"] == "ok"
        assert body["cache"]["hit_rate"] is None or 0 <= body["cache"]["hit_rate"] <= 1
    if settings.CELERY_BROKER_URL:
        assert body["checks"]["broker"]["status"] == "ok"
    assert [m["version"] for m in body["models"]] == [version.version]
    assert body["models"][0]["age"]["seconds"] < 60
    assert set(body["feature_freshness"]) == {"user", "content"}


def test_a_running_worker_answers_the_ping(transactional_db, celery_worker_process):
    report = health.health_report()
    assert report["checks"]["broker"]["status"] == "ok"
    assert report["checks"]["worker"]["status"] == "ok"
    assert celery_worker_process in report["checks"]["worker"]["detail"]


def test_a_missing_worker_degrades_the_health_within_the_ping_timeout(db, settings, monkeypatch):
    from config.celery import app

    settings.CELERY_BROKER_URL = settings.CELERY_BROKER_URL or "redis://127.0.0.1:6379/2"
    monkeypatch.setattr(app.control, "ping", lambda **kwargs: [])  # nobody answers
    report = health.health_report()
    assert report["checks"]["worker"]["status"] == "down"
    assert report["status"] == "degraded"


def test_the_health_page_draws_the_checks(editor_client):
    html = editor_client.get(reverse("staff:health")).content.decode()
    for check in ("database", "redis", "broker", "worker", "replicas", "user-features", "content-features", "cache"):
        assert f'data-check="{check}"' in html
    assert "no active model" in html


def test_the_health_page_says_when_no_beat_refreshes_the_features(editor_client, settings):
    settings.CELERY_BROKER_URL = ""
    TitleFactory()
    html = editor_client.get(reverse("staff:health")).content.decode()
    assert "No beat runs" in html and "demo_setup" in html


def test_a_database_failure_is_reported_as_down(monkeypatch, db):
    def broken():
        raise RuntimeError("connection refused")

    monkeypatch.setattr(health, "database_check", broken)
    report = health.health_report()
    assert report["status"] == "down"
    assert report["checks"]["database"] == {
        "status": "down",
        "detail": "RuntimeError: connection refused",
        "ms": report["checks"]["database"]["ms"],
    }


def test_replicas_show_what_this_process_reads_from(settings):
    from config.db.replicas import monitor

    settings.DATABASE_REPLICA_ALIASES = []
    assert health.replicas_check()["status"] == "not used"
    settings.DATABASE_REPLICA_ALIASES = ["replica_health_a", "replica_health_b"]
    monitor.mark_failed("replica_health_a", ConnectionError("connection refused"))
    check = health.replicas_check()
    assert check["status"] == "degraded"
    assert "0 of 2 replicas serve reads" in check["detail"] and "replica_health_a" in check["detail"]
    by_alias = {r["alias"]: r for r in check["replicas"]}
    assert "connection refused" in by_alias["replica_health_a"]["error"]
    assert by_alias["replica_health_b"]["error"] == "not checked yet by this process"
