"""JobRun: one row per execution attempt of a background job, for operators.

A running attempt beats (`heartbeat_at`) while it holds its lock (`lock_name`, held with `lock_token`);
one whose beats stopped lost its worker and is marked LOST, by the next attempt of the same task when it
takes over, or by the housekeeping sweep.

A fanned-out job (the full feature refresh) is a parent run with one JobShard per range of ids: the parent
stays running while its shards run on any number of workers (each shard attempt is a JobRun of its own,
pointing at the parent) and finishes, with the shards' rows and its whole duration, when the last shard
does. A shard counts once, however often it is delivered.
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
    parent = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="shard_runs",
        help_text="For a shard attempt: the fanned-out run it belongs to.",
    )
    shards_total = models.PositiveIntegerField(default=0, help_text="Shards this run fanned out (0: not fanned out).")
    shards_done = models.PositiveIntegerField(default=0)
    shards_failed = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-started_at"]
        indexes = [
            models.Index(fields=["job", "-started_at"], name="jobrun_job_recent_idx"),
            models.Index(fields=["status", "-started_at"], name="jobrun_status_recent_idx"),
            models.Index(fields=["task_id"], name="jobrun_task_idx"),  # a redelivery finds its earlier attempts
        ]

    def __str__(self) -> str:
        return f"{self.job} #{self.pk} ({self.status})"

    @property
    def progress(self) -> str:
        """`37/50 shards, 1 failed` for a fanned-out run, else ""."""
        if not self.shards_total:
            return ""
        failed = f", {self.shards_failed} failed" if self.shards_failed else ""
        return f"{self.shards_done}/{self.shards_total} shards{failed}"


class JobShard(models.Model):
    """One [range_start, range_end) slice of a fanned-out run. Its status moves once from pending to done
    (or failed; a failed shard delivered again may still finish), and each move updates the parent's
    counters in the same transaction, so a redelivered shard never counts twice."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    parent = models.ForeignKey(JobRun, on_delete=models.CASCADE, related_name="shards")
    number = models.PositiveIntegerField()
    range_start = models.BigIntegerField()
    range_end = models.BigIntegerField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0, help_text="Attempts started (a redelivery adds one).")
    rows_written = models.PositiveBigIntegerField(default=0)
    duration_seconds = models.FloatField(null=True, blank=True, help_text="Of the attempt that finished it.")
    finished_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["parent", "number"]
        constraints = [models.UniqueConstraint(fields=["parent", "number"], name="jobshard_parent_number_uniq")]
        indexes = [models.Index(fields=["parent", "status"], name="jobshard_parent_status_idx")]

    def __str__(self) -> str:
        return f"shard {self.number} [{self.range_start}, {self.range_end}) of run {self.parent_id} ({self.status})"
