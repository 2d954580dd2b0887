"""Redis Cluster settings and the failure contract without a cluster: malformed URLs refuse to start; a cluster
no node of which answers is "Redis unavailable" (a redis ConnectionError), never another exception."""

from __future__ import annotations

import socket

import pytest
import redis
from django.core.exceptions import ImproperlyConfigured

from config import probes
from config.redis_cluster import cluster_client, cluster_nodes, shared_redis
from features.store import FeatureStore


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_startup_nodes_parse_and_malformed_ones_refuse_to_start():
    nodes = cluster_nodes(["redis://10.0.0.1:7000", "10.0.0.2:7001"])
    assert [(n.host, n.port) for n in nodes] == [("10.0.0.1", 7000), ("10.0.0.2", 7001)]
    for bad in ("redis://10.0.0.1:7000/3", "http://10.0.0.1:7000", "redis://10.0.0.1"):
        with pytest.raises(ImproperlyConfigured):
            cluster_nodes([bad])


def test_an_unreachable_cluster_is_a_connection_error():
    with pytest.raises(redis.exceptions.ConnectionError):
        cluster_client([f"redis://127.0.0.1:{_closed_port()}"], socket_timeout=0.1)


def test_with_no_cluster_node_up_reads_degrade_and_readiness_says_so(settings):
    urls = [f"redis://127.0.0.1:{_closed_port()}", f"redis://127.0.0.1:{_closed_port()}"]
    settings.REDIS_CLUSTER_URLS = urls
    settings.CACHES = {
        "default": {
            "BACKEND": "config.redis_cluster.RedisClusterCache",
            "LOCATION": urls,
            "OPTIONS": {"socket_timeout": 0.1},
        }
    }
    with pytest.raises(redis.exceptions.ConnectionError):
        shared_redis()
    store = FeatureStore(namespace="fs-nowhere")  # constructed all the same: engines are built at import
    read = store.get_request_features(1, [1, 2])
    assert read.user.store_unavailable and read.content.store_unavailable and not read.content.found.any()
    assert probes._redis_state() == "unreachable (answers degraded)"
    from config import ratelimit

    assert not ratelimit.take("nobody-cluster", rate=1, capacity=1).shared  # counted in this process instead


def test_redis_cluster_urls_put_the_default_cache_on_the_cluster():
    import os
    import subprocess
    import sys

    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.base",
        "REDIS_URL": "redis://127.0.0.1:1/0",
        "REDIS_CLUSTER_URLS": "redis://10.0.0.1:7000, redis://10.0.0.2:7000",
        "RECO_PROCESS": "web",
    }
    script = (
        "import django; django.setup(); from django.conf import settings as s; c = s.CACHES['default']; "
        "print(c['BACKEND'], c['LOCATION'], c['OPTIONS'], s.FEATURE_TTL_SECONDS['content'])"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.split(" ", 1)[0] == "config.redis_cluster.RedisClusterCache"
    assert "['redis://10.0.0.1:7000', 'redis://10.0.0.2:7000']" in out.stdout
    assert "'socket_timeout': 0.05" in out.stdout and out.stdout.strip().endswith(" 300")
