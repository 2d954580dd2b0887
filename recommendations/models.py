"""ModelVersion: one trained artifact and whether it serves; ApiClient: an app allowed to call the API."""

from __future__ import annotations

import hashlib
import secrets

from django.conf import settings
from django.db import models
from django.db.models import Q


class ModelKind(models.TextChoices):
    MATRIX_FACTORIZATION = "mf", "Matrix factorization"
    NCF = "ncf", "Neural collaborative filtering"
    CONTENT = "content", "Content similarity"
    POPULARITY = "popularity", "Popularity"
    EASE = "ease", "EASE"
    RANKER = "ranker", "LambdaMART ranker"


class ModelVersion(models.Model):
    class Status(models.TextChoices):
        CANDIDATE = "candidate", "Candidate"
        ACTIVE = "active", "Active"
        RETIRED = "retired", "Retired"

    kind = models.CharField(max_length=16, choices=ModelKind.choices)
    version = models.CharField(max_length=40, help_text="Sortable label, e.g. 20261126T0445Z-3f2a.")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.CANDIDATE)
    artifact_path = models.CharField(max_length=300, help_text="Directory, relative to RECO_ARTIFACT_DIR.")
    checksum = models.CharField(
        max_length=64, help_text="SHA-256 of the artifact's meta.json (which lists every file's)."
    )
    data_from = models.DateTimeField(null=True, blank=True)
    data_to = models.DateTimeField(null=True, blank=True)
    params = models.JSONField(default=dict, blank=True)
    metrics = models.JSONField(default=dict, blank=True, help_text="Offline metrics on the validation split.")
    created_at = models.DateTimeField(auto_now_add=True)
    activated_at = models.DateTimeField(null=True, blank=True)
    activated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    notes = models.TextField(blank=True)

    class Meta:
        ordering = ["kind", "-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["kind", "version"], name="modelversion_unique_version"),
            models.UniqueConstraint(
                fields=["kind"], condition=Q(status="active"), name="modelversion_one_active_per_kind"
            ),
        ]
        indexes = [models.Index(fields=["kind", "status"], name="modelversion_kind_status_idx")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.version} ({self.status})"


API_KEY_PREFIX_LENGTH = 8


class ApiScope(models.TextChoices):
    """What an API client may do; a key without the scope an operation needs gets 403."""

    READ_RECOMMENDATIONS = "recs:read", "Read recommendations"
    WRITE_EVENTS = "events:write", "Write events"


def default_scopes() -> list[str]:
    return [ApiScope.READ_RECOMMENDATIONS.value, ApiScope.WRITE_EVENTS.value]


def api_key_digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class ApiClient(models.Model):
    """A client app (TV, mobile, web) with its own API key and request rate; the key is stored hashed."""

    name = models.CharField(max_length=100, unique=True)
    key_prefix = models.CharField(
        max_length=API_KEY_PREFIX_LENGTH,
        unique=True,
        editable=False,
        help_text="The key's first characters, to recognise it in logs.",
    )
    key_digest = models.CharField(max_length=64, unique=True, editable=False)
    rate = models.CharField(
        max_length=20, default="6000/min", help_text="Requests allowed per client, e.g. 6000/min or 100/s."
    )
    scopes = models.JSONField(
        default=default_scopes, blank=True, help_text="What the key may do: recs:read, events:write."
    )
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name = "API client"
        constraints = [
            models.CheckConstraint(
                condition=Q(rate__regex=r"^[0-9]+/(s|sec|m|min|h|hour|d|day)$"), name="apiclient_rate_format"
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.key_prefix}…)"

    @classmethod
    def issue(
        cls, name: str, *, key: str | None = None, rate: str = "6000/min", scopes: list[str] | None = None
    ) -> tuple[ApiClient, str]:
        """Create a client; returns it and its key, which is shown once and never stored in clear."""
        key = key or secrets.token_urlsafe(32)
        client = cls.objects.create(
            name=name,
            key_prefix=key[:API_KEY_PREFIX_LENGTH],
            key_digest=api_key_digest(key),
            rate=rate,
            scopes=default_scopes() if scopes is None else list(scopes),
        )
        return client, key
