"""Batch feature refresh and request-time reads: set-based reads, vectorised compute, pipelined writes.

User features: viewing history in chunks of USER_CHUNK_PROFILES profiles (one packed-column query per
chunk on the (profile_id, last_watched_at) index), computed by features.ml.compute, written in pipelines.
Content features: daily per-title rollups plus today's viewings (features.rollups; one SQL GROUP BY title_id
with FILTER windows over the whole history for a past as_of), written per title and as one matrix under a new
announced version, which every serving process loads into memory.
A sentinel key without a TTL marks a Redis store as populated: when Redis comes back empty it is gone,
and the frequent `ensure_online_features` job claims it and enqueues one full refresh (issue #14).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
from django.db import connection
from django.utils import timezone

from features import rollups, selectors, snapshots
from features.ml import compute
from features.ml.compute import FeatureMatrix
from features.ml.definitions import CONTENT, USER, feature_set
from features.store import FeatureBatch, FeatureRow, FeatureStore, RedisBackend, ttl_for

TRENDING = "trending"
TRENDING_SIZE = 1_000  # titles kept in the trending list, best first by time-decayed views
USER_CHUNK_PROFILES = 50_000  # ~2.5M viewings at 50 per profile: 0.7 GB peak (measured)
# `fs:populated:keys-v2`: no TTL, so only a Redis that lost its data lacks it. keys-v2: the hash-tagged key layout
# (features/keys.py), so a Redis holding only the old layout's keys is rebuilt once.
POPULATED_SENTINEL = "populated:keys-v2"


@dataclass(frozen=True)
class CandidateFeatures:
    """Everything the ranker needs for one profile and its candidates, from one store round trip."""

    user: FeatureRow
    content: FeatureBatch
    interactions: np.ndarray  # (n, INTERACTION_FEATURES.width) float32, rows align with content.ids
    store_unavailable: bool


def user_features_shards(*, shard_size: int) -> list[tuple[int, int]]:
    """[start, end) profile-id ranges of `shard_size` ids covering every profile."""
    if shard_size < 1:
        raise ValueError("shard_size must be positive")
    bounds = selectors.profile_id_bounds()
    if bounds is None:
        return []
    low, high = bounds
    return [(start, min(start + shard_size, high + 1)) for start in range(low, high + 1, shard_size)]


def user_features_refresh(
    *, profile_id_start: int, profile_id_end: int, as_of: dt.datetime | None = None, store: FeatureStore | None = None
) -> int:
    """Recompute and store the features of the profiles with ids in [start, end); returns rows written."""
    store = store or FeatureStore()
    written = 0
    for matrix in _user_chunks(profile_id_start, profile_id_end, as_of or timezone.now()):
        written += store.set_many(USER, matrix.ids, matrix.values)
    return written


def user_features_refresh_recent(
    *,
    since: dt.datetime,
    as_of: dt.datetime | None = None,
    profile_id_start: int = 0,
    profile_id_end: int = 2**63 - 1,
    store: FeatureStore | None = None,
) -> int:
    """Recompute the features of the profiles (optionally of one shard of ids) that watched something
    since `since`; returns rows written."""
    store = store or FeatureStore()
    as_of = as_of or timezone.now()
    active = selectors.profiles_active_since(since=since, start=profile_id_start, end=profile_id_end)
    if not len(active):
        return 0
    catalog = selectors.catalog_arrays()
    written = 0
    for start in range(0, len(active), USER_CHUNK_PROFILES):
        ids = active[start : start + USER_CHUNK_PROFILES]
        viewings = selectors.viewings_for_profiles(profile_ids=ids, as_of=as_of)
        matrix = compute.user_features(viewings, catalog, as_of=as_of, profile_ids=ids)
        written += store.set_many(USER, matrix.ids, matrix.values)
    return written


def content_features_refresh(
    *, as_of: dt.datetime | None = None, store: FeatureStore | None = None, timings: dict[str, float] | None = None
) -> int:
    """Recompute and store every title's features (per title, and as the announced in-process matrix) and the
    trending list; returns title rows written. Without `as_of` (now) on PostgreSQL from the daily title
    rollups, advanced first (features.rollups); an explicit `as_of` reads the whole history. `timings`, when
    given, receives each phase's seconds (bench/rollups.py)."""
    store = store or FeatureStore()
    clock = _PhaseClock(timings)
    if as_of is None and connection.vendor == "postgresql":
        as_of = timezone.now()
        rollups.title_rollups_advance(as_of=as_of)
        clock.lap("rollups_advance")
        aggregates = rollups.content_aggregates_rolled(as_of=as_of)
    else:
        aggregates = selectors.content_aggregates(as_of=as_of or timezone.now())
    clock.lap("aggregates")
    catalog = selectors.catalog_arrays()
    clock.lap("catalog")
    matrix = compute.content_features(aggregates, catalog)
    clock.lap("compute")
    computed_at = timezone.now()
    written = store.set_many(CONTENT, matrix.ids, matrix.values, computed_at=computed_at)
    clock.lap("title_keys")
    store.publish_matrix(CONTENT, matrix.ids, matrix.values, computed_at=computed_at)
    clock.lap("matrix")
    popularity = matrix.values[:, feature_set(CONTENT).slices["popularity_score"]].reshape(-1)
    top = np.argsort(-popularity, kind="stable")[:TRENDING_SIZE]
    top = top[popularity[top] > 0]
    store.set_ranking(TRENDING, matrix.ids[top], popularity[top], ttl_seconds=ttl_for(CONTENT))
    clock.lap("trending")
    return written


class _PhaseClock:
    """Seconds since the previous lap, into `timings` under each lap's name (nothing without `timings`)."""

    def __init__(self, timings: dict[str, float] | None) -> None:
        self.timings = timings
        self.last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        if self.timings is not None:
            self.timings[name] = round(now - self.last, 4)
        self.last = now


def online_store_rebuild_claim(*, store: FeatureStore | None = None) -> bool:
    """True exactly once after the online store came back empty (its sentinel missing), setting it: the
    caller then enqueues a full refresh. False while it is populated, and always for the embedded database
    store, which survives restarts. Redis errors propagate (a store that is down cannot be rebuilt yet)."""
    store = store or FeatureStore()
    if not isinstance(store.backend, RedisBackend):
        return False
    claimed = store.backend.client.set(sentinel_key(store), timezone.now().isoformat(), nx=True)
    return bool(claimed)


def online_store_rebuild_release(*, store: FeatureStore | None = None) -> None:
    """Undo a claim whose refresh could not be enqueued, so that the next check claims it again."""
    store = store or FeatureStore()
    if isinstance(store.backend, RedisBackend):
        store.backend.client.delete(sentinel_key(store))


def sentinel_key(store: FeatureStore) -> str:
    return f"{store.namespace}:{POPULATED_SENTINEL}"


def offline_snapshot_write(*, entity_type: str, as_of: dt.datetime, location: str | None = None) -> str:
    """Compute every entity's features as of `as_of` into a Parquet snapshot; returns its path."""
    feature_set(entity_type)
    if entity_type == USER:
        bounds = selectors.profile_id_bounds()
        chunks: Iterable[FeatureMatrix] = _user_chunks(bounds[0], bounds[1] + 1, as_of) if bounds else []
    else:
        chunks = [_content_matrix(as_of)]
    return snapshots.snapshot_write(entity_type=entity_type, as_of=as_of, chunks=chunks, location=location)


def candidate_features(
    *, profile_id: int, title_ids: Iterable[int], as_of: dt.datetime | None = None, store: FeatureStore | None = None
) -> CandidateFeatures:
    """User, content and interaction features for one profile and its candidate titles.

    One store round trip (MGET) plus one indexed history query for the candidates the profile watched.
    """
    ids = np.asarray(list(title_ids), dtype=np.int64)
    as_of = as_of or timezone.now()
    read = (store or FeatureStore()).get_request_features(profile_id, ids)
    interactions = compute.interaction_features(
        user_affinity=np.asarray(read.user.values["genre_affinity"]),
        title_ids=ids,
        title_genres=read.content.column("genre_indicator"),
        history=selectors.profile_title_history(profile_id=profile_id, title_ids=ids, as_of=as_of),
        as_of=as_of,
    )
    return CandidateFeatures(read.user, read.content, interactions, read.user.store_unavailable)


def _user_chunks(start: int, end: int, as_of: dt.datetime) -> Iterator[FeatureMatrix]:
    """Features of the profiles in [start, end), USER_CHUNK_PROFILES existing profiles at a time."""
    catalog = selectors.catalog_arrays()
    profile_ids = selectors.profile_ids_between(start=start, end=end)
    for first in range(0, len(profile_ids), USER_CHUNK_PROFILES):
        ids = profile_ids[first : first + USER_CHUNK_PROFILES]
        viewings = selectors.viewings_for_profile_range(start=int(ids[0]), end=int(ids[-1]) + 1, as_of=as_of)
        yield compute.user_features(viewings, catalog, as_of=as_of, profile_ids=ids)


def _content_matrix(as_of: dt.datetime) -> FeatureMatrix:
    return compute.content_features(selectors.content_aggregates(as_of=as_of), selectors.catalog_arrays())
