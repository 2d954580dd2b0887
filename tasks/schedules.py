"""Default job schedules. `sync_schedules` (and a data migration) add missing ones by name, never overwrite."""

from __future__ import annotations

import json
from dataclasses import dataclass


@dataclass(frozen=True)
class DefaultSchedule:
    task: str
    crontab: str  # minute hour day-of-month month day-of-week, UTC; "" for an interval schedule
    description: str
    kwargs: dict | None = None
    every_seconds: int | None = None  # instead of a crontab, for checks more frequent than a minute
    expire_seconds: int | None = None  # a run still queued after this is dropped (checks must not pile up)


DEFAULT_SCHEDULES: dict[str, DefaultSchedule] = {
    "Refresh features of recently active profiles": DefaultSchedule(
        "tasks.features.refresh_recent_user_features",
        "*/5 * * * *",
        "Every 5 minutes: profiles that watched something in the last hour get fresh features.",
        {"minutes": 60},
    ),
    "Refresh features of all profiles": DefaultSchedule(
        "tasks.features.refresh_user_features",
        "10 * * * *",
        "Hourly (user features live 1 h): every profile, sharded so several workers share the work.",
    ),
    "Refresh content features and trending": DefaultSchedule(
        "tasks.features.refresh_content_features",
        "*/5 * * * *",
        "Every 5 minutes (content features live 5 min): views, popularity, trending, completion.",
    ),
    "Snapshot user features to Parquet": DefaultSchedule(
        "tasks.features.write_feature_snapshot",
        "30 2 * * *",
        "Daily at 02:30 UTC: the offline store that training reads point-in-time.",
        {"entity_type": "user"},
    ),
    "Snapshot content features to Parquet": DefaultSchedule(
        "tasks.features.write_feature_snapshot",
        "40 2 * * *",
        "Daily at 02:40 UTC: the offline store that training reads point-in-time.",
        {"entity_type": "content"},
    ),
    "Retrain matrix factorization": DefaultSchedule(
        "tasks.training.train_model",
        "0 4 * * *",
        "Daily at 04:00 UTC: retrain, validate, activate only through the gate (enough data, beats popularity, not worse).",
        {"kind": "mf"},
    ),
    "Retrain content similarity": DefaultSchedule(
        "tasks.training.train_model",
        "30 4 * * *",
        "Daily at 04:30 UTC: new titles become reachable through their genres and credits.",
        {"kind": "content"},
    ),
    "Retrain neural collaborative filtering": DefaultSchedule(
        "tasks.training.train_model",
        "0 5 * * 0",
        "Weekly, Sundays 05:00 UTC: the slowest to train.",
        {"kind": "ncf"},
    ),
    "Update the exploration bandit": DefaultSchedule(
        "tasks.experiments.update_bandit",
        "*/5 * * * *",
        "Every 5 minutes: bandit impressions older than 3 hours (their plays and completions in) are folded in.",
        {"name": "homepage"},
    ),
    "Compute experiment metrics": DefaultSchedule(
        "tasks.experiments.compute_experiment_metrics",
        "20 * * * *",
        "Hourly: per-arm metrics with intervals and tests of running (and just ended) experiments.",
    ),
    "Prune old exploration logs": DefaultSchedule(
        "tasks.experiments.prune_exploration_logs",
        "15 3 * * *",
        "Daily at 03:15 UTC: what the bandit saw for picks older than 30 days (long folded) goes.",
        {"keep_days": 30},
    ),
    "Mark job runs whose worker died as lost": DefaultSchedule(
        "tasks.maintenance.mark_lost_job_runs",
        "*/5 * * * *",
        "Every 5 minutes: runs still 'running' without a heartbeat for three lock TTLs (3 min) become 'lost'.",
    ),
    "Rebuild the online features after Redis came back empty": DefaultSchedule(
        "tasks.features.ensure_online_features",
        "",
        "Every 30 s: one SET NX; if the store's sentinel is gone, one full feature refresh is enqueued at once.",
        every_seconds=30,
        expire_seconds=30,
    ),
    "Maintain monthly partitions": DefaultSchedule(
        "tasks.maintenance.maintain_partitions",
        "45 3 * * *",
        "Daily at 03:45 UTC: the next months' partitions of viewing history and API events are created; months past the retention window are detached and dropped.",
    ),
    "Prune old job runs": DefaultSchedule(
        "tasks.maintenance.prune_job_runs",
        "0 3 * * *",
        "Daily at 03:00 UTC: job runs older than 30 days go; the newest of each job stays.",
        {"keep_days": 30},
    ),
}


def sync_default_schedules(periodic_task_model, crontab_model, interval_model=None) -> list[str]:
    """Create the default schedules that do not exist yet (by name); returns the names created.

    Takes the models as arguments so that a data migration can pass its historical models. Interval
    schedules need `interval_model` (migrations before 0006 pass none and skip them).
    """
    created = []
    for name, schedule in DEFAULT_SCHEDULES.items():
        if periodic_task_model.objects.filter(name=name).exists():
            continue  # operators may have edited it: leave it alone
        when: dict = {}
        if schedule.every_seconds:
            if interval_model is None:
                continue
            when["interval"], _ = interval_model.objects.get_or_create(every=schedule.every_seconds, period="seconds")
        else:
            minute, hour, day_of_month, month_of_year, day_of_week = schedule.crontab.split()
            when["crontab"], _ = crontab_model.objects.get_or_create(
                minute=minute,
                hour=hour,
                day_of_month=day_of_month,
                month_of_year=month_of_year,
                day_of_week=day_of_week,
                timezone="UTC",
            )
        periodic_task_model.objects.create(
            name=name,
            task=schedule.task,
            kwargs=json.dumps(schedule.kwargs or {}),
            description=schedule.description,
            expire_seconds=schedule.expire_seconds,
            **when,
        )
        created.append(name)
    return created
