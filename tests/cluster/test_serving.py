"""The request path on the cluster, end to end: features refreshed onto it, a full answer cached in it, the
rules version announced through it; and a profile whose master is gone answers flagged, not failed."""

from __future__ import annotations

import uuid

import numpy as np

from features.keys import feature_key
from features.services import content_features_refresh, user_features_refresh
from features.store import FeatureStore
from ranking.rules_cache import RULES_VERSION_KEY, rules_version, rules_version_publish
from recommendations.serving.engine import RecommendationEngine
from tests.conftest import SERVING_NOW
from users.models import Profile, ViewingEvent

FAULTS = {"feature_store_unavailable", "user_features_missing", "content_features_missing", "cache_unavailable"}


def test_recommendations_on_the_cluster_are_full_and_cached(serving_world, on_cluster, settings):
    from django.core.cache import cache

    settings.RECO_RESPONSE_CACHE_SECONDS = 600
    store = FeatureStore(namespace=f"fs-serve-{uuid.uuid4().hex[:8]}")
    assert store.backend.name == "redis-cluster"
    content_features_refresh(as_of=SERVING_NOW, store=store)
    ids = np.array(Profile.objects.order_by("id").values_list("id", flat=True))
    user_features_refresh(profile_id_start=int(ids[0]), profile_id_end=int(ids[-1]) + 1, as_of=SERVING_NOW, store=store)
    engine = RecommendationEngine(store=store, use_cache=True)
    profile_id = ViewingEvent.objects.order_by("-profile_id").values_list("profile_id", flat=True)[0]

    first = engine.recommend(profile_id, n=10)
    assert len(first.items) == 10 and not FAULTS & set(first.degraded), first.degraded
    assert store.titles.matrix is not None  # the candidates' features came from process memory
    second = engine.recommend(profile_id, n=10)
    assert second.cached and [i.content_id for i in second.items] == [i.content_id for i in first.items]

    cache.delete(RULES_VERSION_KEY)
    published = rules_version_publish()
    assert cache.get(RULES_VERSION_KEY) == published == rules_version()

    # The master of the profile's slot hung for one request: the answer comes, flagged (no 500, no hang).
    victim = on_cluster.node_for_key(feature_key("user", profile_id, namespace=store.namespace))
    on_cluster.freeze(victim)
    try:
        degraded = engine.recommend(profile_id, n=10, explain=True)  # explain: past the response cache
    finally:
        on_cluster.thaw(victim)
    assert len(degraded.items) == 10 and "feature_store_unavailable" in degraded.degraded
    on_cluster.wait_ok(seconds=15)
