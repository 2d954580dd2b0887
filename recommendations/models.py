"""ModelVersion: one trained artifact, its data window and metrics, and whether it serves."""
from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q


class ModelKind(models.TextChoices):
    MATRIX_FACTORIZATION = "mf", "Matrix factorization"
    NCF = "ncf", "Neural collaborative filtering"
    CONTENT = "content", "Content similarity"
    POPULARITY = "popularity", "Popularity"
    EASE = "ease", "EASE"


class ModelVersion(models.Model):
    class Status(models.TextChoices):
        CANDIDATE = "candidate", "Candidate"
        ACTIVE = "active", "Active"
        RETIRED = "retired", "Retired"

    kind = models.CharField(max_length=16, choices=ModelKind.choices)
    version = models.CharField(max_length=40, help_text="Sortable label, e.g. 20261126T0445Z-3f2a.")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.CANDIDATE)
    artifact_path = models.CharField(max_length=300, help_text="Directory, relative to RECO_ARTIFACT_DIR.")
    checksum = models.CharField(max_length=64, help_text="SHA-256 of the artifact's meta.json (which lists every file's).")
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
