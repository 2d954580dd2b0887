"""The database itself rejects impossible catalog and viewing data, and the model helpers read it right."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from django.db import IntegrityError, transaction

from catalog.models import ALL_TIERS_MASK, Country, MaturityRating, SubscriptionTier, Title
from tests.factories.catalog import TitleFactory
from tests.factories.users import ProfileFactory, ViewingEventFactory

pytestmark = pytest.mark.django_db


def assert_rejected(create: Callable[[], Any]) -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        create()


def test_profile_slot_above_five_is_rejected(account):
    assert_rejected(lambda: ProfileFactory(account=account, slot=6))


def test_profile_slot_zero_is_rejected(account):
    assert_rejected(lambda: ProfileFactory(account=account, slot=0))


def test_two_profiles_in_the_same_slot_are_rejected(profile):
    assert_rejected(lambda: ProfileFactory(account=profile.account, slot=profile.slot))


def test_kids_profile_with_adult_maturity_cap_is_rejected(account):
    assert_rejected(lambda: ProfileFactory(account=account, is_kids=True, maturity_cap=MaturityRating.AGE_18))


def test_kids_profile_with_a_kids_maturity_cap_is_accepted(account):
    assert ProfileFactory(account=account, is_kids=True, maturity_cap=MaturityRating.AGE_7).pk


def test_watch_percentage_above_one_is_rejected(profile, title):
    assert_rejected(lambda: ViewingEventFactory(profile=profile, title=title, watch_percentage=1.5))


def test_last_watched_before_started_is_rejected(profile, title):
    started = dt.datetime(2025, 1, 1, 20, tzinfo=dt.UTC)
    assert_rejected(
        lambda: ViewingEventFactory(
            profile=profile, title=title, started_at=started, last_watched_at=started - dt.timedelta(minutes=1)
        )
    )


def test_duplicate_viewing_start_is_rejected(profile, title):
    event = ViewingEventFactory(profile=profile, title=title)
    assert_rejected(lambda: ViewingEventFactory(profile=profile, title=title, started_at=event.started_at))


def test_movie_with_several_episodes_is_rejected():
    assert_rejected(lambda: TitleFactory(kind=Title.Kind.MOVIE, episode_count=3))


def test_series_with_several_episodes_is_accepted():
    assert TitleFactory(kind=Title.Kind.SERIES, episode_count=3).pk


@pytest.mark.parametrize("mask", [0, ALL_TIERS_MASK + 1])
def test_tier_mask_outside_the_known_tiers_is_rejected(mask):
    assert_rejected(lambda: TitleFactory(available_tiers=mask))


@pytest.mark.parametrize("code", ["us", "U", "U1"])
def test_country_code_that_is_not_two_upper_case_letters_is_rejected(code):
    assert_rejected(lambda: Country.objects.create(code=code, name="Nowhere"))


def test_title_tiers_reads_the_mask():
    title = TitleFactory.build(
        available_tiers=SubscriptionTier.bit(SubscriptionTier.BASIC) | SubscriptionTier.bit(SubscriptionTier.PREMIUM)
    )

    assert title.tiers == [SubscriptionTier.BASIC, SubscriptionTier.PREMIUM]
    assert title.is_available_to_tier(SubscriptionTier.BASIC)
    assert not title.is_available_to_tier(SubscriptionTier.STANDARD)
    assert title.is_available_to_tier(SubscriptionTier.PREMIUM)


def test_title_with_every_tier_is_available_to_each():
    title = TitleFactory.build(available_tiers=ALL_TIERS_MASK)

    assert title.tiers == list(SubscriptionTier.values)
    assert all(title.is_available_to_tier(tier) for tier in SubscriptionTier.values)


@pytest.mark.parametrize(
    ("cap", "rating", "allowed"),
    [
        (MaturityRating.AGE_13, MaturityRating.ALL, True),
        (MaturityRating.AGE_13, MaturityRating.AGE_13, True),
        (MaturityRating.AGE_13, MaturityRating.AGE_16, False),
        (MaturityRating.AGE_7, MaturityRating.AGE_13, False),
        (MaturityRating.AGE_18, MaturityRating.AGE_18, True),
    ],
)
def test_profile_may_watch_titles_up_to_its_maturity_cap(cap, rating, allowed):
    profile = ProfileFactory.build(maturity_cap=cap)
    title = TitleFactory.build(maturity_rating=rating)

    assert profile.may_watch(title) is allowed
