"""Experiments with arms and their measured results; the exploration bandit's state and its decision log."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q

from catalog.models import Title
from users.models import Profile

NAME_LENGTH = 64  # events.Event.experiment and .arm hold these names


def new_salt() -> str:
    return secrets.token_hex(8)


class Experiment(models.Model):
    """An A/B test: profiles are split over its arms by a hash of their id and the salt while it runs."""

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        RUNNING = "running", "Running"
        STOPPED = "stopped", "Stopped"

    name = models.CharField(
        max_length=NAME_LENGTH,
        unique=True,
        help_text="Short and stable, e.g. 'ranker-v7-vs-v6': events and results refer to it. Fixed once started.",
    )
    description = models.TextField(blank=True, help_text="The hypothesis, and what would make you ship the change.")
    salt = models.CharField(
        max_length=32,
        default=new_salt,
        help_text="Seeds the assignment: another salt reshuffles every profile. Fixed once started.",
    )
    status = models.CharField(max_length=7, choices=Status.choices, default=Status.DRAFT)
    starts_at = models.DateTimeField(help_text="Profiles are assigned from this moment while the status is running.")
    ends_at = models.DateTimeField(null=True, blank=True, help_text="Empty: until stopped.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", editable=False
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(ends_at__isnull=True) | Q(ends_at__gt=F("starts_at")),
                name="experiment_ends_after_start",
                violation_error_message="The end must be after the start.",
            ),
        ]
        indexes = [models.Index(fields=["status"], name="experiment_status_idx")]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        super().clean()
        if self.starts_at and self.ends_at and self.ends_at <= self.starts_at:
            raise ValidationError({"ends_at": "The end must be after the start."})


class Arm(models.Model):
    """One configuration under test and its share of the experiment's traffic."""

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="arms")
    name = models.CharField(max_length=NAME_LENGTH, help_text="e.g. 'control', 'new-ranker'.")
    is_baseline = models.BooleanField(
        "baseline",
        default=False,
        help_text="The arm the others are compared with (lift, significance). One per experiment.",
    )
    traffic_share = models.DecimalField(
        max_digits=5,
        decimal_places=4,
        validators=[MinValueValidator(0), MaxValueValidator(1)],
        help_text="0 to 1; the arms of an experiment sum to 1.",
    )
    ranker_version = models.CharField(
        max_length=40, blank=True, help_text="A ranker ModelVersion's version label; empty: the active ranker."
    )
    mmr_lambda = models.FloatField(
        "MMR λ",
        null=True,
        blank=True,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Relevance weight of diversification; empty: the editors' diversity policy.",
    )
    bandit_enabled = models.BooleanField(
        "bandit exploration", default=False, help_text="Exploration slots are filled by the contextual bandit."
    )
    popularity_only = models.BooleanField(
        "popularity only", default=False, help_text="The non-personalised baseline: most popular titles, no ranker."
    )

    class Meta:
        ordering = ["id"]  # the assignment cumulates shares in this order
        constraints = [
            models.UniqueConstraint(fields=["experiment", "name"], name="arm_unique_name"),
            models.UniqueConstraint(fields=["experiment"], condition=Q(is_baseline=True), name="arm_one_baseline"),
            models.CheckConstraint(condition=Q(traffic_share__gte=0) & Q(traffic_share__lte=1), name="arm_share_0_1"),
            models.CheckConstraint(
                condition=Q(mmr_lambda__isnull=True) | (Q(mmr_lambda__gte=0) & Q(mmr_lambda__lte=1)),
                name="arm_mmr_lambda_0_1",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.experiment} / {self.name}"


class Metric(models.TextChoices):
    CTR = "ctr", "CTR (clicks / impressions)"
    PLAY_RATE = "play_rate", "Play rate (plays / clicks)"
    COMPLETION_RATE = "completion_rate", "Completion rate (watched ≥ 70 % / plays)"
    ENGAGEMENT = "engagement", "Engagement per impression (0.1 click + 0.3 play + 0.6 complete)"
    SESSION_MINUTES = "session_minutes", "Minutes watched per visit"
    DISCOVERY = "discovery", "Content discovery (share of catalog played, 30 days)"
    LONG_TAIL = "long_tail", "Long-tail share (plays outside the top 20 % titles)"
    LIFT = "lift", "Personalization lift (engagement vs baseline)"


class ExperimentResult(models.Model):
    """One metric of one arm, as of `computed_at`; each computation adds a set (the history plots over time)."""

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="results")
    arm = models.ForeignKey(Arm, on_delete=models.CASCADE, related_name="results")
    metric = models.CharField(max_length=16, choices=Metric.choices)
    value = models.FloatField(null=True, blank=True, help_text="Empty when the arm has no data for it yet.")
    ci_low = models.FloatField(null=True, blank=True)
    ci_high = models.FloatField(null=True, blank=True)
    n = models.BigIntegerField(default=0, help_text="The denominator: impressions, clicks, plays, visits, …")
    delta_vs_baseline = models.FloatField(null=True, blank=True)
    p_value_vs_baseline = models.FloatField(null=True, blank=True)
    significant = models.BooleanField(null=True, blank=True, help_text="p < 0.05 against the baseline arm.")
    computed_at = models.DateTimeField()

    class Meta:
        ordering = ["experiment", "metric", "arm"]
        constraints = [
            models.UniqueConstraint(fields=["experiment", "arm", "metric", "computed_at"], name="result_unique_metric")
        ]
        indexes = [models.Index(fields=["experiment", "-computed_at"], name="result_experiment_latest_idx")]

    def __str__(self) -> str:
        return f"{self.arm} {self.metric} = {self.value}"

    @property
    def verdict(self) -> str:
        if self.p_value_vs_baseline is None or self.delta_vs_baseline is None:
            return "baseline" if self.arm.is_baseline else "—"
        if not self.significant:
            return "no significant difference"
        return "higher than baseline" if self.delta_vs_baseline > 0 else "lower than baseline"


class BanditState(models.Model):
    """A bandit policy's learned state (ranking.ml.bandit arrays as an npz) and how far it has read the events."""

    name = models.CharField(max_length=NAME_LENGTH, unique=True)
    policy_kind = models.CharField(max_length=32, editable=False)
    arrays = models.BinaryField(help_text="ranking.ml.bandit.policy_to_bytes: an npz, no pickles.")
    version = models.PositiveBigIntegerField(default=0, help_text="Grows by one with every update that folds.")
    impressions_seen = models.BigIntegerField(default=0)
    reward_sum = models.FloatField(default=0.0)
    last_event_id = models.BigIntegerField(default=0, help_text="Impression events up to this id are folded in.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} v{self.version}"


class ExplorationLog(models.Model):
    """A title the bandit chose for an exploration slot of one /api/recs response, with what it saw.

    The update job joins impressions (request_id, title) to these rows, so it never recomputes features.
    Vectors are float32 bytes (ranking.ml.bandit CONTEXT_WIDTH and ITEM_WIDTH values).
    """

    request_id = models.CharField(max_length=32)
    # A log pruned after weeks: no constraint, so deleting a title or profile never scans it.
    title = models.ForeignKey(Title, on_delete=models.DO_NOTHING, related_name="+", db_constraint=False, db_index=False)
    profile = models.ForeignKey(
        Profile, on_delete=models.DO_NOTHING, related_name="+", db_constraint=False, db_index=False
    )
    bandit = models.CharField(max_length=NAME_LENGTH, help_text="The BanditState name.")
    bandit_version = models.PositiveBigIntegerField()
    slot = models.PositiveSmallIntegerField(help_text="Pick order within the response, from 0.")
    position = models.PositiveSmallIntegerField(help_text="1-based place on the page.")
    propensity = models.FloatField(help_text="Probability of this pick at its slot, given the earlier picks.")
    candidate_count = models.PositiveSmallIntegerField(help_text="How many candidates the policy chose from.")
    context = models.BinaryField()
    item_features = models.BinaryField()
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            # Its leading column serves the update's lookups by request_id.
            models.UniqueConstraint(fields=["request_id", "title"], name="explorationlog_unique_pick"),
            models.CheckConstraint(
                condition=Q(propensity__gt=0) & Q(propensity__lte=1), name="explorationlog_propensity_0_1"
            ),
        ]
        indexes = [models.Index(fields=["created_at"], name="explorationlog_created_idx")]

    def __str__(self) -> str:
        return f"{self.bandit} picked title {self.title_id} for {self.request_id}"
