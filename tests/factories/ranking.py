"""Factories for the ranking app's business rules and their audit records."""

from __future__ import annotations

from decimal import Decimal

import factory

from catalog.models import SubscriptionTier
from ranking.models import Boost, KidsPolicy, RuleChange, Suppression, TargetKind, TierRule
from tests.factories.auth import UserFactory
from tests.factories.catalog import GenreFactory, TitleFactory


def set_countries(rule, create, extracted, **kwargs):
    """`countries=[...]` sets the M2M after creation."""
    if create and extracted:
        rule.countries.set(extracted)


class BoostFactory(factory.django.DjangoModelFactory):
    """A boost of all originals; `BoostFactory(genre=g)` or `(title=t)` targets one genre or title."""

    class Meta:
        model = Boost
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"Boost {n}")
    target_kind = factory.LazyAttribute(
        lambda o: TargetKind.GENRE if o.genre else TargetKind.TITLE if o.title else TargetKind.ORIGINALS
    )
    genre = None
    title = None
    multiplier = Decimal("2.00")
    priority = 0
    is_active = True
    countries = factory.PostGeneration(set_countries)


class TierRuleFactory(factory.django.DjangoModelFactory):
    """Premium only, for one genre by default."""

    class Meta:
        model = TierRule

    target_kind = factory.LazyAttribute(lambda o: TargetKind.TITLE if o.title else TargetKind.GENRE)
    title = None
    genre = factory.LazyAttribute(lambda o: None if o.title else GenreFactory())
    allowed_tiers = SubscriptionTier.bit(SubscriptionTier.PREMIUM)


class SuppressionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Suppression
        skip_postgeneration_save = True

    title = factory.SubFactory(TitleFactory)
    reason = "Licence under review"
    countries = factory.PostGeneration(set_countries)


class KidsPolicyFactory(factory.django.DjangoModelFactory):
    """The single row (migration 0002 creates it): fetched and updated, never duplicated."""

    class Meta:
        model = KidsPolicy

    id = factory.LazyFunction(lambda: KidsPolicy.objects.order_by("pk").values_list("pk", flat=True).first() or 1)
    maturity_cap = 7

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        policy, _ = model_class.objects.update_or_create(id=kwargs.pop("id"), defaults=kwargs)
        return policy


class RuleChangeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = RuleChange

    user = factory.SubFactory(UserFactory, is_staff=True)
    username = factory.LazyAttribute(lambda o: o.user.username if o.user else "")
    action = RuleChange.Action.CREATE
    rule_model = RuleChange.RuleModel.BOOST
    object_id = factory.Sequence(lambda n: n + 1)
    object_repr = factory.LazyAttribute(lambda o: f"Boost {o.object_id}")
    changes = factory.LazyFunction(lambda: {"multiplier": {"before": None, "after": "2.00"}})
