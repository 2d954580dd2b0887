"""The catalog: titles with their genres, credits, and tier and country availability."""

from __future__ import annotations

from django.db import models
from django.db.models import Q


class MaturityRating(models.IntegerChoices):
    """Ordered maturity levels; a profile's cap is compared with `<=`."""

    ALL = 0, "All ages"
    AGE_7 = 7, "7+"
    AGE_13 = 13, "13+"
    AGE_16 = 16, "16+"
    AGE_18 = 18, "18+"


class SubscriptionTier(models.IntegerChoices):
    BASIC = 1, "Basic"
    STANDARD = 2, "Standard"
    PREMIUM = 3, "Premium"

    @classmethod
    def bit(cls, tier: int) -> int:
        """The bit of `tier` in a Title's `available_tiers` mask."""
        return 1 << (int(tier) - 1)


ALL_TIERS_MASK = sum(SubscriptionTier.bit(t) for t in SubscriptionTier.values)


class Country(models.Model):
    code = models.CharField(max_length=2, unique=True, help_text="ISO 3166-1 alpha-2, upper case.")
    name = models.CharField(max_length=100)

    class Meta:
        ordering = ["code"]
        verbose_name_plural = "countries"
        constraints = [
            models.CheckConstraint(condition=Q(code__regex=r"^[A-Z]{2}$"), name="country_code_iso_alpha2"),
        ]

    def __str__(self) -> str:
        return f"{self.code} ({self.name})"


class Genre(models.Model):
    name = models.CharField(max_length=64, unique=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Person(models.Model):
    external_id = models.CharField(max_length=64, unique=True, help_text="Stable id from the source.")
    name = models.CharField(max_length=200, db_index=True)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "people"

    def __str__(self) -> str:
        return self.name


class Title(models.Model):
    class Kind(models.TextChoices):
        MOVIE = "movie", "Movie"
        SERIES = "series", "Series"

    external_id = models.CharField(
        max_length=64, unique=True, help_text="Stable id from the source, e.g. 'ml100k:42' or 'syn:7'."
    )
    kind = models.CharField(max_length=6, choices=Kind.choices, default=Kind.MOVIE)
    name = models.CharField(max_length=300, db_index=True)
    synopsis = models.TextField(blank=True)
    release_date = models.DateField(null=True, blank=True)
    date_added = models.DateField(help_text="When the title joined our catalog.")
    duration_minutes = models.PositiveIntegerField(help_text="Runtime; for a series, one episode.")
    episode_count = models.PositiveIntegerField(default=1)
    maturity_rating = models.PositiveSmallIntegerField(choices=MaturityRating.choices, default=MaturityRating.AGE_13)
    is_original = models.BooleanField(default=False)
    available_tiers = models.PositiveSmallIntegerField(
        default=ALL_TIERS_MASK, help_text="Bit mask of subscription tiers that may watch this title."
    )
    available_countries = models.ManyToManyField(
        Country, blank=True, related_name="titles", help_text="Leave empty for worldwide availability."
    )
    has_4k = models.BooleanField(default=False)
    has_hdr = models.BooleanField(default=False)
    genres = models.ManyToManyField(Genre, related_name="titles", blank=True)
    people = models.ManyToManyField(Person, through="Credit", related_name="titles", blank=True)

    class Meta:
        ordering = ["name"]
        indexes = [
            models.Index(fields=["-date_added"], name="title_date_added_idx"),
            models.Index(fields=["-release_date"], name="title_release_date_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(available_tiers__gte=1) & Q(available_tiers__lte=ALL_TIERS_MASK),
                name="title_tiers_mask_valid",
            ),
            models.CheckConstraint(condition=Q(duration_minutes__gte=1), name="title_duration_positive"),
            models.CheckConstraint(condition=Q(episode_count__gte=1), name="title_episode_count_positive"),
            models.CheckConstraint(condition=Q(kind="series") | Q(episode_count=1), name="title_movie_has_one_episode"),
        ]

    def __str__(self) -> str:
        year = f" ({self.release_date.year})" if self.release_date else ""
        return f"{self.name}{year}"

    @property
    def tiers(self) -> list[int]:
        return [t for t in SubscriptionTier.values if self.available_tiers & SubscriptionTier.bit(t)]

    def is_available_to_tier(self, tier: int) -> bool:
        return bool(self.available_tiers & SubscriptionTier.bit(tier))


class Credit(models.Model):
    class Role(models.TextChoices):
        CAST = "cast", "Cast"
        DIRECTOR = "director", "Director"

    # Covered by the unique constraint and the (person, role) index.
    title = models.ForeignKey(Title, on_delete=models.CASCADE, related_name="credits", db_index=False)
    person = models.ForeignKey(Person, on_delete=models.CASCADE, related_name="credits", db_index=False)
    role = models.CharField(max_length=8, choices=Role.choices)
    billing_order = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["title", "role", "billing_order"]
        constraints = [
            models.UniqueConstraint(fields=["title", "person", "role"], name="credit_unique_person_role"),
        ]
        indexes = [models.Index(fields=["person", "role"], name="credit_person_role_idx")]

    def __str__(self) -> str:
        return f"{self.person} — {self.get_role_display()} in {self.title}"
