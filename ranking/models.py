"""Business rules editors manage in the admin (boosts, tier rules, suppressions, the kids policy) and their audit."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q

from catalog.models import ALL_TIERS_MASK, Country, Genre, MaturityRating, SubscriptionTier, Title


class TargetKind(models.TextChoices):
    ORIGINALS = "originals", "All originals"
    GENRE = "genre", "A genre"
    TITLE = "title", "A title"


TARGET_CONSTRAINT = (
    Q(target_kind=TargetKind.ORIGINALS, genre__isnull=True, title__isnull=True)
    | Q(target_kind=TargetKind.GENRE, genre__isnull=False, title__isnull=True)
    | Q(target_kind=TargetKind.TITLE, genre__isnull=True, title__isnull=False)
)
WINDOW_CONSTRAINT = Q(starts_at__isnull=True) | Q(ends_at__isnull=True) | Q(ends_at__gt=F("starts_at"))


def validate_positive(value: Decimal) -> None:
    if value is not None and value <= 0:
        raise ValidationError("Must be greater than 0: use 2 to double a score, 0.5 to halve it.", code="min_value")


class TargetedRule(models.Model):
    """A rule about all originals, one genre or one title."""

    target_kind = models.CharField("applies to", max_length=9, choices=TargetKind.choices)
    genre = models.ForeignKey(
        Genre,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
        help_text="Only when the rule applies to a genre.",
    )
    title = models.ForeignKey(
        Title,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
        help_text="Only when the rule applies to a title.",
    )

    class Meta:
        abstract = True

    def clean(self) -> None:
        errors: dict = {}
        try:
            super().clean()  # the window's checks, for rules that have one
        except ValidationError as error:
            errors = error.update_error_dict(errors)
        if self.target_kind == TargetKind.GENRE and self.genre_id is None:
            errors.setdefault("genre", []).append("Choose the genre this rule applies to.")
        if self.target_kind == TargetKind.TITLE and self.title_id is None:
            errors.setdefault("title", []).append("Choose the title this rule applies to.")
        if self.target_kind != TargetKind.GENRE and self.genre_id is not None:
            errors.setdefault("genre", []).append("Leave empty unless the rule applies to a genre.")
        if self.target_kind != TargetKind.TITLE and self.title_id is not None:
            errors.setdefault("title", []).append("Leave empty unless the rule applies to a title.")
        if errors:
            raise ValidationError(errors)

    @property
    def target_label(self) -> str:
        if self.target_kind == TargetKind.GENRE:
            return f"genre {self.genre}"
        if self.target_kind == TargetKind.TITLE:
            return f"title {self.title}"
        return "originals"


class TimeWindowed(models.Model):
    starts_at = models.DateTimeField(null=True, blank=True, help_text="Empty: in force from now on.")
    ends_at = models.DateTimeField(null=True, blank=True, help_text="Empty: no end. Must be after the start.")

    class Meta:
        abstract = True

    def clean(self) -> None:
        super().clean()
        if self.starts_at and self.ends_at and self.ends_at <= self.starts_at:
            raise ValidationError({"ends_at": "The end must be after the start."})


class Boost(TargetedRule, TimeWindowed):
    name = models.CharField(max_length=120, help_text="What the boost is for, e.g. 'Summer originals push'.")
    multiplier = models.DecimalField(
        max_digits=6,
        decimal_places=2,
        default=Decimal("1.50"),
        validators=[validate_positive],
        help_text="Greater than 0: above 1 promotes, below 1 demotes (2 doubles the odds of ranking higher).",
    )
    countries = models.ManyToManyField(
        Country, blank=True, related_name="+", help_text="Leave empty to boost in every country."
    )
    priority = models.IntegerField(
        default=0,
        help_text="When several boosts match a title, only the highest priority counts (equal ones multiply).",
    )
    is_active = models.BooleanField("active", default=True, help_text="Untick to pause the boost without deleting it.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-priority", "name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(multiplier__gt=0),
                name="boost_multiplier_positive",
                violation_error_message="The multiplier must be greater than 0.",
            ),
            models.CheckConstraint(
                condition=WINDOW_CONSTRAINT,
                name="boost_window_ends_after_start",
                violation_error_message="The end must be after the start.",
            ),
            models.CheckConstraint(
                condition=TARGET_CONSTRAINT,
                name="boost_target_matches_kind",
                violation_error_message="Set the genre or the title that the boost applies to, and only that.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} (×{self.multiplier} on {self.target_label})"


class TierRule(TargetedRule):
    allowed_tiers = models.PositiveSmallIntegerField(
        default=SubscriptionTier.bit(SubscriptionTier.PREMIUM),
        help_text="Only these subscription tiers are shown the matching titles (on top of each title's own tiers).",
    )
    note = models.CharField(max_length=200, blank=True, help_text="Why, for the next editor.")
    is_active = models.BooleanField("active", default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["target_kind", "id"]
        verbose_name = "tier rule"
        constraints = [
            models.CheckConstraint(
                condition=Q(allowed_tiers__gte=1) & Q(allowed_tiers__lte=ALL_TIERS_MASK),
                name="tierrule_tiers_mask_valid",
                violation_error_message="Choose at least one tier.",
            ),
            models.CheckConstraint(
                condition=TARGET_CONSTRAINT,
                name="tierrule_target_matches_kind",
                violation_error_message="Set the genre or the title that the rule applies to, and only that.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.target_label} only for {', '.join(t.label for t in self.tiers)}"

    @property
    def tiers(self) -> list[SubscriptionTier]:
        return [SubscriptionTier(t) for t in SubscriptionTier.values if self.allowed_tiers & SubscriptionTier.bit(t)]


class Suppression(TimeWindowed):
    title = models.ForeignKey(Title, on_delete=models.CASCADE, related_name="+")
    countries = models.ManyToManyField(
        Country, blank=True, related_name="+", help_text="Leave empty to suppress the title everywhere."
    )
    reason = models.CharField(max_length=200, help_text="Why the title is kept out of recommendations.")
    is_active = models.BooleanField("active", default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=WINDOW_CONSTRAINT,
                name="suppression_window_ends_after_start",
                violation_error_message="The end must be after the start.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.title} suppressed: {self.reason}"


class KidsPolicy(models.Model):
    """One row (created by a migration): the policy for every kids profile."""

    maturity_cap = models.PositiveSmallIntegerField(
        choices=MaturityRating.choices,
        default=MaturityRating.AGE_7,
        help_text="Kids profiles never see titles rated above this, whatever their own setting.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "kids policy"
        verbose_name_plural = "kids policy"

    def __str__(self) -> str:
        return f"Kids see up to {self.get_maturity_cap_display()}"


class DiversityPolicy(models.Model):
    """One row (created by a migration): how much the homepage trades relevance for variety."""

    mmr_lambda = models.FloatField(
        "relevance weight (MMR λ)",
        default=0.7,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="1 ranks purely by relevance; lower values spread genres and styles more (0.5–0.8 is usual).",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "diversity policy"
        verbose_name_plural = "diversity policy"
        constraints = [
            models.CheckConstraint(condition=Q(mmr_lambda__gte=0) & Q(mmr_lambda__lte=1), name="diversity_lambda_0_1")
        ]

    def __str__(self) -> str:
        return f"Relevance weight λ = {self.mmr_lambda:.2f}"


class RuleChange(models.Model):
    """One edit of a rule: who, when, what (field values before and after). Written by ranking.services."""

    class Action(models.TextChoices):
        CREATE = "create", "Created"
        UPDATE = "update", "Changed"
        DELETE = "delete", "Deleted"

    class RuleModel(models.TextChoices):
        BOOST = "boost", "Boost"
        TIER_RULE = "tierrule", "Tier rule"
        SUPPRESSION = "suppression", "Suppression"
        KIDS_POLICY = "kidspolicy", "Kids policy"
        DIVERSITY_POLICY = "diversitypolicy", "Diversity policy"

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    username = models.CharField(max_length=150, blank=True, help_text="Kept if the user is deleted.")
    action = models.CharField(max_length=6, choices=Action.choices)
    rule_model = models.CharField("rule type", max_length=16, choices=RuleModel.choices)
    object_id = models.BigIntegerField()
    object_repr = models.CharField("rule", max_length=300)
    changes = models.JSONField(default=dict, help_text='{"field": {"before": ..., "after": ...}}')

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["rule_model", "object_id"], name="rulechange_object_idx")]

    def __str__(self) -> str:
        return f"{self.get_action_display()} {self.get_rule_model_display().lower()} {self.object_repr}"
