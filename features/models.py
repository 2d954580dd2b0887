"""The embedded online store: feature payloads in the database when no Redis is configured.

Every process of an embedded deployment (the demo's setup command, its web server, eager tasks) then reads
the same features, which a per-process local-memory cache cannot give.
"""

from __future__ import annotations

from django.db import models


class OnlineFeature(models.Model):
    """One store key and its encoded payload, until `expires_at` (the TTL Redis would apply)."""

    key = models.CharField(max_length=200, primary_key=True)
    payload = models.BinaryField()
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        db_table = "features_online"

    def __str__(self) -> str:
        return self.key


class TitleDay(models.Model):
    """One title's viewings that started on one UTC day, summed: the content refresh's daily rollup.

    Kept for the last ROLLUP_KEEP_DAYS closed days (the trending windows); older days live on in TitleTotal."""

    pk = models.CompositePrimaryKey("title_id", "day")
    title_id = models.BigIntegerField()
    day = models.DateField()
    views = models.BigIntegerField()
    completed = models.BigIntegerField()
    watch_percentage_sum = models.FloatField()
    decayed = models.FloatField()  # Σ POPULARITY_DECAY ** (days from each start to the day's end)

    class Meta:
        db_table = "features_title_day"

    def __str__(self) -> str:
        return f"title {self.title_id} on {self.day}: {self.views} views"


class TitleTotal(models.Model):
    """One title's viewings that started before TitleRollup.through_day, summed over all of history."""

    title_id = models.BigIntegerField(primary_key=True)
    views = models.BigIntegerField()
    completed = models.BigIntegerField()
    watch_percentage_sum = models.FloatField()
    decayed = models.FloatField()  # Σ POPULARITY_DECAY ** (days from each start to through_day)

    class Meta:
        db_table = "features_title_total"

    def __str__(self) -> str:
        return f"title {self.title_id}: {self.views} views"


class TitleRollup(models.Model):
    """The one row saying which UTC day (exclusive) TitleTotal and TitleDay are rolled up to."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    through_day = models.DateField()
    last_viewing_id = models.BigIntegerField()  # the newest viewing seen: newer ones of closed days are re-read
    rebuilt_at = models.DateTimeField()
    advanced_at = models.DateTimeField()

    class Meta:
        db_table = "features_title_rollup"

    def __str__(self) -> str:
        return f"rolled up through {self.through_day}"
