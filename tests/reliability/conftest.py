"""The served world the reliability scenarios break: the committed test world behind gunicorn, with its own
redis-server and a TCP proxy in front of PostgreSQL, both of which a test may freeze or kill (tests/faultkit.py)."""

from __future__ import annotations

import itertools
import secrets
import threading
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from django.db import connection, connections

from features import selectors as feature_selectors
from features.services import content_features_refresh, user_features_refresh
from features.store import FeatureStore
from recommendations.models import ApiClient
from tests.faultkit import (
    GunicornServer,
    RedisServer,
    RequestRecord,
    TcpProxy,
    gunicorn_server,
    redis_server,
    tcp_proxy,
    wait_until,
)
from users.models import ViewingEvent

READINESS_PATH = "/readyz"  # the readiness endpoint: 200 only while the database answers
RATE = 20  # requests a second in every fault scenario (the issue's figure)
# The committed world trains popularity, MF and content but no ranker (30 s more on 2 cores), so its answers
# always say `no_ranker`; a "full" answer here is a 200 that names nothing else.
WORLD_FLAGS = frozenset({"no_ranker"})


@dataclass
class ServedWorld:
    """gunicorn serving the committed world; `redis` and `proxy` are the faults a test may inject."""

    server: GunicornServer
    redis: RedisServer
    proxy: TcpProxy
    api_key: str
    profile_ids: list[int]

    @property
    def headers(self) -> dict[str, str]:
        return {"X-Api-Key": self.api_key}

    def recs_url(self, profiles: int | None = None) -> Callable[[int], str]:
        """The i-th request's /api/recs URL, over the first `profiles` profiles in turn (default all 400, so
        few answers come from the response cache; fewer, so that answers cached during a fault are asked again)."""
        cycle = itertools.cycle(self.profile_ids[:profiles])
        return lambda i: f"{self.server.url}/api/recs?profile_id={next(cycle)}&n=10"

    @staticmethod
    def full(record: RequestRecord) -> bool:
        """A 200 that took no simpler path than the world allows."""
        return record.status == 200 and set(record.flags) <= WORLD_FLAGS

    def refresh_features(self) -> None:
        """What the feature jobs write: every profile's and title's features and the trending list."""
        features_refresh(self.redis.url)


def features_refresh(redis_url: str) -> None:
    """Every profile's and title's features and the trending list into the Redis at `redis_url`. Safe from any
    thread: it closes the database connection it opened in a thread other than the test's own."""
    store = FeatureStore.from_url(redis_url, socket_timeout=5.0)
    try:
        low, high = feature_selectors.profile_id_bounds()
        user_features_refresh(profile_id_start=low, profile_id_end=high + 1, store=store)
        content_features_refresh(store=store)
    finally:
        if threading.current_thread() is not threading.main_thread():
            connections.close_all()  # this thread's own connections only


def served_env(*, database_url: str, redis_url: str, artifact_dir: str, serving_cache_dir: str) -> dict[str, str]:
    """The environment gunicorn runs under: the production settings, named explicitly (pytest-django has set
    config.settings.test in this process's environment), over plain HTTP on the loopback."""
    return {
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        "SECRET_KEY": secrets.token_urlsafe(48),
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SECURE_SSL_REDIRECT": "0",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "RECO_ARTIFACT_DIR": artifact_dir,
        "RECO_SERVING_CACHE_DIR": serving_cache_dir,  # the web processes' private copies of the artifacts
        "LOG_LEVEL": "INFO",
    }


@pytest.fixture
def served_world(committed_serving_world, settings, tmp_path) -> Iterator[ServedWorld]:
    """The committed serving world plus a ranker, its features in a private redis-server, an API key, and
    gunicorn (2 workers, preloaded as documented) reaching PostgreSQL through a proxy."""
    _, api_key = ApiClient.issue("reliability", rate="1000000/min")
    profile_ids = sorted(set(ViewingEvent.objects.values_list("profile_id", flat=True)))[:400]
    db = connection.settings_dict
    with redis_server() as redis, tcp_proxy(db["HOST"] or "127.0.0.1", int(db["PORT"] or 5432)) as proxy:
        features_refresh(redis.url)
        database_url = f"postgres://{db['USER']}:{db['PASSWORD']}@127.0.0.1:{proxy.port}/{db['NAME']}"
        env = served_env(
            database_url=database_url,
            redis_url=redis.url,
            artifact_dir=str(settings.RECO_ARTIFACT_DIR),
            serving_cache_dir=str(tmp_path / "serving-cache"),
        )
        with gunicorn_server(env, workers=2) as server:
            yield ServedWorld(server, redis, proxy, api_key, profile_ids)
    _wait_for_other_sessions_to_end()


def _wait_for_other_sessions_to_end(seconds: float = 10.0) -> None:
    """The backends the proxy served exit a moment after it closes their sockets; the test database can be
    flushed and dropped only once they have."""

    def others() -> list[tuple]:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pid, client_port, state, left(query, 80) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            return cursor.fetchall()

    try:
        wait_until(lambda: not others(), seconds=seconds)
    except TimeoutError:
        # Left by an earlier test of this run (a forked child, a thread's own connection): idle sessions of the
        # test database only, which nothing else uses; ended so the flush and the drop can go on.
        leftover = others()
        warnings.warn(f"ending sessions left open on the test database: {leftover}", stacklevel=1)
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid()"
            )
        wait_until(lambda: not others(), seconds=seconds)
