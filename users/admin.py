"""Django admin for accounts, profiles and viewing history, sized for 1M profiles and 50M events."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from catalog.models import Country
from config.admin import LargeTableAdmin
from staff import formatting
from users.forms import ProfileAdminForm
from users.models import MAX_PROFILES_PER_ACCOUNT, Account, Profile, ViewingEvent


class AccountCountryFilter(admin.SimpleListFilter):
    title = "country"
    parameter_name = "country"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        # The catalog's countries, not SELECT DISTINCT over every account.
        return list(Country.objects.values_list("code", "name"))

    def queryset(self, request: HttpRequest, queryset: QuerySet[Account]) -> QuerySet[Account]:
        return queryset if self.value() is None else queryset.filter(country=self.value())


class ProfileInline(admin.TabularInline):
    model = Profile
    form = ProfileAdminForm
    fields = ("slot", "name", "is_kids", "maturity_cap", "created_at")
    extra = 0
    max_num = MAX_PROFILES_PER_ACCOUNT
    show_change_link = True


@admin.register(Account)
class AccountAdmin(LargeTableAdmin):
    list_display = ("external_id", "country", "subscription_tier", "created_at")
    # `__exact` keeps the unique index usable; `=` would compare UPPER(external_id).
    search_fields = ("external_id__exact",)
    search_help_text = "Exact external id."
    list_filter = ("subscription_tier", AccountCountryFilter)
    inlines = (ProfileInline,)


@admin.register(Profile)
class ProfileAdmin(LargeTableAdmin):
    form = ProfileAdminForm
    list_display = ("name", "account", "slot", "is_kids", "maturity_cap", "viewing_history")
    list_select_related = ("account",)
    search_fields = ("account__external_id__exact",)
    search_help_text = "Exact external id of the account."
    list_filter = ("is_kids", "maturity_cap")
    raw_id_fields = ("account",)
    autocomplete_fields = ("onboarding_genres",)
    # Sorting 1M rows by an unindexed column is a full sort; the default (account, slot) is indexed.
    sortable_by = ()

    @admin.display(description="history")
    def viewing_history(self, profile: Profile) -> str:
        url = reverse("admin:users_viewingevent_changelist")
        return format_html('<a href="{}?profile__id__exact={}">Viewing events</a>', url, profile.pk)


@admin.register(ViewingEvent)
class ViewingEventAdmin(LargeTableAdmin):
    list_display = ("id", "profile", "title", "started_at", "watched", "device_type", "completed")
    list_select_related = ("profile", "title")
    list_filter = ("device_type", "completed")
    raw_id_fields = ("profile", "title")
    search_fields = ("profile__id",)  # Shows the search box; get_search_results does the lookup.
    search_help_text = "Exact profile id."
    # Newest rows by the primary key: the model's -last_watched_at has no index of its own.
    ordering = ("-pk",)
    sortable_by = ()

    @admin.display(description="watched")
    def watched(self, event: ViewingEvent) -> str:
        return formatting.percent(event.watch_percentage)

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[ViewingEvent], search_term: str
    ) -> tuple[QuerySet[ViewingEvent], bool]:
        # Django would compare CAST(profile_id AS text), a scan of every row; an id uses the index.
        term = search_term.strip()
        if not term:
            return queryset, False
        return (queryset.filter(profile_id=int(term)) if term.isdigit() else queryset.none()), False
