"""FeatureStore: online features on Redis Cluster (REDIS_CLUSTER_URLS), one Redis (REDIS_URL) or, embedded,
in a database table.

Reads never raise for an unreachable Redis: they return the declared defaults flagged
`store_unavailable` and log a warning. Writes raise, so a refresh job fails, retries, and the features
already stored stay in place until their TTL.

The request path (`get_request_features`) reads the profile's one payload with one command (on a cluster:
from the one node of its slot, so a node that is down degrades only its profiles) and its candidates' title
features from process memory: `TitleFeatureCache` holds the newest matrix the content refresh announced
(`publish_matrix`), checked every RECO_TITLE_FEATURES_CHECK_SECONDS. Without a fresh matrix it falls back to
the per-title keys (one MGET, on one node: they share a hash tag; on a cluster read apart from the profile's,
so that either node being down degrades only its half), missing ones defaulted as before.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import redis
from django.conf import settings
from django.db import DatabaseError, transaction
from redis.cluster import RedisCluster

from config.redis_cluster import cluster_configured, shared_redis
from config.reloading import VersionedSnapshot
from features.keys import (
    DEFAULT_NAMESPACE,
    feature_key,
    feature_keys,
    matrix_key,
    matrix_version_key,
    ranking_key,
)
from features.ml import codec
from features.ml.definitions import CONTENT, USER, FeatureSet, feature_set
from features.models import OnlineFeature

log = logging.getLogger(__name__)

PIPELINE_SETS = 10_000  # SETs per pipeline: ~2 MB per round trip, well inside the socket timeout
DATABASE_BATCH = 500  # keys per statement of the embedded backend (inside SQLite's variable limit)
DEFAULT_TTL_SECONDS = {USER: 3600, CONTENT: 300}
# A title matrix (15 MB at 100K titles: 20-75 ms here) is read on a connection of its own with this timeout:
# the web's 50 ms per read, met by one slow chunk, would open the node's breaker and degrade its profiles.
BULK_READ_TIMEOUT_SECONDS = 1.0
UNAVAILABLE = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    ConnectionError,
    TimeoutError,
    DatabaseError,  # the embedded backend's table missing or locked
)


@dataclass(frozen=True)
class FeatureRow:
    """One entity's features: scalars as Python numbers, vectors as numpy arrays."""

    entity_type: str
    entity_id: int
    values: Mapping[str, Any]
    defaulted: frozenset[str]
    computed_at: dt.datetime | None
    store_unavailable: bool = False


@dataclass(frozen=True)
class FeatureBatch:
    """Many entities' features as one float32 matrix in the schema's column order."""

    entity_type: str
    ids: np.ndarray  # (n,) int64
    values: np.ndarray  # (n, width) float32; declared defaults where not found
    found: np.ndarray  # (n,) bool; False means every feature of that row is defaulted
    computed_at: np.ndarray  # (n,) float64 Unix seconds, NaN where not found
    store_unavailable: bool = False

    def column(self, name: str) -> np.ndarray:
        """(n,) for a scalar feature, (n, width) for a vector."""
        features = feature_set(self.entity_type)
        features.feature(name)
        block = self.values[:, features.slices[name]]
        return block[:, 0] if block.shape[1] == 1 else block

    def row(self, position: int, feature_names: Iterable[str] | None = None) -> FeatureRow:
        return _row(
            feature_set(self.entity_type),
            int(self.ids[position]),
            self.values[position],
            found=bool(self.found[position]),
            computed_at=float(self.computed_at[position]),
            feature_names=feature_names,
            store_unavailable=self.store_unavailable,
        )


@dataclass(frozen=True)
class RequestFeatures:
    """What one request reads in one round trip: the profile's features and its candidates'."""

    user: FeatureRow
    content: FeatureBatch


@dataclass(frozen=True)
class Ranking:
    ids: np.ndarray  # (n,) int64 title ids, best first
    scores: np.ndarray  # (n,) float32
    store_unavailable: bool = False


class Backend(Protocol):
    name: str
    location: str  # which store: title matrices are cached per store and namespace

    def get(self, keys: Sequence[str]) -> list[bytes | None]: ...

    def get_bulk(self, key: str) -> bytes | None: ...

    def set(self, items: Sequence[tuple[str, bytes]], ttl_seconds: int) -> None: ...


class RedisBackend:
    """Raw Redis: one MGET per read, pipelined `SET key value EX ttl` per write."""

    name = "redis"

    def __init__(self, client: redis.Redis) -> None:
        self.client = client

    @property
    def location(self) -> str:
        kwargs = self.client.connection_pool.connection_kwargs
        return f"{kwargs.get('host')}:{kwargs.get('port')}/{kwargs.get('db', 0)}"

    def get(self, keys: Sequence[str]) -> list[bytes | None]:
        return self.client.mget(keys) if keys else []

    def get_bulk(self, key: str) -> bytes | None:
        """One big value, on a short-lived connection with BULK_READ_TIMEOUT_SECONDS and no breaker."""
        kwargs = self.client.connection_pool.connection_kwargs
        return _bulk_get(
            kwargs.get("host"),
            kwargs.get("port"),
            key,
            db=kwargs.get("db", 0),
            username=kwargs.get("username"),
            password=kwargs.get("password"),
        )

    def set(self, items: Sequence[tuple[str, bytes]], ttl_seconds: int) -> None:
        """Pipelined `SET key value EX ttl`, the commands packed here in one bytes join: redis-py's pipeline
        spends ~14 µs of Python a command, this ~3 (100K titles: 1.45 s -> 0.3 s)."""
        pool = self.client.connection_pool
        for start in range(0, len(items), PIPELINE_SETS):
            chunk = items[start : start + PIPELINE_SETS]
            packed = _packed_sets(chunk, ttl_seconds)
            for attempt in (1, 2):  # like the client's one retry: a pooled socket Redis closed fails the send
                connection = pool.get_connection()
                try:
                    connection.send_packed_command([packed], check_health=False)
                except redis.exceptions.ConnectionError:
                    connection.disconnect()
                    pool.release(connection)
                    if attempt == 2:
                        raise
                    continue
                try:
                    for _ in chunk:  # one reply a SET; an error reply raises ResponseError
                        connection.read_response()
                except BaseException:
                    connection.disconnect()  # replies may be left unread: never hand this socket out again
                    raise
                finally:
                    pool.release(connection)
                break


def _packed_sets(items: Sequence[tuple[str, bytes]], ttl_seconds: int) -> bytes:
    """The RESP encoding of one `SET key value EX ttl` per item."""
    ttl = str(int(ttl_seconds)).encode()
    tail = b"\r\n$2\r\nEX\r\n$%d\r\n%s\r\n" % (len(ttl), ttl)
    encoded = ((key.encode(), payload) for key, payload in items)
    return b"".join(
        b"*5\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s%s" % (len(key), key, len(payload), payload, tail)
        for key, payload in encoded
    )


class ClusterBackend(RedisBackend):
    """Redis Cluster: GET for one key, MGET per slot otherwise (one command when the keys share a tag);
    writes in pipelines that redis-py groups by node (one round trip per node per PIPELINE_SETS).

    `connect` gives the kept client (the cache's): a cluster that no node answers yet fails each call with a
    redis ConnectionError, read as "store unavailable", instead of failing the store's construction."""

    name = "redis-cluster"
    location = ""  # the startup nodes (set per instance; shadows RedisBackend's property)

    def __init__(self, connect: Callable[[], RedisCluster], *, location: str) -> None:
        self._connect = connect
        self.location = location

    @property
    def client(self) -> RedisCluster:
        return self._connect()

    def get(self, keys: Sequence[str]) -> list[bytes | None]:
        if len(keys) == 1:
            return [self.client.get(keys[0])]
        return self.client.mget_nonatomic(list(keys)) if keys else []

    def set(self, items: Sequence[tuple[str, bytes]], ttl_seconds: int) -> None:
        for start in range(0, len(items), PIPELINE_SETS):
            pipe = self.client.pipeline(transaction=False)
            for key, payload in items[start : start + PIPELINE_SETS]:
                pipe.set(key, payload, ex=ttl_seconds)
            pipe.execute()

    def get_bulk(self, key: str) -> bytes | None:
        """From the master of the key's slot as the client's slot map says (a MOVED mid-failover raises a
        ResponseError: the caller keeps its copy and tries again at its next check)."""
        client = self.client
        node = client.get_node_from_key(key)
        kwargs = client.nodes_manager.connection_kwargs
        return _bulk_get(node.host, node.port, key, username=kwargs.get("username"), password=kwargs.get("password"))


class DatabaseBackend:
    """The embedded stand-in for Redis: one SELECT per read, batched upserts per write, expired rows
    ignored on read and deleted on write. Shared by every process that uses the same database."""

    name = "database"
    location = "default"

    def get(self, keys: Sequence[str]) -> list[bytes | None]:
        found: dict[str, bytes] = {}
        for start in range(0, len(keys), DATABASE_BATCH):
            rows = OnlineFeature.objects.filter(key__in=keys[start : start + DATABASE_BATCH], expires_at__gt=_now())
            found.update((key, bytes(payload)) for key, payload in rows.values_list("key", "payload"))
        return [found.get(k) for k in keys]

    def get_bulk(self, key: str) -> bytes | None:
        return self.get([key])[0]

    def set(self, items: Sequence[tuple[str, bytes]], ttl_seconds: int) -> None:
        now = _now()
        expires_at = now + dt.timedelta(seconds=ttl_seconds)
        with transaction.atomic():
            OnlineFeature.objects.filter(expires_at__lte=now).delete()
            OnlineFeature.objects.bulk_create(
                (OnlineFeature(key=key, payload=payload, expires_at=expires_at) for key, payload in items),
                batch_size=DATABASE_BATCH,
                update_conflicts=True,
                unique_fields=["key"],
                update_fields=["payload", "expires_at"],
            )


class FeatureStore:
    """Online features by entity type; see the module docstring for the failure contract."""

    def __init__(
        self,
        connection: redis.Redis | None = None,
        *,
        namespace: str = DEFAULT_NAMESPACE,
        backend: Backend | None = None,
    ) -> None:
        self.backend: Backend
        if backend is not None:
            self.backend = backend
        elif connection is None and cluster_configured():
            self.backend = ClusterBackend(shared_redis, location=str(settings.CACHES["default"]["LOCATION"]))
        else:
            client = connection if connection is not None else shared_redis()
            if client is None:
                self.backend = DatabaseBackend()
            elif isinstance(client, RedisCluster):
                self.backend = ClusterBackend(lambda: client, location=str(client.startup_nodes))
            else:
                self.backend = RedisBackend(client)
        self.namespace = namespace
        self.titles = title_feature_cache(self.backend, namespace)

    @classmethod
    def from_url(cls, url: str, *, socket_timeout: float = 0.5, namespace: str = DEFAULT_NAMESPACE) -> FeatureStore:
        """A store on its own Redis connection (other servers, tests against a closed port)."""
        client = redis.Redis.from_url(
            url, socket_timeout=socket_timeout, socket_connect_timeout=socket_timeout, retry=None
        )
        return cls(client, namespace=namespace)

    # --- reads ----------------------------------------------------------------------------------
    def get_online_features(
        self, entity_type: str, entity_id: int, feature_names: Iterable[str] | None = None
    ) -> FeatureRow:
        """One entity's features (all of them when `feature_names` is None)."""
        return self.get_many(entity_type, [entity_id]).row(0, feature_names)

    def get_many(self, entity_type: str, entity_ids: Iterable[int]) -> FeatureBatch:
        """Many entities of one type with one MGET."""
        ids = _ids(entity_ids)
        payloads, unavailable = self._read(feature_keys(entity_type, ids, namespace=self.namespace))
        return _batch(feature_set(entity_type), ids, payloads, unavailable)

    def get_request_features(self, profile_id: int, title_ids: Iterable[int]) -> RequestFeatures:
        """One profile (one command, one node) plus its candidate titles from process memory; without a fresh
        title matrix, the titles' keys in the same round trip (one MGET on one Redis)."""
        ids = _ids(title_ids)
        keys = [feature_key(USER, profile_id, namespace=self.namespace)]
        matrix = self.titles.current(self.backend)
        # On a cluster the titles' keys live on another node: read apart, so that either node being down
        # degrades only its own half.
        together = matrix is None and not isinstance(self.backend, ClusterBackend)
        if together:
            keys += feature_keys(CONTENT, ids, namespace=self.namespace)
        payloads, unavailable = self._read(keys)
        user = _batch(feature_set(USER), np.array([profile_id], dtype=np.int64), payloads[:1], unavailable)
        if matrix is not None:
            content = matrix.batch(ids)
        elif together:
            content = _batch(feature_set(CONTENT), ids, payloads[1:], unavailable)
        else:
            title_payloads, titles_unavailable = self._read(feature_keys(CONTENT, ids, namespace=self.namespace))
            content = _batch(feature_set(CONTENT), ids, title_payloads, titles_unavailable)
        return RequestFeatures(user=user.row(0), content=content)

    def _read(self, keys: list[str]) -> tuple[list[bytes | None], bool]:
        try:
            return self.backend.get(keys), False
        except UNAVAILABLE as error:
            log.warning("feature store unavailable, serving defaults for %d keys: %s", len(keys), error)
            return [None] * len(keys), True

    def get_ranking(self, name: str) -> Ranking:
        """A ranked title list written by `set_ranking`; empty (and flagged if Redis is down) when absent."""
        (payload,), unavailable = self._read([ranking_key(name, namespace=self.namespace)])
        if not payload or len(payload) % 12:
            return Ranking(np.empty(0, np.int64), np.empty(0, np.float32), unavailable)
        n = len(payload) // 12
        ids = np.frombuffer(payload, dtype="<i8", count=n).astype(np.int64)
        scores = np.frombuffer(payload, dtype="<f4", offset=8 * n).astype(np.float32)
        return Ranking(ids, scores, unavailable)

    # --- writes ---------------------------------------------------------------------------------
    def publish_matrix(
        self, entity_type: str, entity_ids: Iterable[int], values: np.ndarray, *, computed_at: dt.datetime | None = None
    ) -> str:
        """Store every row as one payload under a new version, then announce that version; returns it.
        Serving processes load it within RECO_TITLE_FEATURES_CHECK_SECONDS (only content is read this way)."""
        ids = _ids(entity_ids)
        stamp = (computed_at or dt.datetime.now(dt.UTC)).timestamp()
        payload = codec.encode_matrix(feature_set(entity_type), ids, values, computed_at=stamp)
        version = f"{int(stamp)}-{uuid.uuid4().hex[:8]}"
        ttl = ttl_for(entity_type)
        self.backend.set([(matrix_key(entity_type, version, namespace=self.namespace), payload)], ttl)
        # Announced only once the matrix is complete, so no reader finds a version without its matrix.
        self.backend.set([(matrix_version_key(entity_type, namespace=self.namespace), version.encode())], ttl)
        return version

    def set_ranking(self, name: str, ids: np.ndarray, scores: np.ndarray, *, ttl_seconds: int) -> None:
        """Store a ranked title list (best first) under one key."""
        if len(ids) != len(scores):
            raise ValueError(f"{len(ids)} ids for {len(scores)} scores")
        payload = np.asarray(ids, dtype="<i8").tobytes() + np.asarray(scores, dtype="<f4").tobytes()
        self.backend.set([(ranking_key(name, namespace=self.namespace), payload)], ttl_seconds)

    def set_batch_features(
        self,
        entity_type: str,
        entity_id: int,
        features: Mapping[str, Any],
        ttl_seconds: int | None = None,
        *,
        computed_at: dt.datetime | None = None,
    ) -> None:
        """Store every feature of one entity; raises ValueError for missing or unknown names."""
        schema = feature_set(entity_type)
        missing, unknown = set(schema.names) - set(features), set(features) - set(schema.names)
        if missing or unknown:
            raise ValueError(
                f"{entity_type} features need exactly {', '.join(schema.names)}; "
                f"missing {sorted(missing)}, unknown {sorted(unknown)}"
            )
        row = np.empty(schema.width, dtype=np.float32)
        for feature in schema.features:
            value = np.asarray(features[feature.name], dtype=np.float32).reshape(-1)
            if value.shape != (feature.width,):
                raise ValueError(f"{entity_type}.{feature.name} needs {feature.width} values, got {value.size}")
            row[schema.slices[feature.name]] = value
        self.set_many(entity_type, [entity_id], row[None, :], ttl_seconds=ttl_seconds, computed_at=computed_at)

    def set_many(
        self,
        entity_type: str,
        entity_ids: Iterable[int],
        values: np.ndarray,
        *,
        ttl_seconds: int | None = None,
        computed_at: dt.datetime | None = None,
    ) -> int:
        """Store rows of `values` (n, width) in the schema's order for `entity_ids`; returns n."""
        schema = feature_set(entity_type)
        ids = _ids(entity_ids)
        if len(ids) != len(values):
            raise ValueError(f"{len(ids)} ids for {len(values)} rows of {entity_type} features")
        if not len(ids):
            return 0
        stamp = (computed_at or dt.datetime.now(dt.UTC)).timestamp()
        payloads = codec.encode_many(schema, values, computed_at=stamp)
        keys = feature_keys(entity_type, ids, namespace=self.namespace)
        self.backend.set(list(zip(keys, payloads, strict=True)), ttl_seconds or ttl_for(entity_type))
        return len(ids)


@dataclass(frozen=True)
class TitleMatrix:
    """One announced matrix in process memory: ids ascending, rows in the schema's column order."""

    version: str
    ids: np.ndarray  # (n,) int64 ascending
    values: np.ndarray  # (n, width) float32
    computed_at: float  # Unix seconds

    def batch(self, title_ids: np.ndarray) -> FeatureBatch:
        """The rows of `title_ids` (defaults, found False, for titles the refresh did not know)."""
        schema = feature_set(CONTENT)
        if not len(self.ids):
            values, found, computed_at = codec.decode_many(schema, [None] * len(title_ids))
            return FeatureBatch(CONTENT, title_ids, values, found, computed_at)
        positions = np.minimum(np.searchsorted(self.ids, title_ids), len(self.ids) - 1)
        found = self.ids[positions] == title_ids
        values = self.values[positions]
        if not found.all():
            values[~found] = schema.defaults
        computed_at = np.where(found, self.computed_at, np.nan)
        return FeatureBatch(CONTENT, title_ids, values, found, computed_at)


class TitleFeatureCache:
    """This process's copy of the newest announced title matrix (see the module docstring), a VersionedSnapshot.

    `current()` reads the announcement at most every RECO_TITLE_FEATURES_CHECK_SECONDS (one GET) and the matrix
    when it moved; one thread checks while the others keep serving the copy they have. A store that is down, an
    announcement that is gone or a matrix that is missing keep the copy serving until it is older than the
    content TTL, like the per-title keys would expire."""

    def __init__(self, namespace: str) -> None:
        self.namespace = namespace
        self._backend: Backend | None = None
        self._snapshot: VersionedSnapshot[str | None, TitleMatrix | None] = VersionedSnapshot(
            f"title features ({namespace})",
            read_version=self._announced,
            build=self._load,
            version_of=lambda matrix: None if matrix is None else matrix.version,
            check_seconds=lambda: getattr(settings, "RECO_TITLE_FEATURES_CHECK_SECONDS", 2.0),
            log=log,
        )

    @property
    def matrix(self) -> TitleMatrix | None:
        """The matrix this process holds, fresh or not (None before one loaded)."""
        return self._snapshot.peek()

    def current(self, backend: Backend) -> TitleMatrix | None:
        """The matrix while fresh, else None (the caller reads the per-title keys)."""
        self._backend = backend
        matrix = self._snapshot.get()
        if matrix is None or time.time() - matrix.computed_at > ttl_for(CONTENT):
            return None
        return matrix

    def expire_check(self) -> None:
        """Check at the next read (tests; a process that wants the newest at once)."""
        self._snapshot.expire()

    def reset(self) -> None:
        """Forget the matrix (tests): the next read checks the announcement."""
        self._snapshot.clear()

    def _announced(self) -> str | None:
        """The announced version; the held one while the announcement is unreadable or gone (nothing to do)."""
        held = self.matrix.version if self.matrix is not None else None
        try:
            assert self._backend is not None
            (announced,) = self._backend.get([matrix_version_key(CONTENT, namespace=self.namespace)])
        except (*UNAVAILABLE, redis.exceptions.ResponseError) as error:
            log.warning("title features: announcement unreadable, keeping version %s: %s", held, error)
            return held
        if announced is None:
            return held
        return announced.decode() if isinstance(announced, bytes) else str(announced)

    def _load(self, version: str | None, previous: TitleMatrix | None) -> TitleMatrix | None:
        """The announced matrix; the previous one when there is none to load or it cannot be read."""
        if version is None or (previous is not None and previous.version == version):
            return previous
        started = time.perf_counter()
        try:
            assert self._backend is not None
            payload = self._backend.get_bulk(matrix_key(CONTENT, version, namespace=self.namespace))
        except (*UNAVAILABLE, redis.exceptions.ResponseError) as error:
            log.warning("title features: matrix %s unreadable, keeping the one held: %s", version, error)
            return previous
        decoded = codec.decode_matrix(feature_set(CONTENT), payload) if payload else None
        if decoded is None:
            log.warning("title features: matrix %s missing or of another schema; reading per-title keys", version)
            return previous
        matrix = TitleMatrix(version, *decoded)
        log.info(
            "title features %s: %d titles loaded in %.1f ms",
            version,
            len(matrix.ids),
            (time.perf_counter() - started) * 1000,
        )
        return matrix


_title_caches: dict[tuple[str, str, str], TitleFeatureCache] = {}
_title_caches_lock = threading.Lock()


def title_feature_cache(backend: Backend, namespace: str) -> TitleFeatureCache:
    """The process's cache for one kind of store and namespace (every FeatureStore of them shares it)."""
    key = (backend.name, backend.location, namespace)
    with _title_caches_lock:
        return _title_caches.setdefault(key, TitleFeatureCache(namespace))


def title_feature_caches_reset() -> None:
    """Forget every title matrix this process holds (tests; the next read checks the announcement)."""
    with _title_caches_lock:
        caches = list(_title_caches.values())
    for title_cache in caches:  # in place: every FeatureStore keeps a reference to its cache
        title_cache.reset()


def _bulk_get(
    host: str, port: int, key: str, *, db: int = 0, username: str | None = None, password: str | None = None
) -> bytes | None:
    with redis.Redis(
        host=host,
        port=port,
        db=db,
        username=username,
        password=password,
        retry=None,
        socket_timeout=BULK_READ_TIMEOUT_SECONDS,
        socket_connect_timeout=BULK_READ_TIMEOUT_SECONDS,
    ) as client:
        return client.get(key)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def ttl_for(entity_type: str) -> int:
    """The TTL of `entity_type` from settings.FEATURE_TTL_SECONDS (user 3600 s, content 300 s)."""
    ttls = getattr(settings, "FEATURE_TTL_SECONDS", DEFAULT_TTL_SECONDS)
    return int(ttls.get(entity_type, DEFAULT_TTL_SECONDS[entity_type]))


def _ids(entity_ids: Iterable[int]) -> np.ndarray:
    if isinstance(entity_ids, np.ndarray):
        return entity_ids.astype(np.int64, copy=False)
    return np.fromiter(entity_ids, dtype=np.int64)


def _batch(schema: FeatureSet, ids: np.ndarray, payloads: Sequence[bytes | None], unavailable: bool) -> FeatureBatch:
    values, found, computed_at = codec.decode_many(schema, payloads)
    return FeatureBatch(schema.entity_type, ids, values, found, computed_at, store_unavailable=unavailable)


_CASTS = {"float32": float, "int32": int, "bool": bool}


def _row(
    schema: FeatureSet,
    entity_id: int,
    vector: np.ndarray,
    *,
    found: bool,
    computed_at: float,
    feature_names: Iterable[str] | None,
    store_unavailable: bool,
) -> FeatureRow:
    names = list(schema.names if feature_names is None else feature_names)
    values: dict[str, Any] = {}
    for name in names:
        feature = schema.feature(name)
        block = vector[schema.slices[name]]
        values[name] = _CASTS[feature.dtype](block[0]) if feature.width == 1 else block.astype(feature.dtype)
    return FeatureRow(
        entity_type=schema.entity_type,
        entity_id=entity_id,
        values=values,
        defaulted=frozenset() if found else frozenset(names),
        computed_at=dt.datetime.fromtimestamp(computed_at, dt.UTC) if found else None,
        store_unavailable=store_unavailable,
    )
