"""Experiment and bandit jobs: thin Celery wrappers around experiments.services."""

from __future__ import annotations

import datetime as dt

from celery import shared_task
from django.utils import timezone

from experiments import services
from experiments.bandit_state import BANDIT_HOMEPAGE, REWARD_SETTLE
from experiments.models import Experiment
from tasks.runner import JobTask

MAX_BATCHES_PER_RUN = 50  # 50 x 20,000 impressions; a bigger backlog continues on the next run


@shared_task(base=JobTask, bind=True, name="tasks.experiments.update_bandit")
def update_bandit(self, name: str = BANDIT_HOMEPAGE, settle_seconds: int = int(REWARD_SETTLE.total_seconds())) -> int:
    """Fold the settled bandit impressions since the last run into the bandit's state; returns how many."""

    def fold() -> int:
        folded = 0
        for _ in range(MAX_BATCHES_PER_RUN):
            update = services.bandit_update_from_events(name=name, settle=dt.timedelta(seconds=settle_seconds))
            folded += update.folded
            if update.folded == 0:
                break
        return folded

    return self.run_job(fold, lock_name=f"{self.name}:{name}")


@shared_task(base=JobTask, bind=True, name="tasks.experiments.compute_experiment_metrics")
def compute_experiment_metrics(self, experiment_id: int | None = None) -> int:
    """Recompute (and replace) the results of one experiment, or of every running or recently ended one."""

    def compute() -> int:
        if experiment_id is not None:
            ids = [experiment_id]
        else:
            ids = list(services.experiments_to_measure().values_list("pk", flat=True))
        written = 0
        for pk in ids:
            try:
                written += len(services.experiment_metrics_compute(experiment_id=pk))
            except Experiment.DoesNotExist:
                continue  # deleted since it was queued
        return written

    lock = f"{self.name}:{experiment_id}" if experiment_id is not None else self.name
    return self.run_job(compute, lock_name=lock)


@shared_task(base=JobTask, bind=True, name="tasks.experiments.prune_exploration_logs")
def prune_exploration_logs(self, keep_days: int = 30) -> int:
    """Exploration log rows older than keep_days go (folded long before)."""
    return self.run_job(
        lambda: services.exploration_logs_prune(older_than=timezone.now() - dt.timedelta(days=keep_days))
    )
