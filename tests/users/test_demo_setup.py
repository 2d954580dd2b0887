"""demo_setup: training and the first feature refreshes run as recorded jobs (the job-run list is not empty
after `make demo`), and each kind's line names the metrics it has (issue #18)."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from config.celery import app
from recommendations.models import ModelVersion
from tasks.models import JobRun
from users.management.commands import demo_setup
from users.management.commands.demo_setup import training_summary
from users.models import Profile


@pytest.fixture
def small_world(db, settings, tmp_path, monkeypatch):
    settings.RECO_ARTIFACT_DIR = tmp_path / "artifacts"
    call_command(
        "generate_synthetic",
        "--titles",
        "150",
        "--accounts",
        "60",
        "--events",
        "4000",
        "--seed",
        "7",
        "--ground-truth-dir",
        str(tmp_path / "truth"),
        verbosity=0,
    )
    monkeypatch.setattr(demo_setup, "DEMO_KINDS", ("popularity", "content"))  # the quick ones


@pytest.mark.parametrize("eager", [True, False], ids=["embedded", "with-a-broker"])
def test_training_and_the_feature_refreshes_are_recorded_job_runs(small_world, monkeypatch, eager):
    monkeypatch.setitem(app.conf, "task_always_eager", eager)  # embedded: no broker, the shards run in-process
    out = io.StringIO()

    call_command("demo_setup", "--host", "127.0.0.1:8999", stdout=out)

    runs = {
        (run.job, run.params["kwargs"].get("kind")) for run in JobRun.objects.filter(status=JobRun.Status.SUCCEEDED)
    }
    assert ("tasks.training.train_model", "popularity") in runs and ("tasks.training.train_model", "content") in runs
    assert ("tasks.features.refresh_content_features", None) in runs
    user_refresh = "tasks.features.refresh_user_features" if eager else "tasks.features.refresh_user_features_shard"
    assert (user_refresh, None) in runs
    assert not JobRun.objects.exclude(status=JobRun.Status.SUCCEEDED).exists()
    assert ModelVersion.objects.filter(status=ModelVersion.Status.ACTIVE).count() == 2
    text = out.getvalue()
    assert "popularity " in text and "NDCG@10" in text and "Online features refreshed: 150 titles" in text
    new_viewers = Profile.objects.filter(name=demo_setup.NEW_VIEWER)  # the cold start, with onboarding genres
    assert new_viewers.count() == 3 and "A new viewer" in text and not new_viewers.filter(viewing_events__isnull=False)
    assert all(profile.onboarding_genres.exists() for profile in new_viewers)


def test_the_ranker_line_shows_its_own_metric_not_a_p_at_10_it_never_measured():
    ranker = ModelVersion(
        kind="ranker",
        version="v1",
        status=ModelVersion.Status.ACTIVE,
        notes="passed the gate",
        metrics={"ndcg_at_10": 0.1834, "baseline_ndcg_at_10": 0.0571, "held_out_queries": 412, "train_seconds": 12.3},
    )
    line = training_summary(ranker)
    assert "NDCG@10 0.1834 (without the ranker 0.0571) on 412 queries" in line and "P@10" not in line
    mf = ModelVersion(kind="mf", version="v2", metrics={"ndcg_at_10": 0.49, "precision_at_10": 0.425})
    assert "P@10 0.4250" in training_summary(mf)
