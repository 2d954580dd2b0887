"""Training jobs: thin Celery wrappers around recommendations.training."""
from __future__ import annotations

from celery import shared_task

from recommendations.training import model_train
from tasks.runner import JobTask


@shared_task(
    base=JobTask,
    bind=True,
    name="tasks.training.train_model",
    soft_time_limit=2 * 3600,
    time_limit=2 * 3600 + 300,
    lock_seconds=2 * 3600 + 600,  # outlives the hard limit, so a killed run's lock still expires
)
def train_model(self, kind: str, activation: str = "if-not-worse") -> int:
    """Retrain one model kind from the database; registers a version, activates it if not worse, and
    records the number of interactions it learned from."""
    return self.run_job(lambda: model_train(kind=kind, activation=activation).interactions, lock_name=f"{self.name}:{kind}")
