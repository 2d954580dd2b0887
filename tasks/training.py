"""Training jobs: thin Celery wrappers around recommendations.training.jobs."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from recommendations.training.jobs import model_train
from tasks.runner import JobTask


@shared_task(
    base=JobTask,
    bind=True,
    name="tasks.training.train_model",
    soft_time_limit=2 * 3600,
    time_limit=2 * 3600 + 300,  # the longest of all jobs: the broker's visibility timeout must exceed it
)
def train_model(self, kind: str, activation: str = "if-not-worse", params: dict[str, Any] | None = None) -> int:
    """Retrain one model kind from the database; registers a version, activates it if it passes the gate,
    and records the number of interactions it learned from. Idempotent: a run again (after a crash) only
    registers one more version, and a killed run registers none."""
    return self.run_job(
        lambda: model_train(kind=kind, activation=activation, params=params).interactions,
        lock_name=f"{self.name}:{kind}",
    )
