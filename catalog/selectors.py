"""Read queries on the catalog: which titles a tier or a country may see."""

from __future__ import annotations

from django.db.models import F, Q, QuerySet

from catalog.models import SubscriptionTier, Title


def titles_for_tier(*, titles: QuerySet[Title], tier: int) -> QuerySet[Title]:
    """The titles whose `available_tiers` mask includes `tier`."""
    bit = SubscriptionTier.bit(tier)
    return titles.alias(tier_bit=F("available_tiers").bitand(bit)).filter(tier_bit=bit)


def titles_available_in_country(*, titles: QuerySet[Title], country_code: str) -> QuerySet[Title]:
    """The titles listed for `country_code`, plus those listed for no country (worldwide)."""
    # Two IN subqueries, each hashed once; a join to the M2M would repeat titles and need DISTINCT.
    listings = Title.available_countries.through.objects.values("title_id")
    listed_here = listings.filter(country__code=country_code)
    return titles.filter(Q(pk__in=listed_here) | ~Q(pk__in=listings))
