"""Shared fixtures. Service-backed tests talk to the real PostgreSQL and Redis named by the environment."""

from __future__ import annotations

import datetime as dt
import os

import pytest
from django.conf import settings
from django.contrib.auth.models import Group

from tests.factories.auth import UserFactory
from tests.factories.catalog import GenreFactory, TitleFactory
from tests.factories.users import AccountFactory, ProfileFactory

ON_CI = os.environ.get("CI", "").lower() in {"1", "true"}


def pytest_configure(config):
    # On CI a silently embedded SQLite or local-memory cache would make the real-services tests meaningless.
    if ON_CI:
        engine = settings.DATABASES["default"]["ENGINE"]
        if not _is_postgresql(engine):
            raise pytest.UsageError(f"CI must test on PostgreSQL (DATABASE_URL), not {engine}.")
        if not settings.REDIS_URL:
            raise pytest.UsageError("CI must test against Redis: set REDIS_URL.")


@pytest.fixture
def is_postgres() -> bool:
    return _is_postgresql(settings.DATABASES["default"]["ENGINE"])


def _is_postgresql(engine: str) -> bool:
    """Django's backend, or ours on top of it (config.db: deadlines and a circuit breaker)."""
    return engine.endswith("postgresql") or engine == "config.db"


@pytest.fixture
def genre(db):
    return GenreFactory(name="Drama")


@pytest.fixture
def title(db, genre):
    return TitleFactory(genres=[genre])


@pytest.fixture
def account(db):
    return AccountFactory()


@pytest.fixture
def profile(db, account):
    return ProfileFactory(account=account)


@pytest.fixture
def editor(db):
    """A staff user in the Editors group that catalog migration 0002 creates."""
    user = UserFactory(is_staff=True)
    user.groups.add(Group.objects.get(name="Editors"))
    return user


@pytest.fixture
def editor_client(client, editor):
    client.force_login(editor)
    return client


@pytest.fixture(scope="session")
def celery_worker_process(django_db_setup, django_db_blocker):
    """A real Celery worker process on the real broker, consuming a queue of this test run only.

    It talks to the test database, so tests that use it need `transactional_db` (committed rows).
    """
    import subprocess
    import sys
    import time
    import uuid
    from pathlib import Path

    from django.db import connection

    from config.celery import app
    from tests.tasks.processes import one_queue_env, tasks_sent_to

    if not settings.CELERY_BROKER_URL:
        pytest.fail("The worker tests need CELERY_BROKER_URL (make test sets a Redis broker).")
    queue = f"reco-test-{uuid.uuid4().hex[:8]}"
    db = connection.settings_dict
    database_url = f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}"
    if connection.vendor != "postgresql":
        pytest.fail("The worker tests need PostgreSQL: a worker process cannot share an in-memory SQLite database.")
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        **one_queue_env(queue),  # every domain's tasks to this run's own queue
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
    }
    root = Path(__file__).resolve().parent.parent
    log = open(root / "var" / f"{queue}.log", "w")  # noqa: SIM115 (open while the worker runs)
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "--pool",
            "solo",
            "--queues",
            queue,
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "--loglevel",
            "INFO",
            "--hostname",
            f"{queue}@%h",
        ],
        cwd=root,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    with tasks_sent_to(queue):
        try:
            deadline = time.monotonic() + 60
            while not app.control.ping(destination=[f"{queue}@{os.uname().nodename}"], timeout=1.0):
                if worker.poll() is not None or time.monotonic() > deadline:
                    log.flush()
                    pytest.fail(f"Celery worker did not start:\n{(root / 'var' / f'{queue}.log').read_text()[-3000:]}")
            yield queue
        finally:
            worker.terminate()
            try:
                worker.wait(timeout=20)
            except subprocess.TimeoutExpired:
                worker.kill()
            log.close()


SERVING_NOW = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)


def serving_caches_reset() -> None:
    """Forget every process-local serving cache (models, catalog, rules, API clients, title features)."""
    from experiments.bandit_state import bandit_cache
    from experiments.services import experiments_cache
    from features.store import title_feature_caches_reset
    from ranking.rules_cache import rules_cache
    from recommendations.api.auth import client_cache
    from recommendations.registry import registry
    from recommendations.serving.catalog_cache import catalog_cache
    from recommendations.serving.state import serving_state

    registry.__init__(check_seconds=0)
    catalog_cache.__init__(check_seconds=0, table_check_seconds=0)
    rules_cache.__init__(check_seconds=0)
    serving_state.clear()
    client_cache.clear()
    experiments_cache.expire()
    bandit_cache.__init__()
    title_feature_caches_reset()


def _build_serving_world(settings, tmp_path) -> None:
    from django.core.management import call_command

    from recommendations.models import ModelKind
    from recommendations.training.jobs import model_train

    settings.RECO_ARTIFACT_DIR = tmp_path / "artifacts"
    settings.RECO_REGISTRY_CHECK_SECONDS = 0
    settings.RECO_CATALOG_CHECK_SECONDS = 0
    settings.RECO_CATALOG_TABLE_CHECK_SECONDS = 0
    call_command(
        "generate_synthetic",
        "--titles",
        "600",
        "--accounts",
        "300",
        "--events",
        "30000",
        "--seed",
        "5",
        "--as-of",
        SERVING_NOW.date().isoformat(),
        "--ground-truth-dir",
        str(tmp_path / "truth"),
        verbosity=0,
    )
    for kind in (ModelKind.POPULARITY, ModelKind.MATRIX_FACTORIZATION, ModelKind.CONTENT):
        model_train(kind=kind, activation="always")
    serving_caches_reset()


@pytest.fixture
def serving_world(db, settings, tmp_path):
    """A synthetic world (600 titles, ~700 profiles, 30K viewings up to SERVING_NOW) with popularity, MF and
    content models trained and active, and every serving cache fresh."""
    _build_serving_world(settings, tmp_path)
    yield
    serving_caches_reset()


@pytest.fixture
def committed_serving_world(transactional_db, settings, tmp_path):
    """serving_world committed, so that other connections and forked processes see it (emptied afterwards)."""
    _build_serving_world(settings, tmp_path)
    yield
    serving_caches_reset()


@pytest.fixture
def no_published_rules_version():
    """No rules version in the real cache (Redis under `make test`) before or after the test: database ids
    restart each run, so a version left there would be stale."""
    from django.core.cache import cache

    from ranking.rules_cache import RULES_VERSION_KEY

    cache.delete(RULES_VERSION_KEY)
    yield
    cache.delete(RULES_VERSION_KEY)
