"""Reads for experiments: running experiments, per-arm aggregates of the events, stored results.

The aggregates run in SQL (PostgreSQL or SQLite) and return one row per arm, or per arm and title, never one
per event. An impression is a distinct (request_id, title) shown in an arm; its outcomes are the other events of
the same request and title, whatever they carry in their experiment and arm fields. The funnel flags are nested,
so that each rate is a proportion: a completion (a `complete` event, or any event with watch_percentage >= 0.7)
counts as a play, and a play (`play`, `progress`, `complete`) as a click.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
from django.db import connection
from django.db.models import Count, OuterRef, QuerySet, Subquery
from django.utils import timezone

from catalog.models import Title
from events.models import Event, EventType
from experiments.ml.metrics import ENGAGEMENT_WEIGHTS
from experiments.models import Experiment, ExperimentResult
from users.models import ViewingEvent

COMPLETION_SHARE = 0.7  # "watched over 70 %"
HEAD_SHARE = 0.2  # the top 20 % of titles by views are the head; the rest is the long tail
DISCOVERY_DAYS = 30


def experiments_running(*, now: dt.datetime | None = None) -> QuerySet[Experiment]:
    """Experiments with status running whose window has not ended, oldest first, arms prefetched."""
    now = now or timezone.now()
    return (
        Experiment.objects.filter(status=Experiment.Status.RUNNING)
        .exclude(ends_at__lte=now)
        .order_by("id")
        .prefetch_related("arms")
    )


def experiment_results(*, experiment_id: int) -> list[ExperimentResult]:
    """The newest computation's results of an experiment, by metric then arm."""
    return list(latest_results(ExperimentResult.objects.filter(experiment_id=experiment_id)))


def latest_results(results: QuerySet[ExperimentResult]) -> QuerySet[ExperimentResult]:
    """Only the rows of each experiment's newest computation."""
    newest = ExperimentResult.objects.filter(experiment=OuterRef("experiment")).order_by("-computed_at")
    return (
        results.filter(computed_at=Subquery(newest.values("computed_at")[:1]))
        .select_related("arm")
        .order_by("metric", "arm_id")
    )


def _columns() -> dict[str, str]:
    names = ("request_id", "title", "type", "experiment", "arm", "watch_percentage", "occurred_at")
    return {name: Event._meta.get_field(name).column for name in names}


def _pairs_sql() -> str:
    """Two CTEs: `shown` (arm, request, title, first shown) and `outcomes` (its nested funnel flags)."""
    c = _columns()
    events = connection.ops.quote_name(Event._meta.db_table)
    clicked = ", ".join(f"'{t}'" for t in (EventType.CLICK, EventType.PLAY, EventType.PROGRESS, EventType.COMPLETE))
    played = ", ".join(f"'{t}'" for t in (EventType.PLAY, EventType.PROGRESS, EventType.COMPLETE))
    completed = f"e.{c['type']} = '{EventType.COMPLETE}' OR e.{c['watch_percentage']} >= {COMPLETION_SHARE}"
    return f"""
        WITH shown AS (
            SELECT {c["arm"]} AS arm, {c["request_id"]} AS request_id, {c["title"]} AS title_id,
                   MIN({c["occurred_at"]}) AS shown_at
            FROM {events}
            WHERE {c["experiment"]} = %(experiment)s AND {c["type"]} = '{EventType.IMPRESSION}'
              AND {c["request_id"]} <> '' AND {c["occurred_at"]} >= %(start)s AND {c["occurred_at"]} < %(end)s
            GROUP BY {c["arm"]}, {c["request_id"]}, {c["title"]}
        ),
        outcomes AS (
            SELECT e.{c["request_id"]} AS request_id, e.{c["title"]} AS title_id,
                   MAX(CASE WHEN {completed} THEN 1 ELSE 0 END) AS completed,
                   MAX(CASE WHEN e.{c["type"]} IN ({played}) OR {completed} THEN 1 ELSE 0 END) AS played,
                   MAX(CASE WHEN e.{c["type"]} IN ({clicked}) OR {completed} THEN 1 ELSE 0 END) AS clicked,
                   MAX(COALESCE(e.{c["watch_percentage"]}, 0)) AS watched
            FROM {events} e
            WHERE e.{c["request_id"]} <> '' AND e.{c["type"]} <> '{EventType.IMPRESSION}'
              AND e.{c["request_id"]} IN (SELECT request_id FROM shown)
            GROUP BY e.{c["request_id"]}, e.{c["title"]}
        )"""


@dataclass(frozen=True)
class ArmTitleFunnel:
    """Per arm, one entry per title shown in it (aligned arrays)."""

    title_ids: np.ndarray  # int64
    impressions: np.ndarray  # int64
    clicked: np.ndarray
    played: np.ndarray
    completed: np.ndarray
    recent_played: np.ndarray  # plays of impressions shown in the last DISCOVERY_DAYS of the window
    engagement_squares: np.ndarray  # Σ engagement² over the title's impressions

    @property
    def engagement(self) -> np.ndarray:
        """Σ engagement per title: the flags are nested, so this is 0.1·clicked + 0.3·played + 0.6·completed."""
        click, play, complete = ENGAGEMENT_WEIGHTS
        return click * self.clicked + play * self.played + complete * self.completed


def arm_title_funnels(*, experiment: str, start: dt.datetime, end: dt.datetime) -> dict[str, ArmTitleFunnel]:
    """Arm name -> its funnel per title, for impressions shown in [start, end)."""
    click, play, complete = ENGAGEMENT_WEIGHTS
    score = (
        f"({click} * COALESCE(o.clicked, 0) + {play} * COALESCE(o.played, 0) + {complete} * COALESCE(o.completed, 0))"
    )
    sql = f"""{_pairs_sql()}
        SELECT s.arm, s.title_id, COUNT(*), SUM(COALESCE(o.clicked, 0)), SUM(COALESCE(o.played, 0)),
               SUM(COALESCE(o.completed, 0)),
               SUM(CASE WHEN s.shown_at >= %(recent)s THEN COALESCE(o.played, 0) ELSE 0 END),
               SUM({score} * {score})
        FROM shown s LEFT JOIN outcomes o ON o.request_id = s.request_id AND o.title_id = s.title_id
        GROUP BY s.arm, s.title_id
        ORDER BY s.arm, s.title_id"""
    params = {"experiment": experiment, "start": start, "end": end, "recent": end - dt.timedelta(days=DISCOVERY_DAYS)}
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    by_arm: dict[str, list[tuple]] = {}
    for row in rows:
        by_arm.setdefault(row[0], []).append(row[1:])
    funnels = {}
    for arm, arm_rows in by_arm.items():
        columns = np.array(arm_rows, dtype=np.float64).T
        funnels[arm] = ArmTitleFunnel(
            title_ids=columns[0].astype(np.int64),
            impressions=columns[1].astype(np.int64),
            clicked=columns[2].astype(np.int64),
            played=columns[3].astype(np.int64),
            completed=columns[4].astype(np.int64),
            recent_played=columns[5].astype(np.int64),
            engagement_squares=columns[6],
        )
    return funnels


@dataclass(frozen=True)
class Moments:
    n: int
    total: float
    total_squares: float


def arm_session_minutes(*, experiment: str, start: dt.datetime, end: dt.datetime) -> dict[str, Moments]:
    """Arm name -> minutes watched per visit (one /api/recs response): Σ over its titles of the largest
    watch_percentage × runtime (one episode for a series); visits with nothing played count 0."""
    title_table = connection.ops.quote_name(Title._meta.db_table)
    sql = f"""{_pairs_sql()},
        visits AS (
            SELECT s.arm, s.request_id, SUM(COALESCE(o.watched, 0) * t.duration_minutes) AS minutes
            FROM shown s
            LEFT JOIN outcomes o ON o.request_id = s.request_id AND o.title_id = s.title_id
            JOIN {title_table} t ON t.id = s.title_id
            GROUP BY s.arm, s.request_id
        )
        SELECT arm, COUNT(*), SUM(minutes), SUM(minutes * minutes) FROM visits GROUP BY arm"""
    with connection.cursor() as cursor:
        cursor.execute(sql, {"experiment": experiment, "start": start, "end": end})
        return {
            arm: Moments(int(n), float(total or 0), float(squares or 0)) for arm, n, total, squares in cursor.fetchall()
        }


def head_title_ids(*, end: dt.datetime, days: int = DISCOVERY_DAYS, share: float = HEAD_SHARE) -> np.ndarray:
    """The most viewed titles over [end - days, end): the top `share` of the catalog by viewings (int64, sorted)."""
    limit = int(np.ceil(share * Title.objects.count()))
    ids = (
        ViewingEvent.objects.filter(started_at__gte=end - dt.timedelta(days=days), started_at__lt=end)
        .values("title_id")
        .annotate(views=Count("id"))
        .order_by("-views", "title_id")
        .values_list("title_id", flat=True)[:limit]
    )
    return np.sort(np.fromiter(ids, dtype=np.int64))


def catalog_size() -> int:
    return Title.objects.count()
