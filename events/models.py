"""Event: one impression item, click, play, progress or completion reported by a client app."""

from __future__ import annotations

from django.db import models
from django.db.models import Case, F, Q, Value, When
from django.utils import timezone

from catalog.models import Title
from recommendations.models import ApiClient
from users.models import DeviceType, Profile


class EventType(models.TextChoices):
    IMPRESSION = "impression", "Impression"
    CLICK = "click", "Click"
    PLAY = "play", "Play start"
    PROGRESS = "progress", "Progress"
    COMPLETE = "complete", "Completion"


# The types that describe a viewing and fold into users.ViewingEvent.
VIEWING_TYPES = frozenset({EventType.PLAY, EventType.PROGRESS, EventType.COMPLETE})


class Event(models.Model):
    """What a client saw or did; an impression of n items is stored as n rows, one per item position.

    Unique per (client, client_event_id, item_position), so a retried batch stores nothing twice: EventKey holds
    that key. On PostgreSQL the table is partitioned by month of occurred_at (config.partitions), and a unique
    constraint there would have to include occurred_at, which a retry with another occurred_at would pass.
    """

    id = models.BigAutoField(primary_key=True)
    # No foreign-key constraints in the database (db_constraint=False): the ingest looks up each batch's
    # profiles and titles once, while the constraints' triggers queried the three tables again for every
    # stored row. Django's deletes still cascade (and PROTECT) through these fields.
    client = models.ForeignKey(
        ApiClient, on_delete=models.PROTECT, related_name="+", db_index=False, db_constraint=False
    )
    client_event_id = models.CharField(max_length=80)
    type = models.CharField(max_length=10, choices=EventType.choices)
    # Covered by the (profile, occurred_at) index below.
    profile = models.ForeignKey(
        Profile, on_delete=models.CASCADE, related_name="events", db_index=False, db_constraint=False
    )
    title = models.ForeignKey(Title, on_delete=models.CASCADE, related_name="events", db_constraint=False)
    request_id = models.CharField(max_length=32, blank=True, help_text="The /api/recs response that showed it.")
    row_key = models.CharField(max_length=64, blank=True)
    position = models.PositiveSmallIntegerField(null=True, blank=True, help_text="1-based place in the row or list.")
    experiment = models.CharField(max_length=64, blank=True)
    arm = models.CharField(max_length=64, blank=True)
    propensity = models.FloatField(null=True, blank=True, help_text="Probability the policy showed this item (0, 1].")
    policy = models.CharField(max_length=16, blank=True, help_text="What chose the item: ranker, bandit, random, …")
    watch_percentage = models.FloatField(null=True, blank=True, help_text="0..1 of the runtime watched.")
    device_type = models.PositiveSmallIntegerField(choices=DeviceType.choices)
    occurred_at = models.DateTimeField()
    received_at = models.DateTimeField(default=timezone.now)
    # The key's last part, so impression items get a key space of their own (issue #14: a click "X:1" was
    # dropped as a duplicate of impression X's item 1): an impression row's position, 0 for any other event.
    item_position = models.GeneratedField(
        expression=Case(When(type=EventType.IMPRESSION.value, then=F("position")), default=Value(0)),
        output_field=models.PositiveSmallIntegerField(),
        db_persist=True,
    )

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=~Q(type=EventType.IMPRESSION.value) | Q(position__isnull=False),
                name="event_impression_has_position",
            ),
            models.CheckConstraint(condition=Q(type__in=EventType.values), name="event_type_valid"),
            models.CheckConstraint(
                condition=Q(propensity__isnull=True) | (Q(propensity__gt=0) & Q(propensity__lte=1)),
                name="event_propensity_0_1",
            ),
            models.CheckConstraint(
                condition=Q(watch_percentage__isnull=True) | (Q(watch_percentage__gte=0) & Q(watch_percentage__lte=1)),
                name="event_percentage_0_1",
            ),
            models.CheckConstraint(
                condition=Q(position__isnull=True) | Q(position__gte=1), name="event_position_1_based"
            ),
            models.CheckConstraint(condition=Q(device_type__in=DeviceType.values), name="event_device_valid"),
        ]
        indexes = [
            # A profile's events in time order.
            models.Index(fields=["profile", "occurred_at"], name="event_profile_occurred_idx"),
            # Experiment metrics: one arm's events of one type over a window.
            models.Index(fields=["experiment", "arm", "type", "occurred_at"], name="event_experiment_arm_idx"),
            # Joining events back to the /api/recs response. Not partial (request_id <> ''): the planner cannot
            # prove that condition from an IN list of over 100 ids, and deduplication keeps the '' entries small.
            models.Index(fields=["request_id"], name="event_request_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.type} of title {self.title_id} by profile {self.profile_id}"


class EventKey(models.Model):
    """The idempotency key of each stored Event row: (client, client_event_id, item_position), once.

    A plain table beside the partitioned events: ingesting inserts the keys first (ON CONFLICT DO NOTHING) and
    stores only the events whose key was new. occurred_at is the event's, so retention deletes a key together
    with its event's month partition.
    """

    pk = models.CompositePrimaryKey("client", "client_event_id", "item_position")
    client = models.ForeignKey(
        ApiClient, on_delete=models.CASCADE, related_name="+", db_index=False, db_constraint=False
    )  # as Event's: no per-row trigger
    client_event_id = models.CharField(max_length=80)
    item_position = models.PositiveSmallIntegerField()
    occurred_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["occurred_at"], name="event_key_occurred_idx")]

    def __str__(self) -> str:
        return f"{self.client_id}:{self.client_event_id}:{self.item_position}"
