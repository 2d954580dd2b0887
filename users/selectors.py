"""Read queries on viewing history; each is backed by an index on ViewingEvent."""
from __future__ import annotations

from datetime import datetime

from django.db.models import QuerySet

from users.models import IN_PROGRESS_MAX, IN_PROGRESS_MIN, ViewingEvent


def profile_history(*, profile_id: int, limit: int = 100) -> QuerySet[ViewingEvent]:
    """A profile's viewing events, newest first (viewing_profile_recent_idx)."""
    return ViewingEvent.objects.filter(profile_id=profile_id).order_by("-last_watched_at")[:limit]


def profile_in_progress(*, profile_id: int, limit: int = 10) -> QuerySet[ViewingEvent]:
    """A profile's titles watched 10–90 %, most recently watched first (viewing_in_progress_idx)."""
    return ViewingEvent.objects.filter(
        profile_id=profile_id,
        watch_percentage__gte=IN_PROGRESS_MIN,
        watch_percentage__lte=IN_PROGRESS_MAX,
    ).order_by("-last_watched_at")[:limit]


def title_views_between(*, title_id: int, start: datetime, end: datetime) -> QuerySet[ViewingEvent]:
    """A title's viewing events that started in [start, end) (viewing_title_started_idx)."""
    return ViewingEvent.objects.filter(title_id=title_id, started_at__gte=start, started_at__lt=end)
