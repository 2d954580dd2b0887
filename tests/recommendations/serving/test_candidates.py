"""Candidate generation on real services: five sources, quotas, entitlements, cold start, new titles."""

from __future__ import annotations

import datetime as dt
import gc
import socket
import uuid

import numpy as np
import pytest

from catalog.models import ALL_TIERS_MASK, MaturityRating, SubscriptionTier, Title
from features.services import content_features_refresh
from features.store import FeatureStore
from recommendations.ml import sources
from recommendations.models import ModelKind
from recommendations.registry import registry
from recommendations.serving.candidate_inputs import candidates_generate
from recommendations.serving.catalog_cache import catalog_cache
from recommendations.serving.context import profile_state_load
from recommendations.serving.state import serving_state
from tests.conftest import SERVING_NOW as NOW
from tests.factories.catalog import CountryFactory, TitleFactory
from tests.factories.users import AccountFactory, ProfileFactory, ViewingEventFactory
from users.models import Profile, ViewingEvent


@pytest.fixture
def world(serving_world):
    return serving_world


def _store():
    return FeatureStore(namespace=f"fs-test-{uuid.uuid4().hex[:12]}")


def generate(profile_id, *, store=None, now=NOW):
    models = serving_state.models()
    trending = serving_state.trending(models, store or _store())
    return candidates_generate(profile_state_load(profile_id=profile_id), models, trending, now=now)


def _busiest_profile():
    counts = ViewingEvent.objects.values("profile_id").order_by("-profile_id")
    return Profile.objects.get(pk=counts.first()["profile_id"])


def test_a_profile_with_history_gets_about_500_unique_allowed_unseen_candidates(world):
    profile = _busiest_profile()
    store = _store()
    content_features_refresh(as_of=NOW, store=store)  # writes the trending list
    result = generate(profile.pk, store=store)

    ids = result.content_ids
    state = profile_state_load(profile_id=profile.pk)
    allowed = catalog_cache.current().allowed(tier=state.tier, country=state.country, maturity_cap=state.maturity_cap)
    unseen_allowed = int(allowed.sum()) - len(set(state.history_title_ids.tolist()))
    assert len(np.unique(ids)) == len(ids) and 0.9 * min(500, unseen_allowed) <= len(ids) <= 500
    watched = set(
        ViewingEvent.objects.filter(profile=profile, watch_percentage__gt=0.9).values_list("title_id", flat=True)
    )
    assert not watched & set(ids.tolist())
    account = profile.account
    titles = Title.objects.filter(pk__in=ids.tolist())
    assert all(t.available_tiers & SubscriptionTier.bit(account.subscription_tier) for t in titles)
    assert all(t.maturity_rating <= profile.maturity_cap for t in titles)
    merged = result.merged
    for name in (sources.COLLABORATIVE, sources.TRENDING, sources.SIMILAR_TO_WATCHED):
        assert name in merged.sources and merged.proposed[:, merged.sources.index(name)].any()
    assert np.array_equal(~np.isnan(merged.scores), merged.proposed)  # a score exactly where a source proposed
    collaborative = merged.proposed[:, merged.sources.index(sources.COLLABORATIVE)]
    assert collaborative.sum() >= 200  # its full quota, more through backfill
    assert not result.cold_start and not result.degraded


def test_kids_profiles_and_tiers_never_get_titles_above_their_entitlements(world):
    kids = ProfileFactory(
        account=AccountFactory(subscription_tier=SubscriptionTier.BASIC),
        slot=2,
        is_kids=True,
        maturity_cap=MaturityRating.AGE_7,
    )
    some_titles = list(Title.objects.order_by("id")[:20])
    for title in some_titles:
        ViewingEventFactory(profile=kids, title=title, started_at=NOW - dt.timedelta(days=2))
    result = generate(kids.pk)

    titles = Title.objects.filter(pk__in=result.content_ids.tolist())
    assert len(titles) > 0
    assert all(t.maturity_rating <= MaturityRating.AGE_7 for t in titles)
    assert all(t.available_tiers & SubscriptionTier.bit(SubscriptionTier.BASIC) for t in titles)


def test_country_restricted_titles_only_reach_that_country(world):
    japan, brazil = CountryFactory(code="JP"), CountryFactory(code="BR")
    popular = Title.objects.order_by("id")[:60]
    for title in popular:
        title.available_countries.set([japan])
    viewer = ProfileFactory(account=AccountFactory(country="BR"))
    result = generate(viewer.pk)
    assert not set(result.content_ids.tolist()) & {t.pk for t in popular}
    assert brazil.code == "BR"


def test_a_cold_profile_gets_popular_titles_in_its_onboarding_genres(world):
    genre = Title.objects.filter(genres__isnull=False).first().genres.first()
    newcomer = ProfileFactory(account=AccountFactory())
    newcomer.onboarding_genres.set([genre])
    result = generate(newcomer.pk)

    assert result.cold_start
    column = result.merged.sources.index(sources.POPULAR_IN_GENRES)
    picked = result.content_ids[result.merged.proposed[:, column]]
    assert len(picked) > 0
    assert set(Title.objects.filter(pk__in=picked.tolist(), genres=genre).values_list("pk", flat=True)) == set(picked)
    assert sources.COLLABORATIVE not in result.merged.sources


def test_continue_watching_lists_half_watched_titles_newest_first(world):
    profile = ProfileFactory(account=AccountFactory())
    first, second, done = TitleFactory(), TitleFactory(), TitleFactory()
    ViewingEventFactory(profile=profile, title=first, watch_percentage=0.4, started_at=NOW - dt.timedelta(days=3))
    ViewingEventFactory(profile=profile, title=second, watch_percentage=0.5, started_at=NOW - dt.timedelta(days=1))
    ViewingEventFactory(profile=profile, title=done, watch_percentage=1.0, started_at=NOW - dt.timedelta(hours=5))
    result = generate(profile.pk)

    column = result.merged.sources.index(sources.CONTINUE_WATCHING)
    order = np.argsort(-np.nan_to_num(result.merged.scores[:, column], nan=-1))[:2]
    assert result.content_ids[order].tolist() == [second.pk, first.pk]
    assert done.pk not in result.content_ids


def test_a_new_title_without_views_is_reachable_by_new_releases_and_similarity(world):
    profile = _busiest_profile()
    watched = Title.objects.filter(viewing_events__profile=profile).order_by("-viewing_events__last_watched_at").first()
    newcomer = TitleFactory(date_added=NOW.date() - dt.timedelta(days=1), maturity_rating=MaturityRating.ALL)
    newcomer.genres.set(watched.genres.all())
    result = generate(profile.pk)

    assert newcomer.pk in result.content_ids
    row = int(np.flatnonzero(result.content_ids == newcomer.pk)[0])
    assert result.merged.proposed[row, result.merged.sources.index(sources.NEW_RELEASES)]


def test_a_profile_the_model_never_saw_is_folded_in(world):
    profile = ProfileFactory(account=AccountFactory())
    assert registry.get(ModelKind.MATRIX_FACTORIZATION).model.user_map.to_index([profile.pk], strict=False)[0] < 0
    for title in Title.objects.order_by("id")[:15]:
        ViewingEventFactory(profile=profile, title=title, watch_percentage=1.0, started_at=NOW - dt.timedelta(days=4))
    result = generate(profile.pk)
    assert not result.cold_start
    assert result.merged.proposed[:, result.merged.sources.index(sources.COLLABORATIVE)].sum() >= 200


def test_an_unreachable_feature_store_falls_back_to_popularity_flagged(world):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    down = FeatureStore.from_url(f"redis://127.0.0.1:{port}/0", socket_timeout=0.2)
    result = generate(_busiest_profile().pk, store=down)
    assert "trending_from_popularity" in result.degraded
    assert result.merged.proposed[:, result.merged.sources.index(sources.TRENDING)].sum() >= 100


def test_a_trending_list_of_another_catalog_falls_back_to_popularity_flagged(world):
    store = FeatureStore(namespace=f"fs-test-{uuid.uuid4().hex[:12]}")
    unknown = np.arange(10**9, 10**9 + 50, dtype=np.int64)  # none of them in this catalog
    store.set_ranking("trending", unknown, np.linspace(1, 0, 50, dtype=np.float32), ttl_seconds=60)
    serving_state.clear()
    result = generate(_busiest_profile().pk, store=store)
    assert "trending_from_popularity" in result.degraded
    assert result.merged.proposed[:, result.merged.sources.index(sources.TRENDING)].sum() >= 100


def test_a_catalog_edit_reaches_serving_without_restart(world):
    profile = _busiest_profile()
    banned = int(generate(profile.pk).content_ids[0])
    title = Title.objects.get(pk=banned)
    title.available_tiers = ALL_TIERS_MASK & ~SubscriptionTier.bit(profile.account.subscription_tier)
    title.save()  # an editor's save: the catalog version moves, every process rebuilds its arrays
    assert banned not in generate(profile.pk).content_ids


def test_a_serving_build_leaves_the_long_lived_objects_frozen_out_of_full_collections(world):
    gc.unfreeze()
    serving_state.clear()
    models = serving_state.models()
    assert gc.get_freeze_count() > 10_000  # Django, the models and the catalog, at least
    assert serving_state.models() is models  # no rebuild, no second collection
    gc.unfreeze()


def test_favourite_genres_are_the_most_watched_recent_genres_plus_onboarding():
    from recommendations.serving.candidate_inputs import _favourite_genres

    masks = np.array([0b0001, 0b0011, 0b0010, 0b0110, 0b1000], np.uint32)  # rows 0-4: genre slots 0-3
    history = np.array([1, 2, 3, 1])  # slot 1 four times, slot 0 twice, slot 2 once
    assert int(_favourite_genres(masks, 0, history)) == 0b0111
    assert int(_favourite_genres(masks, 0b1000, np.array([2]))) == 0b1010
    assert int(_favourite_genres(masks, 0, np.array([], np.int64))) == 0
