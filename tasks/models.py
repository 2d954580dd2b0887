"""JobRun: one row per execution attempt of a background job, for operators.

A running attempt beats (`heartbeat_at`) while it holds its lock (`lock_name`, held with `lock_token`);
one whose beats stopped lost its worker and is marked LOST, by the next attempt of the same task when it
takes over, or by the housekeeping sweep.
"""
from __future__ import annotations

from django.db import models


class JobRun(models.Model):
    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        RETRYING = "retrying", "Failed, will retry"
        FAILED = "failed", "Failed"
        SKIPPED = "skipped", "Skipped (another run holds the lock)"
        LOST = "lost", "Lost (its worker died)"

    job = models.CharField(max_length=100)
    task_id = models.CharField(max_length=64, blank=True)
    params = models.JSONField(default=dict, blank=True)
    attempt = models.PositiveSmallIntegerField(default=1)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RUNNING)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    duration_seconds = models.FloatField(null=True, blank=True)
    rows_written = models.PositiveBigIntegerField(default=0)
    error = models.TextField(blank=True)
    worker = models.CharField(max_length=200, blank=True, help_text="host:pid of the process that ran it.")
    lock_name = models.CharField(max_length=200, blank=True)
    lock_token = models.CharField(max_length=32, blank=True, help_text="The holder's token in the job lock.")
    heartbeat_at = models.DateTimeField(null=True, blank=True, help_text="Last sign of life while running.")

    class Meta:
        ordering = ["-started_at"]
        indexes = [
            models.Index(fields=["job", "-started_at"], name="jobrun_job_recent_idx"),
            models.Index(fields=["status", "-started_at"], name="jobrun_status_recent_idx"),
            models.Index(fields=["task_id"], name="jobrun_task_idx"),  # a redelivery finds its earlier attempts
        ]

    def __str__(self) -> str:
        return f"{self.job} #{self.pk} ({self.status})"
