"""Daily per-title rollups of viewing history (PostgreSQL): the content refresh reads today, not all of history.

TitleTotal sums every title's viewings that started before TitleRollup.through_day (a UTC midnight), TitleDay
each of the last ROLLUP_KEEP_DAYS closed days. `title_rollups_advance` (the write) closes the days since the last
run and reads the last REROLL_DAYS closed days again, so plays folded late and completions of recent viewings
count; `content_aggregates_rolled` and `title_views_recent` (the reads) add to the rollups the partial days
that no rollup holds: today so far and the part of the day a window edge cuts. The same figures as
features.selectors.content_aggregates, whose full GROUP BY stays the path for an as_of in the past; the one
difference, popularity counting views older than POPULARITY_HORIZON_DAYS at their weight (under 2e-17 each)
instead of 0.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pandas as pd
from django.db import connection, transaction
from django.utils import timezone

from features import pgarrays
from features.ml.compute import CONTENT_AGGREGATES
from features.ml.definitions import POPULARITY_DECAY, POPULARITY_HORIZON_DAYS, TRENDING_WINDOW_DAYS
from features.models import TitleRollup
from users.models import ViewingEvent

VIEWING_TABLE = ViewingEvent._meta.db_table
REROLL_DAYS = 2  # closed days read again at each advance: late plays, progress and completions of their viewings
ROLLUP_KEEP_DAYS = 2 * TRENDING_WINDOW_DAYS + REROLL_DAYS + 1  # the windows' whole days, and the re-read ones
REBUILD_AFTER_DAYS = 30  # a longer gap is rebuilt from history: reading a month costs about as much
_TINY = 1e-250  # a decayed sum below this becomes 0: PostgreSQL raises on a float8 underflow
_DAY = dt.timedelta(days=1)
# Days from a viewing's start to the end of its UTC day, (0, 1].
_TO_DAY_END = (
    "date_part('epoch', (((started_at AT TIME ZONE 'UTC')::date + 1)::timestamp AT TIME ZONE 'UTC')"
    " - started_at) / 86400.0"
)
_DAYS_SQL = f"""
    SELECT title_id, (started_at AT TIME ZONE 'UTC')::date AS day, count(*) AS views,
           count(*) FILTER (WHERE completed) AS completed, sum(watch_percentage) AS watch_percentage_sum,
           sum(power({POPULARITY_DECAY}::float8, {_TO_DAY_END})) AS decayed
    FROM {VIEWING_TABLE} WHERE started_at >= %(start)s AND started_at < %(end)s GROUP BY 1, 2
"""


@dataclass(frozen=True)
class RollupAdvance:
    through_day: dt.date
    rebuilt: bool
    days_read: int  # closed days read from history by this call


def _midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)


def _floor_day(moment: dt.datetime) -> dt.date:
    return moment.astimezone(dt.UTC).date()


def _ceil_day(moment: dt.datetime) -> dt.date:
    day = _floor_day(moment)
    return day if _midnight(day) == moment else day + _DAY


def title_rollups_advance(*, as_of: dt.datetime | None = None) -> RollupAdvance:
    """Roll TitleTotal and TitleDay up to the UTC day of `as_of` (default now).

    Within a day only a probe of the viewings added since the last call; once a day the new closed days plus
    REROLL_DAYS again; the closed days of viewings added late (a play reported days after it started), read
    again from their day; a rebuild from the whole history the first time, for such a day older than the
    kept days (a bulk load of history), after a gap of over REBUILD_AFTER_DAYS, or for an `as_of` before the
    rolled-up day. Viewings updated long after their start (progress days later) count at the next rebuild."""
    today = _floor_day(as_of or timezone.now())
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL work_mem = '256MB'")
        state = TitleRollup.objects.select_for_update().filter(pk=1).first()
        now = timezone.now()
        newest_id, oldest_new = _added_since(cursor, state.last_viewing_id if state else None)
        start = None
        if state is not None:  # the first day to read again: the re-read days at a new day, a late viewing's
            start = state.through_day - dt.timedelta(days=REROLL_DAYS) if state.through_day < today else today
            if oldest_new is not None and oldest_new < start:
                start = oldest_new
        if (
            state is None
            or state.through_day > today
            or (today - state.through_day).days > REBUILD_AFTER_DAYS
            or start < state.through_day - dt.timedelta(days=ROLLUP_KEEP_DAYS)
        ):
            _rebuild(cursor, today)
            TitleRollup.objects.update_or_create(
                pk=1,
                defaults={"through_day": today, "last_viewing_id": newest_id, "rebuilt_at": now, "advanced_at": now},
            )
            return RollupAdvance(today, True, ROLLUP_KEEP_DAYS)
        if start >= today:  # the same day, and nothing new before it
            TitleRollup.objects.filter(pk=1).update(last_viewing_id=newest_id)
            return RollupAdvance(today, False, 0)
        _advance(cursor, start=start, through=state.through_day, today=today)
        TitleRollup.objects.filter(pk=1).update(through_day=today, last_viewing_id=newest_id, advanced_at=now)
        return RollupAdvance(today, False, (today - start).days)


def _added_since(cursor, last_id: int | None) -> tuple[int, dt.date | None]:
    """(the newest viewing id, the UTC day of the earliest start among the viewings after `last_id`)."""
    if last_id is None:
        cursor.execute(f"SELECT coalesce(max(id), 0) FROM {VIEWING_TABLE}")
        return int(cursor.fetchone()[0]), None
    cursor.execute(f"SELECT max(id), min(started_at) FROM {VIEWING_TABLE} WHERE id > %s", [last_id])
    newest, earliest = cursor.fetchone()
    return (last_id, None) if newest is None else (int(newest), _floor_day(earliest))


def _rebuild(cursor, today: dt.date) -> None:
    end = _midnight(today)
    cursor.execute("TRUNCATE features_title_day, features_title_total")
    cursor.execute(
        f"""
        INSERT INTO features_title_total (title_id, views, completed, watch_percentage_sum, decayed)
        SELECT title_id, count(*), count(*) FILTER (WHERE completed), sum(watch_percentage),
               coalesce(sum(power({POPULARITY_DECAY}::float8, date_part('epoch', %(end)s::timestamptz - started_at) / 86400.0))
                        FILTER (WHERE started_at >= %(horizon)s), 0)
        FROM {VIEWING_TABLE} WHERE started_at < %(end)s GROUP BY title_id
    """,
        {"end": end, "horizon": end - dt.timedelta(days=POPULARITY_HORIZON_DAYS)},
    )
    start = _midnight(today - dt.timedelta(days=ROLLUP_KEEP_DAYS))
    cursor.execute(
        f"INSERT INTO features_title_day (title_id, day, views, completed, watch_percentage_sum, decayed) {_DAYS_SQL}",
        {"start": start, "end": end},
    )


def _advance(cursor, *, start: dt.date, through: dt.date, today: dt.date) -> None:
    """Totals decayed from `through` to `today`, plus each day of [start, today) read now, minus what TitleDay
    held for [start, through); TitleDay then holds the days read now and none older than ROLLUP_KEEP_DAYS."""
    cursor.execute("DROP TABLE IF EXISTS rollup_fresh")  # a caller's transaction may hold an earlier one
    cursor.execute(
        f"CREATE TEMPORARY TABLE rollup_fresh ON COMMIT DROP AS {_DAYS_SQL}",
        {"start": _midnight(start), "end": _midnight(today)},
    )
    if today > through:
        cursor.execute(
            f"UPDATE features_title_total SET decayed = CASE WHEN decayed < {_TINY} THEN 0 "
            f"ELSE decayed * power({POPULARITY_DECAY}::float8, %(days)s::float8) END WHERE decayed <> 0",
            {"days": (today - through).days},
        )
    cursor.execute(
        f"""
        INSERT INTO features_title_total AS t (title_id, views, completed, watch_percentage_sum, decayed)
        SELECT title_id, sum(views), sum(completed), sum(watch_percentage_sum),
               sum(decayed * power({POPULARITY_DECAY}::float8, (%(today)s::date - (day + 1))::float8))
        FROM (SELECT title_id, day, views, completed, watch_percentage_sum, decayed FROM rollup_fresh
              UNION ALL
              SELECT title_id, day, -views, -completed, -watch_percentage_sum, -decayed FROM features_title_day
              WHERE day >= %(start)s AND day < %(through)s) changes
        GROUP BY title_id
        ON CONFLICT (title_id) DO UPDATE SET views = t.views + excluded.views, completed = t.completed + excluded.completed,
            watch_percentage_sum = t.watch_percentage_sum + excluded.watch_percentage_sum,
            decayed = t.decayed + excluded.decayed
    """,
        {"today": today, "start": start, "through": through},
    )
    cursor.execute(
        "DELETE FROM features_title_day WHERE day >= %s OR day < %s",
        [start, today - dt.timedelta(days=ROLLUP_KEEP_DAYS)],
    )
    cursor.execute(
        "INSERT INTO features_title_day SELECT title_id, day, views, completed, watch_percentage_sum, "
        "decayed FROM rollup_fresh"
    )
    cursor.execute("DROP TABLE rollup_fresh")


def rolled_through() -> dt.date | None:
    """The UTC day the rollups sum up to (exclusive), or None before the first advance."""
    return TitleRollup.objects.filter(pk=1).values_list("through_day", flat=True).first()


def _windows(as_of: dt.datetime) -> dict:
    """The parameters of the reads at `as_of`: its day, the trending windows' edges and their days."""
    week = dt.timedelta(days=TRENDING_WINDOW_DAYS)
    today = _floor_day(as_of)
    e7, e14 = as_of - week, as_of - 2 * week
    return {
        "as_of": as_of,
        "today": today,
        "today_start": _midnight(today),
        "e7": e7,
        "e14": e14,
        "e7_floor": _midnight(_floor_day(e7)),
        "e7_ceil": _midnight(_ceil_day(e7)),
        "e14_ceil": _midnight(_ceil_day(e14)),
        "d7": _ceil_day(e7),
        "d7_floor": _floor_day(e7),
        "d14": _ceil_day(e14),
        "today_weight": POPULARITY_DECAY ** ((as_of - _midnight(today)).total_seconds() / 86400),
    }


# What no rollup holds: today so far, and the parts of the edge days inside the windows.
_PARTIAL_WHERE = """(started_at >= %(e14)s AND started_at < %(e14_ceil)s)
    OR (started_at >= %(e7_floor)s AND started_at < %(e7_ceil)s)
    OR (started_at >= %(today_start)s AND started_at < %(as_of)s)"""
_PARTIAL_COLUMNS = f"""
    count(*) FILTER (WHERE started_at >= %(e7)s) AS v7,
    count(*) FILTER (WHERE started_at >= %(e14)s AND started_at < %(e7)s) AS p7,
    count(*) FILTER (WHERE started_at >= %(today_start)s) AS n,
    count(*) FILTER (WHERE started_at >= %(today_start)s AND completed) AS c,
    coalesce(sum(watch_percentage) FILTER (WHERE started_at >= %(today_start)s), 0) AS w,
    coalesce(sum(power({POPULARITY_DECAY}::float8, date_part('epoch', %(as_of)s::timestamptz - started_at) / 86400.0))
             FILTER (WHERE started_at >= %(today_start)s), 0) AS pop
"""
# Summed per title in its own branch: the outer GROUP BY then meets one row a title, not one a title and day.
_DAY_COLUMNS = """
    coalesce(sum(views) FILTER (WHERE day >= %(d7)s), 0)::int8 AS v7,
    coalesce(sum(views) FILTER (WHERE day >= %(d14)s AND day < %(d7_floor)s), 0)::int8 AS p7,
    0::bigint AS n, 0::bigint AS c, 0::float8 AS w, 0::float8 AS pop
"""
_CONTENT_SQL = f"""
    SELECT title_id, sum(v7)::int8 AS view_count_7d, sum(p7)::int8 AS view_count_prev_7d,
           sum(pop)::float8 AS popularity_score, sum(c)::float8 / sum(n)::float8 AS avg_completion_rate,
           sum(w) / sum(n)::float8 * 5 AS avg_rating
    FROM (
        SELECT title_id, 0::bigint AS v7, 0::bigint AS p7, views AS n, completed AS c, watch_percentage_sum AS w,
               decayed * %(today_weight)s AS pop
        FROM features_title_total
        UNION ALL
        SELECT title_id, {_DAY_COLUMNS} FROM features_title_day WHERE day >= %(d14)s AND day < %(today)s
        GROUP BY title_id
        UNION ALL
        SELECT title_id, {_PARTIAL_COLUMNS} FROM {VIEWING_TABLE} WHERE {_PARTIAL_WHERE} GROUP BY title_id
    ) parts
    GROUP BY title_id HAVING sum(n) > 0
"""


def content_aggregates_rolled(*, as_of: dt.datetime) -> pd.DataFrame:
    """title_id plus CONTENT_AGGREGATES of every title viewed before `as_of`, from the rollups and today's
    viewings; ValueError unless the rollups are advanced to `as_of`'s day (title_rollups_advance)."""
    if rolled_through() != _floor_day(as_of):
        raise ValueError(f"the title rollups are not advanced to {_floor_day(as_of)}")
    names = ["title_id", *CONTENT_AGGREGATES]
    types = ["int8", "int8", "int8", "float8", "float8", "float8"]
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL work_mem = '256MB'")  # 100K titles and the day's rows hash without spilling
        cursor.execute("SET LOCAL jit = off")  # compiling the plan took 0.2 s of the read
        return pd.DataFrame(
            pgarrays.fetch_columns(_CONTENT_SQL, _windows(as_of), list(zip(names, types, strict=True)), parallel=True)
        )


def title_views_recent(*, title_id: int, as_of: dt.datetime | None = None, days: int = TRENDING_WINDOW_DAYS) -> int:
    """Viewings of one title that started in the `days` before `as_of` (default now): its rolled-up days plus
    the two partial days through the (title_id, started_at) index; a plain count when the rollups are not at
    `as_of`'s day or hold too few days."""
    if days < 1:
        raise ValueError(f"days must be at least 1, got {days}")
    as_of = as_of or timezone.now()
    start = as_of - dt.timedelta(days=days)
    today = _floor_day(as_of)
    with connection.cursor() as cursor:
        if rolled_through() != today or days > ROLLUP_KEEP_DAYS - REROLL_DAYS:
            cursor.execute(
                f"SELECT count(*) FROM {VIEWING_TABLE} WHERE title_id = %s AND started_at >= %s AND started_at < %s",
                [title_id, start, as_of],
            )
            return int(cursor.fetchone()[0])
        cursor.execute(
            f"""
            SELECT coalesce((SELECT sum(views) FROM features_title_day
                             WHERE title_id = %(title)s AND day >= %(first)s AND day < %(today)s), 0)
                 + (SELECT count(*) FROM {VIEWING_TABLE} WHERE title_id = %(title)s
                    AND ((started_at >= %(start)s AND started_at < %(first_start)s)
                         OR (started_at >= %(today_start)s AND started_at < %(as_of)s)))
        """,
            {
                "title": title_id,
                "first": _ceil_day(start),
                "first_start": _midnight(_ceil_day(start)),
                "today": today,
                "today_start": _midnight(today),
                "start": start,
                "as_of": as_of,
            },
        )
        return int(cursor.fetchone()[0])
