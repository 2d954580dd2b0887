"""Accounts, their profiles, and what each profile watched."""

from __future__ import annotations

import datetime as dt

from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Upper

from catalog.models import MaturityRating, SubscriptionTier, Title

MAX_PROFILES_PER_ACCOUNT = 5
IN_PROGRESS_MIN = 0.1
IN_PROGRESS_MAX = 0.9
# A viewing last watched more than this after it started: rare, and indexed apart on PostgreSQL (users 0005), so
# reads by last_watched_at can bound started_at and skip the older months of the partitioned history.
LONG_VIEWING = dt.timedelta(days=1)
LONG_VIEWING_SQL = "(last_watched_at - started_at) > interval '1 day'"


class Account(models.Model):
    external_id = models.CharField(max_length=64, unique=True)
    country = models.CharField(max_length=2, help_text="ISO 3166-1 alpha-2 country of the subscription.")
    subscription_tier = models.PositiveSmallIntegerField(
        choices=SubscriptionTier.choices, default=SubscriptionTier.STANDARD
    )
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["country", "subscription_tier"], name="account_country_tier_idx")]
        constraints = [
            models.CheckConstraint(condition=Q(country__regex=r"^[A-Z]{2}$"), name="account_country_iso_alpha2"),
            models.CheckConstraint(
                condition=Q(subscription_tier__in=SubscriptionTier.values), name="account_tier_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"Account {self.external_id} ({self.country}, {self.get_subscription_tier_display()})"


class Profile(models.Model):
    """One viewer inside an account; `slot` 1..5 lets the database itself cap an account at 5 profiles."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="profiles")
    slot = models.PositiveSmallIntegerField(help_text="Position 1–5 within the account.")
    name = models.CharField(max_length=50)
    is_kids = models.BooleanField(default=False)
    maturity_cap = models.PositiveSmallIntegerField(choices=MaturityRating.choices, default=MaturityRating.AGE_18)
    onboarding_genres = models.ManyToManyField(
        "catalog.Genre", blank=True, related_name="+", help_text="Genres picked at sign-up (cold start)."
    )
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["account_id", "slot"]
        # Staff pages show viewing history and account details (account, country, tier) only with it.
        permissions = [("view_profile_details", "View profile viewing history and account details")]
        # The staff homepage preview finds profiles by name in any case, index-backed at 1M profiles.
        indexes = [models.Index(Upper("name"), F("id"), name="profile_name_upper_idx")]
        constraints = [
            models.UniqueConstraint(fields=["account", "slot"], name="profile_unique_slot"),
            models.CheckConstraint(
                condition=Q(slot__gte=1) & Q(slot__lte=MAX_PROFILES_PER_ACCOUNT), name="profile_slot_1_to_5"
            ),
            models.CheckConstraint(
                condition=Q(is_kids=False) | Q(maturity_cap__lte=MaturityRating.AGE_7),
                name="profile_kids_maturity_cap",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} (profile {self.pk})"

    def may_watch(self, title: Title) -> bool:
        return title.maturity_rating <= self.maturity_cap


class DeviceType(models.IntegerChoices):
    TV = 1, "TV"
    MOBILE = 2, "Mobile"
    TABLET = 3, "Tablet"
    WEB = 4, "Web browser"
    CONSOLE = 5, "Game console"


class ViewingEvent(models.Model):
    """One viewing of a title by a profile: when it started, how far it got, on what."""

    # Both foreign keys are covered by the composite indexes below; Django's own FK indexes would only
    # slow the 50M-row bulk load.
    profile = models.ForeignKey(Profile, on_delete=models.CASCADE, related_name="viewing_events", db_index=False)
    title = models.ForeignKey(Title, on_delete=models.CASCADE, related_name="viewing_events", db_index=False)
    started_at = models.DateTimeField()
    last_watched_at = models.DateTimeField()
    watch_seconds = models.PositiveIntegerField()
    watch_percentage = models.FloatField(help_text="0..1 of the runtime watched.")
    device_type = models.PositiveSmallIntegerField(choices=DeviceType.choices, default=DeviceType.TV)
    completed = models.BooleanField(default=False)

    class Meta:
        ordering = ["-last_watched_at"]
        constraints = [
            models.UniqueConstraint(fields=["profile", "title", "started_at"], name="viewing_unique_start"),
            models.CheckConstraint(
                condition=Q(watch_percentage__gte=0) & Q(watch_percentage__lte=1), name="viewing_percentage_0_1"
            ),
            models.CheckConstraint(condition=Q(last_watched_at__gte=F("started_at")), name="viewing_times_ordered"),
            models.CheckConstraint(condition=Q(device_type__in=DeviceType.values), name="viewing_device_valid"),
        ]
        indexes = [
            # A profile's history, newest first.
            models.Index(fields=["profile", "-last_watched_at"], name="viewing_profile_recent_idx"),
            # A profile's in-progress titles (continue watching), newest first: a small partial index.
            models.Index(
                fields=["profile", "-last_watched_at"],
                name="viewing_in_progress_idx",
                condition=Q(watch_percentage__gte=IN_PROGRESS_MIN) & Q(watch_percentage__lte=IN_PROGRESS_MAX),
            ),
            # A title's views in a time window (trending, popularity).
            models.Index(fields=["title", "started_at"], name="viewing_title_started_idx"),
        ]

    def __str__(self) -> str:
        return f"profile {self.profile_id} watched title {self.title_id} ({self.watch_percentage:.0%})"
