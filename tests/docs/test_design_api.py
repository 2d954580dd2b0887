"""docs/design-api.md runs as written: each test executes the exact code block under one heading of the page,
with only the names the page's note says are filled set up around it (issue #18)."""

from __future__ import annotations

import datetime
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import typing
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch
from django.conf import settings
from django.db import connection

from catalog.models import Genre, SubscriptionTier, Title
from features.keys import feature_key
from features.ml.definitions import CONTENT, CONTENT_FEATURES, USER, USER_FEATURES
from recommendations.models import ModelKind, ModelVersion
from recommendations.serving.engine import RankedItem
from tests.factories.users import AccountFactory, ProfileFactory, ViewingEventFactory
from users.models import Account, Profile, ViewingEvent

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "design-api.md"


def snippet(title: str, language: str = "python") -> str:
    """The first `language` code block under the page's heading `## title`, exactly."""
    match = re.search(
        rf"^## {re.escape(title)}\n.*?^```{language}\n(.*?)^```", PAGE.read_text(), re.DOTALL | re.MULTILINE
    )
    assert match, f"docs/design-api.md has no {language} block under '## {title}'"
    return match.group(1)


def run(title: str, namespace: dict) -> dict:
    exec(compile(snippet(title), f"docs/design-api.md: {title}", "exec"), namespace)
    return namespace


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the snippets write models/ under the working directory
    return tmp_path


@pytest.fixture
def design_genres(db):
    return {name: Genre.objects.get_or_create(name=name)[0] for name in ("Action", "Drama", "Thriller")}


@pytest.fixture
def design_redis():
    """The Redis the snippets open (localhost:6379, REDIS_URL's database), without the design's entities (user
    123, title 1) before and after."""
    from feature_store import FeatureStore

    if not settings.REDIS_URL:
        pytest.fail("The feature-store snippets need Redis: set REDIS_URL (make test does).")
    client = FeatureStore(redis_host="localhost", redis_port=6379).backend.client
    keys = [feature_key(USER, 123), feature_key(CONTENT, 1)]
    client.delete(*keys)
    yield client
    client.delete(*keys)


@pytest.fixture
def design_profile(serving_world):
    """Account 123 with profile 456, the ids the engine snippet names, in the synthetic world (whatever rows the
    world gave those ids are replaced), with a short history."""
    Profile.objects.filter(pk=456).delete()
    Account.objects.filter(pk=123).delete()
    account = AccountFactory(id=123, country="US", subscription_tier=SubscriptionTier.STANDARD)
    profile = ProfileFactory(id=456, account=account, slot=1)
    for title in Title.objects.order_by("id")[:5]:
        ViewingEventFactory(profile=profile, title=title)
    return profile


def test_matrix_factorization_snippet_saves_one_file_and_loads_it_back(in_tmp, capsys):
    namespace = run("Matrix factorization", {})

    saved = in_tmp / "models" / "matrix_factorization.pkl"
    assert saved.is_file()
    assert namespace["mf"].recommend(user_id=1, n=10) == namespace["recs"]  # the loaded model answers the same
    printed = capsys.readouterr().out.splitlines()
    assert len(printed) == len(namespace["recs"]) >= 1 and printed[0].startswith("Content ")


def test_ncf_snippet_trains_by_hand_and_predicts_without_id_maps():
    namespace = run("Neural collaborative filtering (PyTorch)", {"targets": torch.tensor([1.0, 0.0, 1.0])})

    assert 0.0 < namespace["score"] < 1.0 and isinstance(namespace["score"], float)
    with pytest.raises(ValueError, match="embedding rows"):
        namespace["model"].predict(user_id=10_000, item_id=1)  # past the 10,000-row table


def test_engine_snippet_trains_through_the_gate_and_recommends_in_the_designs_context(design_profile, in_tmp, capsys):
    active_mf = ModelVersion.objects.get(kind=ModelKind.MATRIX_FACTORIZATION, status=ModelVersion.Status.ACTIVE)
    namespace = run("Matrix factorization", {})
    capsys.readouterr()
    namespace = run("The engine", namespace)

    trained = ModelVersion.objects.filter(kind=ModelKind.MATRIX_FACTORIZATION).latest("id")
    assert trained.status == ModelVersion.Status.CANDIDATE and "validation too small" in trained.notes
    active_mf.refresh_from_db()
    assert active_mf.status == ModelVersion.Status.ACTIVE
    context = namespace["context"]
    assert (context.device_type, context.time_of_day, context.subscription_tier) == (1, 21, 3)
    recs = namespace["recs"]
    assert recs.profile_id == 456 and recs.model_versions["mf"] == active_mf.version
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(".")[0] for line in lines[::2]] == [str(rank) for rank in range(1, 21)]
    assert all(line.startswith("   Score: ") for line in lines[1::2])


def test_user_features_snippet_reads_the_features_as_a_mapping_with_genre_names(design_genres, design_redis):
    namespace = run("Feature store: user features", {})

    features = namespace["features"]
    assert set(features) == {"total_watch_hours", "favorite_genres", "completion_rate"}
    assert features["total_watch_hours"] == pytest.approx(10.0)  # 10 viewings of an hour
    assert sorted(features["favorite_genres"]) == ["Action", "Drama"]  # the only genres watched
    assert features["completion_rate"] == pytest.approx(1.0)  # watch_percentage 0.9: completed
    assert features.computed_at is not None and not features.defaulted


def test_content_features_snippet_stores_the_titles_features(design_genres, design_redis):
    namespace = run("Feature store: user features", {})
    namespace = run("Feature store: content features", {**namespace, "np": np, "datetime": datetime.datetime})

    features = namespace["features"]
    assert set(features) == {"view_count_7d", "popularity_score", "trending_score"}
    assert 167 <= features["view_count_7d"] <= 169  # hourly viewings: 7 × 24 in the last week
    assert features["popularity_score"] > 0 and features.computed_at is not None


def test_mmr_snippet_diversifies_the_engines_items(serving_world):
    from recommendation_engine import RecommendationEngine, UserContext, diversify_recommendations, similarity

    profile_id = ViewingEvent.objects.order_by("-profile_id").values_list("profile_id", flat=True)[0]
    items = RecommendationEngine().recommend(context=UserContext(profile_id=profile_id), n=25).items  # O(n·k²) pairs
    namespace = run("MMR diversification", {"np": np, "similarity": similarity})

    designed = namespace["diversify_recommendations"](items, lambda_param=0.7)
    assert len(designed) == 20 and designed[0] == items[0]
    assert len({item.content_id for item in designed}) == 20 and set(designed) <= set(items)
    ours = diversify_recommendations(items, lambda_param=0.7)
    assert len(ours) == 20 and set(ours) <= set(items)
    assert all(0.0 <= similarity(items[0], other) <= 1.0 for other in items[:5])


def _every_feature(features) -> dict:
    return {f.name: [f.default] * f.width if f.width > 1 else f.default for f in features.features}


def test_user_ttl_snippet_stores_for_an_hour(design_genres, design_redis):
    from feature_store import FeatureStore

    user_features = {**_every_feature(USER_FEATURES), "total_watch_hours": 2.5, "favorite_genres": ["Thriller"]}
    fs = FeatureStore(redis_host="localhost", redis_port=6379)
    run("Feature TTL: users (1 hour)", {"fs": fs, "user_id": 123, "user_features": user_features})

    assert 3590 <= design_redis.ttl(feature_key(USER, 123)) <= 3600
    stored = fs.get_online_features("user", 123, ["total_watch_hours", "favorite_genres"])
    assert stored == {"total_watch_hours": 2.5, "favorite_genres": ["Thriller"]}


def test_content_ttl_snippet_stores_for_five_minutes(design_redis):
    from feature_store import FeatureStore

    content_features = {**_every_feature(CONTENT_FEATURES), "view_count_7d": 12}
    fs = FeatureStore(redis_host="localhost", redis_port=6379)
    run("Feature TTL: content (5 minutes)", {"fs": fs, "content_id": 1, "content_features": content_features})

    assert 290 <= design_redis.ttl(feature_key(CONTENT, 1)) <= 300
    assert fs.get_online_features("content", 1, ["view_count_7d"]) == {"view_count_7d": 12}


def test_response_cache_snippet_keeps_the_list_ten_minutes(design_redis):
    item = RankedItem(1, 42, "A Title", 0.5, "Top pick for you", ("collaborative",))
    filled = {
        "redis": design_redis,
        "json": json,
        "user_id": 123,
        "profile_id": 456,
        "context_hash": uuid.uuid4().hex,
        "recommendations": [dict(item.__dict__)],
    }
    namespace = run("Response cache (10 minutes)", filled)
    try:
        assert 590 <= design_redis.ttl(namespace["cache_key"]) <= 600
        assert json.loads(design_redis.get(namespace["cache_key"]))[0]["content_id"] == 42
    finally:
        design_redis.delete(namespace["cache_key"])


class _ProfileOfFuture:
    """The snippet's `futures[future]` (its `features_futures`): the profile whose features a future holds."""

    def __getitem__(self, future):
        return future.result().entity_id


def _in_submission_order(futures):
    """as_completed's futures, each once done, in the order they were submitted (what `zip(batch, scores)` needs)."""
    for future in futures:
        future.result()
        yield future


def test_batch_snippet_recommends_each_user_of_each_batch(serving_world):
    from recommendation_engine import RecommendationEngine, batch_recommend, get_features

    profile_ids = list(Profile.objects.order_by("id").values_list("id", flat=True)[:5])
    filled = {
        "List": typing.List,  # noqa: UP006 (the snippet annotates with it)
        "ThreadPoolExecutor": ThreadPoolExecutor,
        "as_completed": _in_submission_order,
        "get_features": get_features,
        "futures": _ProfileOfFuture(),
        "model": RecommendationEngine(),
    }
    namespace = run("Batch inference", filled)

    pairs = list(namespace["batch_recommend"](profile_ids, batch_size=2))
    assert [user_id for user_id, _ in pairs] == profile_ids
    assert all(recs.profile_id == user_id and recs.items for user_id, recs in pairs)
    ours = list(batch_recommend([*profile_ids[:3], 10**12], batch_size=2))
    assert [user_id for user_id, _ in ours] == [*profile_ids[:3], 10**12]
    assert [recs.profile_id for _, recs in ours[:3]] == profile_ids[:3] and ours[3][1] is None


def _entry_points() -> list[str]:
    return [line for line in snippet("Test entry points", "sh").splitlines() if line.strip()]


@pytest.mark.parametrize("command", [c for c in _entry_points() if c.startswith("pytest ")])
def test_test_entry_points_name_test_files_of_the_suite(command):
    # Run as written they are the suite itself (make test runs them); here: they collect tests.
    words = shlex.split(command)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", *words[1:]],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert re.search(r"^\d+ tests? collected", result.stdout, re.MULTILINE), result.stdout[-500:]


@pytest.mark.slow
def test_ab_test_entry_point_runs_as_written(committed_serving_world, tmp_path):
    (command,) = [c for c in _entry_points() if c.startswith("python ab_test.py")]
    data_dir = tmp_path / "data"
    shutil.copytree(tmp_path / "truth", data_dir / "synthetic" / "world")  # where ab_test finds the newest world
    db = connection.settings_dict
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",  # `python`: this venv's
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}",
        "RECO_DATA_DIR": str(data_dir),
        "RECO_ARTIFACT_DIR": str(settings.RECO_ARTIFACT_DIR),
    }
    if connection.vendor != "postgresql":
        pytest.fail("The entry-point test needs PostgreSQL: another process cannot share an in-memory SQLite.")
    result = subprocess.run(command, shell=True, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "served: {'baseline': " in result.stdout and "new_ranking_model" in result.stdout
