"""Factories for the users app."""

from __future__ import annotations

import datetime as dt

import factory
from django.utils import timezone

from catalog.models import MaturityRating, SubscriptionTier
from tests.factories.catalog import TitleFactory
from users.models import Account, DeviceType, Profile, ViewingEvent


class AccountFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Account

    external_id = factory.Sequence(lambda n: f"test-account:{n}")
    country = "US"
    subscription_tier = SubscriptionTier.STANDARD
    created_at = factory.LazyFunction(lambda: timezone.now() - dt.timedelta(days=365))


class ProfileFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Profile

    account = factory.SubFactory(AccountFactory)
    slot = 1
    name = factory.Faker("first_name")
    is_kids = False
    maturity_cap = MaturityRating.AGE_18
    created_at = factory.LazyAttribute(lambda o: o.account.created_at)


class ViewingEventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ViewingEvent

    profile = factory.SubFactory(ProfileFactory)
    title = factory.SubFactory(TitleFactory)
    started_at = factory.LazyFunction(lambda: timezone.now() - dt.timedelta(days=1))
    watch_percentage = 0.5
    watch_seconds = factory.LazyAttribute(lambda o: int(o.watch_percentage * o.title.duration_minutes * 60))
    last_watched_at = factory.LazyAttribute(lambda o: o.started_at + dt.timedelta(seconds=o.watch_seconds))
    device_type = DeviceType.TV
    completed = factory.LazyAttribute(lambda o: o.watch_percentage >= 0.9)
