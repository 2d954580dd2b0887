"""One private Redis Cluster (3 masters + 3 replicas, tests/clusterkit.py) for the whole session, and the
settings that put the process's cache, feature store, rate limits, locks and statuses on it."""

from __future__ import annotations

import uuid

import pytest

from config.redis_cluster import shared_redis
from features.store import FeatureStore
from tests.clusterkit import redis_cluster


@pytest.fixture(scope="session")
def cluster():
    with redis_cluster() as processes:
        yield processes


@pytest.fixture
def on_cluster(cluster, settings):
    """The default cache is the cluster (as REDIS_CLUSTER_URLS configures it), under a key prefix of its own."""
    settings.REDIS_CLUSTER_URLS = cluster.urls
    settings.CACHES = {
        "default": {
            "BACKEND": "config.redis_cluster.RedisClusterCache",
            "LOCATION": cluster.urls,
            "KEY_PREFIX": f"t-{uuid.uuid4().hex[:8]}",
            # jobs' timeout: the web's 50 ms would open breakers on a loaded CI machine and fail the writes
            "OPTIONS": {"socket_timeout": 0.5, "refresh_seconds": 0.2},
        }
    }
    settings.RECO_TITLE_FEATURES_CHECK_SECONDS = 0.1
    yield cluster
    shared_redis().close()


@pytest.fixture
def cluster_store(on_cluster):
    return FeatureStore(namespace=f"fs-c-{uuid.uuid4().hex[:8]}")
