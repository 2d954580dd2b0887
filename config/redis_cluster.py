"""Redis Cluster behind Django's cache API, and the one way every module reaches "the shared Redis".

Settings: REDIS_CLUSTER_URLS (comma-separated startup nodes, `redis://host:port`) selects the cluster;
REDIS_URL one server (django-redis); neither: local memory and the embedded stores. The client is redis-py's
`RedisCluster` (the library every other Redis call of ours uses, so one exception hierarchy and the same
BreakerConnection: a breaker per node, and a node that is down fails only the keys of its slots).

`shared_redis()` gives the raw client of the default cache: a `redis.Redis` (django-redis), a `RedisCluster`
(ours), or None (local memory). Cluster rules the callers keep: a command or Lua script touches the keys of
one slot (keys that belong together share a `{hash tag}`); pipelines are grouped by node by redis-py.
Topology: redis-py re-reads CLUSTER SLOTS after every connection error; `ThrottledNodesManager` does that at
most once per REDIS_CLUSTER_REFRESH_SECONDS, so a dead master costs its requests nothing but a failed call
until its replica is promoted, and the next refresh after that serves its slots again. A refresh that finds
no node answering raises a redis ConnectionError (what every caller treats as "Redis unavailable"), never
redis-py's RedisClusterException. The servers must run with `cluster-require-full-coverage no`: otherwise
every node refuses every key (CLUSTERDOWN) from the moment a master is marked failed until its replica is
promoted, instead of only that master's slots.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any
from urllib.parse import urlsplit

import redis
from django.conf import settings
from django.core.cache.backends.redis import RedisCache, RedisCacheClient
from django.core.exceptions import ImproperlyConfigured
from redis.backoff import NoBackoff
from redis.cluster import ClusterNode, NodesManager, RedisCluster
from redis.exceptions import RedisClusterException
from redis.retry import Retry

from config.breakers import OPEN, breaker_states
from config.redis_connection import BreakerConnection

log = logging.getLogger(__name__)


def cluster_nodes(urls: list[str]) -> list[ClusterNode]:
    """`redis://host:port` (or `host:port`) startup nodes; ImproperlyConfigured for anything else."""
    nodes = []
    for url in urls:
        parts = urlsplit(url if "://" in url else f"redis://{url}")
        if parts.scheme != "redis" or not parts.hostname or not parts.port or parts.path not in ("", "/", "/0"):
            raise ImproperlyConfigured(
                f"REDIS_CLUSTER_URLS entry {url!r}: use redis://host:port (a cluster has only database 0)."
            )
        nodes.append(ClusterNode(parts.hostname, parts.port))
    return nodes


class ThrottledNodesManager(NodesManager):
    """redis-py's slot map, refreshed at most once per `refresh_seconds` after a failure (the first one at once)."""

    refresh_seconds = 0.5
    _refreshed_at = 0.0

    def initialize(self, *args: Any, **kwargs: Any) -> None:
        after_failure = kwargs.get("last_failed_node_name") is not None and bool(self.slots_cache)
        if after_failure:
            if time.monotonic() - self._refreshed_at < self.refresh_seconds:
                return
            self._refreshed_at = time.monotonic()
        try:
            super().initialize(*args, **kwargs)  # start-up, MOVED, CLUSTERDOWN: as redis-py does
        except RedisClusterException as error:
            if after_failure:  # the caller raises the connection error that brought it here
                log.warning("Redis Cluster slot map not refreshed: %s", error)
                return
            raise redis.exceptions.ConnectionError(f"Redis Cluster unreachable: {error}") from error


def cluster_client(
    urls: list[str], *, socket_timeout: float, refresh_seconds: float = 0.5, **options: Any
) -> RedisCluster:
    """A RedisCluster over BreakerConnection pools: one retry (after a slot-map refresh), per-node breakers."""
    nodes = cluster_nodes(urls)
    try:
        # Given a url, redis-py builds each node's pool from these kwargs, connection_class included.
        client = RedisCluster(
            url=f"redis://{nodes[0].host}:{nodes[0].port}",
            startup_nodes=nodes[1:],
            socket_timeout=socket_timeout,
            socket_connect_timeout=socket_timeout,
            connection_class=BreakerConnection,
            retry=Retry(NoBackoff(), 1),
            require_full_coverage=False,  # the slots of the nodes that answer keep serving
            **options,
        )
    except RedisClusterException as error:  # no startup node answered
        raise redis.exceptions.ConnectionError(f"Redis Cluster unreachable: {error}") from error
    client.nodes_manager.__class__ = ThrottledNodesManager
    client.nodes_manager.refresh_seconds = refresh_seconds
    return client


class RedisClusterCacheClient(RedisCacheClient):
    """Django's Redis cache client on one kept RedisCluster; multi-key calls split by slot."""

    def __init__(self, servers: list[str], serializer: Any = None, **options: Any) -> None:
        super().__init__(servers, serializer=serializer)
        self._options = options
        self._cluster: RedisCluster | None = None
        self._cluster_lock = threading.Lock()

    def get_client(self, key: Any = None, *, write: bool = False) -> RedisCluster:
        if self._cluster is None:
            with self._cluster_lock:
                if self._cluster is None:
                    self._cluster = cluster_client(self._servers, **self._options)
        return self._cluster

    def get_many(self, keys: Any) -> dict:
        keys = list(keys)
        values = self.get_client().mget_nonatomic(keys) if keys else []
        return {k: self._serializer.loads(v) for k, v in zip(keys, values, strict=True) if v is not None}

    def set_many(self, data: dict, timeout: int | None) -> None:
        with self.get_client().pipeline(transaction=False) as pipe:  # grouped by node by redis-py
            for key, value in data.items():
                pipe.set(key, self._serializer.dumps(value), ex=timeout)
            pipe.execute()

    def delete_many(self, keys: Any) -> None:
        keys = list(keys)
        if keys:
            self.get_client().delete(*keys)  # split by slot by redis-py

    def clear(self) -> bool:
        raise NotImplementedError("cache.clear() on a shared Redis Cluster would flush every node")


class RedisClusterCache(RedisCache):
    """CACHES backend `config.redis_cluster.RedisClusterCache`; LOCATION is the list of startup nodes and OPTIONS
    go to `cluster_client` (socket_timeout, refresh_seconds)."""

    def __init__(self, server: str | list[str], params: dict) -> None:
        super().__init__(server, params)
        self._class = RedisClusterCacheClient


def shared_redis(alias: str = "default") -> redis.Redis | RedisCluster | None:
    """The raw client under cache `alias`: django-redis's, our cluster's, or None for another backend."""
    from django.core.cache import caches

    cache = caches[alias]
    if isinstance(cache, RedisClusterCache):
        return cache._cache.get_client()
    if settings.CACHES[alias]["BACKEND"].startswith("django_redis"):
        from django_redis import get_redis_connection

        return get_redis_connection(alias)
    return None


def cluster_configured(alias: str = "default") -> bool:
    """Whether cache `alias` is a Redis Cluster (decided from the settings, without connecting)."""
    return settings.CACHES[alias]["BACKEND"] == "config.redis_cluster.RedisClusterCache"


def is_cluster(client: object) -> bool:
    return isinstance(client, RedisCluster)


def cluster_nodes_state(client: RedisCluster) -> list[dict[str, Any]]:
    """Each node of the slot map (masters first): name, role, and whether its breaker is open (skipped)."""
    open_breakers = {b.name.removeprefix("redis ") for b in breaker_states() if b.state == OPEN}
    nodes = sorted(client.get_nodes(), key=lambda n: (n.server_type != "primary", n.name))
    return [{"node": n.name, "role": n.server_type, "unreachable": n.name in open_breakers} for n in nodes]
