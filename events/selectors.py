"""Reads over stored events."""

from __future__ import annotations

from django.db import connection

from events.models import Event

# Walks the (experiment, arm, ...) index one distinct pair at a time ("loose index scan"): a handful of
# index probes instead of the full scan that SELECT DISTINCT makes on a table of millions of events.
_EXPERIMENT_ARMS_SQL = """
WITH RECURSIVE walk(experiment, arm) AS (
    (SELECT experiment, arm FROM events_event WHERE experiment > '' ORDER BY experiment, arm LIMIT 1)
    UNION ALL
    SELECT next.experiment, next.arm FROM walk CROSS JOIN LATERAL (
        SELECT experiment, arm FROM events_event WHERE (experiment, arm) > (walk.experiment, walk.arm)
        ORDER BY experiment, arm LIMIT 1
    ) AS next
)
SELECT experiment, arm FROM walk LIMIT %s
"""


def experiment_arms(*, limit: int = 1000) -> list[tuple[str, str]]:
    """The distinct (experiment, arm) pairs that events name, in order; events outside experiments are left out."""
    if connection.vendor != "postgresql":
        pairs = Event.objects.exclude(experiment="").order_by("experiment", "arm").values_list("experiment", "arm")
        return list(pairs.distinct()[:limit])
    with connection.cursor() as cursor:
        cursor.execute(_EXPERIMENT_ARMS_SQL, [limit])
        return [(experiment, arm) for experiment, arm in cursor.fetchall()]
