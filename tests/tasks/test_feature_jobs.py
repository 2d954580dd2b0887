"""Feature jobs end to end: sent through the broker, run by a real worker, read back from the store."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from django.utils import timezone

from features.snapshots import snapshots_list
from features.store import FeatureStore
from tasks.features import (
    refresh_content_features,
    refresh_user_features,
    refresh_user_features_shard,
    write_feature_snapshot,
)
from tasks.models import JobRun
from tests.factories.catalog import TitleFactory
from tests.factories.users import ProfileFactory, ViewingEventFactory


@pytest.fixture
def watched(transactional_db):
    profiles = ProfileFactory.create_batch(3)
    titles = TitleFactory.create_batch(2, duration_minutes=60)
    now = timezone.now()
    for i, profile in enumerate(profiles):
        for j, title in enumerate(titles):
            ViewingEventFactory(
                profile=profile, title=title, started_at=now - dt.timedelta(days=i + j + 1), watch_percentage=1.0
            )
    return profiles, titles


def test_worker_writes_features_the_store_then_reads(watched, celery_worker_process):
    profiles, titles = watched
    ids = sorted(p.id for p in profiles)

    assert refresh_user_features_shard.delay(ids[0], ids[-1] + 1).get(timeout=120) == 3
    assert refresh_content_features.delay().get(timeout=120) >= 2

    store = FeatureStore()
    user = store.get_online_features("user", ids[0], ["total_watch_hours"])
    assert user.defaulted == frozenset() and user.values["total_watch_hours"] == pytest.approx(2.0)
    content = store.get_online_features("content", titles[0].id, ["popularity_score"])
    assert content.defaulted == frozenset() and content.values["popularity_score"] > 0
    statuses = set(JobRun.objects.filter(job__startswith="tasks.features.").values_list("status", flat=True))
    assert statuses == {JobRun.Status.SUCCEEDED}


def test_full_refresh_fans_out_one_task_per_shard(watched, celery_worker_process):
    profiles, _ = watched
    started = time.time()
    shards = refresh_user_features.delay(shard_size=1).get(timeout=120)

    assert shards >= 3
    shard_runs = JobRun.objects.filter(job="tasks.features.refresh_user_features_shard", status="succeeded")
    deadline = time.monotonic() + 120
    while shard_runs.count() < shards and time.monotonic() < deadline:
        time.sleep(0.2)  # the shard tasks run after the fan-out task has returned
    assert shard_runs.count() == shards
    batch = FeatureStore().get_many("user", [p.id for p in profiles])
    assert batch.found.all() and (batch.computed_at >= started).all()


def test_snapshot_job_records_its_rows(watched, tmp_path, settings):
    settings.FEATURE_OFFLINE_DIR = str(tmp_path)
    assert write_feature_snapshot.apply(kwargs={"entity_type": "content"}).get() == 2
    assert len(snapshots_list("content")) == 1


def test_failed_refresh_leaves_the_previous_features_in_place(watched, monkeypatch):
    profiles, _ = watched
    ids = sorted(p.id for p in profiles)
    refresh_user_features_shard.apply(args=(ids[0], ids[-1] + 1)).get()
    store = FeatureStore()
    before = store.get_many("user", ids)

    def broken(*args, **kwargs):
        raise RuntimeError("feature code bug")

    monkeypatch.setattr("features.ml.compute.user_features", broken)
    with pytest.raises(RuntimeError):
        refresh_user_features_shard.apply(args=(ids[0], ids[-1] + 1), throw=True)

    after = store.get_many("user", ids)
    assert after.found.all()
    assert (after.values == before.values).all() and (after.computed_at == before.computed_at).all()
    latest = JobRun.objects.filter(job="tasks.features.refresh_user_features_shard").order_by("-started_at").first()
    assert latest.status == JobRun.Status.FAILED and "feature code bug" in latest.error
