"""The design's engine entry point: RecommendationEngine().recommend(user_id, context=UserContext(...), n=20)."""

from __future__ import annotations

import dataclasses
import uuid

import numpy as np
import pandas as pd
import pytest

from catalog.models import MaturityRating, SubscriptionTier, Title
from features.services import content_features_refresh
from features.store import FeatureStore
from recommendations.design_api import RecommendationEngine as DesignEngine
from recommendations.models import ModelKind, ModelVersion
from recommendations.serving.context import UserContext
from recommendations.serving.engine import (
    ProfileNotFound,
    RankedItem,
    RecommendationEngine,
    Recommendations,
    Row,
    Variant,
)
from tests.conftest import SERVING_NOW
from tests.factories.users import AccountFactory, ProfileFactory, ViewingEventFactory
from users.models import DeviceType, Profile, ViewingEvent


@pytest.fixture
def engine(serving_world):
    store = FeatureStore(namespace=f"fs-test-{uuid.uuid4().hex[:12]}")
    content_features_refresh(as_of=SERVING_NOW, store=store)
    return RecommendationEngine(store=store)


def _active_profile() -> Profile:
    return Profile.objects.get(pk=ViewingEvent.objects.order_by("-profile_id").values("profile_id")[0]["profile_id"])


def test_recommend_returns_n_ranked_items_with_titles_scores_and_reasons(engine):
    profile = _active_profile()
    context = UserContext(
        user_id=profile.account_id,
        profile_id=profile.pk,
        country=profile.account.country,
        device_type=DeviceType.TV,
        time_of_day=20,
        subscription_tier=profile.account.subscription_tier,
    )
    result = engine.recommend(profile.account_id, context=context, n=20)

    assert [item.rank for item in result.items] == list(range(1, 21))
    names = dict(Title.objects.filter(pk__in=[i.content_id for i in result.items]).values_list("pk", "name"))
    assert all(item.title == names[item.content_id] for item in result.items)
    assert all(item.reason for item in result.items) and all(item.sources for item in result.items)
    assert {"mf", "content", "popularity"} <= set(result.model_versions)
    assert len(result.request_id) == 32
    watched = set(
        ViewingEvent.objects.filter(profile=profile, watch_percentage__gte=0.9).values_list("title_id", flat=True)
    )
    assert not watched & {item.content_id for item in result.items}


def test_homepage_rows_never_repeat_a_title(engine):
    result = engine.recommend(context=UserContext(profile_id=_active_profile().pk))
    keys = [row.key for row in result.rows]
    assert "top_picks" in keys and len(keys) >= 3
    shown = [item.content_id for row in result.rows for item in row.items]
    assert len(shown) == len(set(shown))
    because = [row for row in result.rows if row.key.startswith("because_you_watched")]
    for row in because:
        assert row.title.startswith("Because You Watched ")
        assert all(item.reason.startswith("Because you watched") for item in row.items)


def test_a_kids_profile_on_basic_sees_only_basic_titles_rated_7_or_lower(engine):
    account = AccountFactory(subscription_tier=SubscriptionTier.BASIC)
    kids = ProfileFactory(account=account, slot=3, is_kids=True, maturity_cap=MaturityRating.AGE_7)
    for title in Title.objects.order_by("id")[:10]:
        ViewingEventFactory(profile=kids, title=title)
    context = UserContext(profile_id=kids.pk, subscription_tier=SubscriptionTier.PREMIUM)  # a claim, not trusted
    result = engine.recommend(context=context, n=30)
    titles = Title.objects.filter(
        pk__in=[i.content_id for r in result.rows for i in r.items] + [i.content_id for i in result.items]
    )
    assert titles.exists()
    assert all(t.maturity_rating <= MaturityRating.AGE_7 for t in titles)
    assert all(t.available_tiers & SubscriptionTier.bit(SubscriptionTier.BASIC) for t in titles)


def test_unknown_profile_or_a_profile_of_another_account_is_not_found(engine):
    with pytest.raises(ProfileNotFound):
        engine.recommend(context=UserContext(profile_id=10**12))
    profile = _active_profile()
    with pytest.raises(ProfileNotFound):
        engine.recommend(context=UserContext(user_id=profile.account_id + 10**9, profile_id=profile.pk))


def test_without_a_ranker_the_engine_ranks_by_sources_and_says_so(engine):
    result = engine.recommend(context=UserContext(profile_id=_active_profile().pk))
    assert "no_ranker" in result.degraded and len(result.items) == 20


def test_the_response_is_cached_until_the_profile_watches_something(engine):
    from features.services import user_features_refresh

    profile = _active_profile()
    # an answer without the profile's features is degraded, and those are never cached
    user_features_refresh(
        profile_id_start=profile.pk, profile_id_end=profile.pk + 1, as_of=SERVING_NOW, store=engine.store
    )
    first = engine.recommend(context=UserContext(profile_id=profile.pk))
    second = engine.recommend(context=UserContext(profile_id=profile.pk))
    assert not first.cached and second.cached
    assert second.items == first.items and second.rows == first.rows  # every field, rows included
    assert second.request_id != first.request_id

    ViewingEventFactory(profile=profile, title=Title.objects.get(pk=first.items[0].content_id), watch_percentage=1.0)
    third = engine.recommend(context=UserContext(profile_id=profile.pk))
    assert not third.cached and first.items[0].content_id not in [i.content_id for i in third.items]


def test_train_collaborative_filtering_goes_through_the_activation_gate(engine):
    trainer = DesignEngine(store=engine.store)  # the design's engine adds the training call to the serving one
    interactions = pd.DataFrame(
        list(ViewingEvent.objects.values_list("profile_id", "title_id", "watch_percentage")),
        columns=["user_id", "content_id", "rating"],
    )
    interactions["rating"] *= 5
    version = trainer.train_collaborative_filtering(interactions, params={"n_factors": 8, "n_epochs": 3})
    assert version.kind == ModelKind.MATRIX_FACTORIZATION and version.metrics["users"] >= 50
    assert "popularity_ndcg_at_10" in version.metrics  # measured against the baseline on the same split
    assert version.notes.startswith("activated") == (version.status == ModelVersion.Status.ACTIVE), version.notes
    tiny = trainer.train_collaborative_filtering(interactions.head(5))  # no validation to speak of
    assert tiny.status == ModelVersion.Status.CANDIDATE and "validation too small" in tiny.notes
    active = ModelVersion.objects.get(kind=ModelKind.MATRIX_FACTORIZATION, status=ModelVersion.Status.ACTIVE)
    result = engine.recommend(context=UserContext(profile_id=_active_profile().pk), n=5)
    assert result.model_versions["mf"] == active.version
    assert np.isfinite([i.score for i in result.items]).all()


def test_the_popularity_baseline_ranks_allowed_titles_by_popularity_for_everyone(engine):
    baseline = Variant(experiment="exp", arm="baseline", popularity_only=True)
    first = engine.recommend(context=UserContext(profile_id=_active_profile().pk), n=10, variant=baseline)
    assert (first.experiment, first.arm) == ("exp", "baseline")
    assert all(item.policy == "popularity" for item in first.items)
    scores = [item.score for item in first.items]
    assert scores == sorted(scores, reverse=True)


def test_explain_says_why_each_title_is_shown(engine):
    result = engine.recommend(context=UserContext(profile_id=_active_profile().pk), n=10, explain=True)
    assert not result.cached and result.explanations
    summary = result.explanations[-1]
    assert summary["candidates"] >= len(result.items)
    for item in result.items:
        why = result.explanations[item.content_id]
        assert set(why["sources"]) == set(item.sources) and why["final_score"] == pytest.approx(item.score, abs=1e-4)


def test_without_diversification_the_list_is_in_score_order(engine):
    plain = engine.recommend(
        context=UserContext(profile_id=_active_profile().pk), n=20, variant=Variant(diversify=False)
    )
    scores = [item.score for item in plain.items]
    assert scores == sorted(scores, reverse=True)


def test_experiment_assignment_comes_from_the_engines_hook(serving_world):
    engine = RecommendationEngine(variant_for=lambda profile_id: Variant(experiment="e1", arm=f"arm-{profile_id % 2}"))
    profile = _active_profile()
    result = engine.recommend(context=UserContext(profile_id=profile.pk), n=5)
    assert (result.experiment, result.arm) == ("e1", f"arm-{profile.pk % 2}")


def test_to_dict_matches_dataclasses_asdict():
    item = RankedItem(1, 42, "Title", 0.5, "Top pick for you", ("collaborative", "trending"), "ranker", 1.0)
    result = Recommendations(
        "r" * 32,
        7,
        [item],
        [Row("top_picks", "Top Picks", (item,))],
        {"mf": "v1"},
        "3",
        ["no_ranker"],
        {"profile": 1.5},
        explanations={42: {"features": [("a", 0.1)]}},
    )
    body = result.to_dict()
    assert body == dataclasses.asdict(result)
    body["items"][0]["rank"] = 9  # a copy: the result is untouched
    body["explanations"][42]["features"].append(("b", 0.2))
    assert result.items[0].rank == 1 and len(result.explanations[42]["features"]) == 1
