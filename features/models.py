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
