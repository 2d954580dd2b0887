"""Django admin for the catalog, sized for 100K titles and their credits."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import HttpRequest

from catalog.forms import TitleAdminForm
from catalog.models import Country, Credit, Genre, Person, SubscriptionTier, Title
from catalog.selectors import titles_available_in_country, titles_for_tier
from config.admin import LargeTableAdmin


class TierFilter(admin.SimpleListFilter):
    title = "tier"
    parameter_name = "tier"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[int, str]]:
        return list(SubscriptionTier.choices)

    def queryset(self, request: HttpRequest, queryset: QuerySet[Title]) -> QuerySet[Title]:
        if self.value() is None:
            return queryset
        if self.value() not in {str(tier) for tier in SubscriptionTier.values}:
            raise IncorrectLookupParameters(f"Unknown tier {self.value()!r}.")
        return titles_for_tier(titles=queryset, tier=int(self.value()))


class CountryFilter(admin.SimpleListFilter):
    title = "available in country"
    parameter_name = "country"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return list(Country.objects.values_list("code", "name"))

    def queryset(self, request: HttpRequest, queryset: QuerySet[Title]) -> QuerySet[Title]:
        if self.value() is None:
            return queryset
        return titles_available_in_country(titles=queryset, country_code=self.value())


class ExternalIdReadOnlyOnChange:
    """Loaders upsert by `external_id`, so it is set once on creation and never edited."""

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        return ("external_id",) if obj is not None else ()


@admin.register(Country)
class CountryAdmin(admin.ModelAdmin):
    list_display = ("code", "name")
    search_fields = ("=code", "name")


@admin.register(Genre)
class GenreAdmin(admin.ModelAdmin):
    list_display = ("name",)
    search_fields = ("name",)


@admin.register(Person)
class PersonAdmin(ExternalIdReadOnlyOnChange, LargeTableAdmin):
    list_display = ("name", "external_id")
    # `__exact` keeps the unique index usable; `=` would compare UPPER(external_id).
    search_fields = ("name", "external_id__exact")


class CreditInline(admin.TabularInline):
    model = Credit
    fields = ("person", "role", "billing_order")
    autocomplete_fields = ("person",)
    extra = 0

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("person")  # one query, not one per credit


@admin.register(Title)
class TitleAdmin(ExternalIdReadOnlyOnChange, LargeTableAdmin):
    form = TitleAdminForm
    list_display = ("name", "kind", "release_date", "maturity_rating", "tier_names", "is_original", "date_added")
    search_fields = ("name", "external_id__exact")
    list_filter = ("genres", "is_original", "kind", "maturity_rating", TierFilter, CountryFilter)
    fieldsets = (
        (None, {"fields": ("external_id", "name", "kind", "synopsis", "genres")}),
        ("Runtime and dates", {"fields": ("release_date", "date_added", "duration_minutes", "episode_count")}),
        ("Availability", {"fields": ("available_tiers", "available_countries", "maturity_rating")}),
        ("Flags", {"fields": ("is_original", "has_4k", "has_hdr")}),
    )
    autocomplete_fields = ("genres", "available_countries")
    inlines = (CreditInline,)
    paginator = Paginator  # 100K titles count quickly: editors keep exact page numbers

    @admin.display(description="tiers")
    def tier_names(self, title: Title) -> str:
        return ", ".join(SubscriptionTier(tier).label for tier in title.tiers)


@admin.register(Credit)
class CreditAdmin(LargeTableAdmin):
    list_display = ("title", "person", "role", "billing_order")
    list_select_related = ("title", "person")
    # One searched table: an OR across the title and person joins would defeat both indexes.
    search_fields = ("title__name",)
    list_filter = ("role",)
    autocomplete_fields = ("title", "person")
    # The model's ordering by title sorts on the joined title name; the column keeps to the index.
    ordering = ("title_id", "role", "billing_order")
