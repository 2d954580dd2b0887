"""Feature-store jobs: thin Celery wrappers around features.services."""

from __future__ import annotations

import logging
from datetime import timedelta

from celery import shared_task
from django.utils import timezone

from features import services
from features.snapshots import snapshot_row_count
from features.store import UNAVAILABLE
from tasks.runner import JobTask
from tasks.services import fan_out_running

logger = logging.getLogger(__name__)

USER_SHARD_SIZE = 50_000  # profiles per shard task: about a minute of work at 50 events per profile


@shared_task(base=JobTask, bind=True, name="tasks.features.refresh_user_features")
def refresh_user_features(self, shard_size: int = USER_SHARD_SIZE, profile_id_end: int | None = None) -> int:
    """Fan out one shard task per range of profile ids, so that any number of workers share a full refresh;
    returns the number of shards. Its JobRun is the parent: it finishes, with every shard's rows and the
    whole refresh's seconds, when the last shard does (tasks.runner.JobTask.run_fan_out). `profile_id_end`:
    only the profiles below that id (bench/refresh_shards.py measures a given number of profiles)."""

    def ranges() -> list[tuple[int, int]]:
        shards = services.user_features_shards(shard_size=shard_size)
        if profile_id_end is None:
            return shards
        return [(start, min(end, profile_id_end)) for start, end in shards if start < profile_id_end]

    return self.run_fan_out(ranges, refresh_user_features_shard)


@shared_task(base=JobTask, bind=True, name="tasks.features.refresh_user_features_shard")
def refresh_user_features_shard(self, profile_id_start: int, profile_id_end: int, shard_id: int | None = None) -> int:
    """The profiles with ids in [start, end); `shard_id` when it is a shard of a full refresh (counted once)."""
    return self.run_job(
        lambda: services.user_features_refresh(profile_id_start=profile_id_start, profile_id_end=profile_id_end),
        lock_name=f"{self.name}:{profile_id_start}-{profile_id_end}",
        shard_id=shard_id,
    )


@shared_task(base=JobTask, bind=True, name="tasks.features.refresh_recent_user_features")
def refresh_recent_user_features(self, minutes: int = 60) -> int:
    """The profiles that watched something in the last `minutes`."""
    return self.run_job(
        lambda: services.user_features_refresh_recent(since=timezone.now() - timedelta(minutes=minutes))
    )


@shared_task(base=JobTask, bind=True, name="tasks.features.refresh_content_features")
def refresh_content_features(self) -> int:
    return self.run_job(lambda: services.content_features_refresh())


@shared_task(base=JobTask, bind=True, name="tasks.features.write_feature_snapshot")
def write_feature_snapshot(self, entity_type: str) -> int:
    """A Parquet snapshot of one entity type's features, for training (the offline store)."""

    def write() -> int:
        path = services.offline_snapshot_write(entity_type=entity_type, as_of=timezone.now())
        return snapshot_row_count(path)

    return self.run_job(write, lock_name=f"{self.name}:{entity_type}")


@shared_task(name="tasks.features.ensure_online_features")
def ensure_online_features() -> bool:
    """Every 30 s: when Redis came back empty, recompute the online features now rather than at the next
    scheduled refresh. One SET NX of the store's sentinel per run; the claim is the lock, so however many
    checks run, one full refresh is enqueued. While a full refresh is still running (a new one would be
    skipped) it lets the claim go, so a check after that refresh claims it. Not a JobRun: it does nothing
    nearly always, and the refreshes it enqueues record their own."""
    try:
        if not services.online_store_rebuild_claim():
            return False
    except UNAVAILABLE as error:
        logger.info("online feature store unavailable, checking again on the next run: %s", error)
        return False
    running = fan_out_running(job=refresh_user_features.name)
    if running is not None:  # a new one would be skipped; what its done shards wrote is gone: claim again later
        services.online_store_rebuild_release()
        logger.warning(
            "online feature store found empty during full refresh %s (%s): rebuilding after it",
            running.pk,
            running.progress,
        )
        return False
    try:
        refresh_content_features.delay()
        refresh_user_features.delay()
    except BaseException:
        services.online_store_rebuild_release()  # the next check claims it again
        raise
    logger.warning("online feature store found empty (no sentinel): full refresh enqueued")
    return True
