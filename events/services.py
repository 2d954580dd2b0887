"""Storing a batch of client events once each and folding the new viewing events into viewing history.

A row's key is (client, client_event_id, item_position): an impression's rows carry its event id and differ by
item position, every other event is item 0 (see Event.item_position). The keys live in EventKey, written first.
An event that names the account (`user_id`) is stored only when that account owns its profile.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

from django.db import connection, transaction

from catalog.models import Title
from config.db.replicas import pin_profiles
from events.models import VIEWING_TYPES, Event, EventKey, EventType
from users.loaders.dataset import COMPLETED_AT
from users.models import Profile, ViewingEvent

SQLITE_CHUNK = 500  # values per IN (...) list or INSERT, well under SQLite's variable limit
_IMPRESSION = EventType.IMPRESSION.value  # a plain string: comparing with the enum member costs a descriptor call


@dataclass(frozen=True, slots=True)
class EventRow:
    """One Event row to store; an impression contributes one per item."""

    client_event_id: str
    type: str
    profile_id: int
    title_id: int
    occurred_at: dt.datetime
    device_type: int
    request_id: str = ""
    row_key: str = ""
    position: int | None = None
    experiment: str = ""
    arm: str = ""
    propensity: float | None = None
    policy: str = ""
    watch_percentage: float | None = None
    started_at: dt.datetime | None = None  # identifies the viewing (play, progress, complete); folded, not stored
    watch_seconds: int = 0  # filled in from the title's runtime before folding

    @property
    def item_position(self) -> int:
        """The key's last part, as the database computes Event.item_position."""
        return (self.position or 0) if self.type == _IMPRESSION else 0

    @property
    def key(self) -> tuple[str, int]:
        return self.client_event_id, self.item_position


@dataclass(frozen=True)
class IncomingEvent:
    """A validated event of the batch: its place in the request, its client id and the rows it stores."""

    index: int
    event_id: str
    rows: tuple[EventRow, ...]
    user_id: int | None = None  # the account, when the client names it: it must own the profile


@dataclass(frozen=True)
class EventError:
    index: int
    event_id: str | None
    errors: dict
    malformed: bool = False  # it does not match the documented schema (else: a content problem, e.g. an unknown id)


@dataclass(frozen=True)
class IngestResult:
    accepted: int  # rows stored by this call
    duplicates: int  # rows already stored (a retry), or repeated within the batch
    errors: list[EventError] = field(default_factory=list)
    folded: int = 0  # viewing-history rows inserted or raised


def events_ingest(*, client_id: int, events: Sequence[IncomingEvent]) -> IngestResult:
    """Store the events whose profile, titles and account check out, each once, and fold the new ones into history."""
    profile_accounts = _profile_accounts({row.profile_id for event in events for row in event.rows})
    runtimes = _title_runtimes({row.title_id for event in events for row in event.rows})
    errors: list[EventError] = []
    rows: list[EventRow] = []
    for event in events:
        problems = _reference_problems(event, profile_accounts, runtimes)
        if problems:
            errors.append(EventError(event.index, event.event_id, problems))
        else:
            rows.extend(_with_watch_seconds(row, runtimes[row.title_id]) for row in event.rows)
    unique_rows = list({row.key: row for row in reversed(rows)}.values())  # the first of repeats wins
    unique_rows.sort(key=lambda row: row.key)  # one lock order for every batch: no deadlocks
    if not unique_rows:
        return IngestResult(accepted=0, duplicates=0, errors=errors)
    # Before the commit, so no read sees the new history without the pin (config/db/replicas.py).
    pin_profiles({row.profile_id for row in unique_rows if row.type in VIEWING_TYPES})
    with transaction.atomic():
        if connection.vendor == "postgresql":
            stored, folded = _store_and_fold_postgres(client_id, unique_rows)
        else:
            stored, folded = _store_and_fold_portable(client_id, unique_rows)
    return IngestResult(accepted=stored, duplicates=len(rows) - stored, errors=errors, folded=folded)


def _profile_accounts(ids: set[int]) -> dict[int, int]:
    """Profile id -> its account's id, for the profiles that exist (one query for the whole batch)."""
    return dict(_id_lookup(Profile._meta.db_table, "id, account_id", ids))


def _title_runtimes(ids: set[int]) -> dict[int, int]:
    return dict(_id_lookup(Title._meta.db_table, "id, duration_minutes", ids))


def _id_lookup(table: str, columns: str, ids: set[int]) -> list[tuple]:
    """Rows of `table` whose id is in `ids`. PostgreSQL: one query with the ids as one array literal (Django's
    IN list of ~1,000 parameters costs several ms of Python per batch); SQLite: IN lists in chunks."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"SELECT {columns} FROM {table} WHERE id = ANY(%s::bigint[])", [_array_literal(ids)])
            return cursor.fetchall()
        rows: list[tuple] = []
        for chunk in _chunks(sorted(ids)):
            cursor.execute(f"SELECT {columns} FROM {table} WHERE id IN ({', '.join(['%s'] * len(chunk))})", chunk)
            rows += cursor.fetchall()
        return rows


def _array_literal(ids: set[int]) -> str:
    return "{" + ",".join(str(int(pk)) for pk in ids) + "}"


def _chunks(values: list) -> Iterable[list]:
    for start in range(0, len(values), SQLITE_CHUNK):
        yield values[start : start + SQLITE_CHUNK]


def _reference_problems(event: IncomingEvent, profile_accounts: dict[int, int], runtimes: dict[int, int]) -> dict:
    problems: dict = {}
    profile_id = event.rows[0].profile_id
    if profile_id not in profile_accounts:
        problems["profile_id"] = [f"Unknown profile {profile_id}."]
    elif event.user_id is not None and profile_accounts[profile_id] != event.user_id:
        problems["user_id"] = [f"Profile {profile_id} does not belong to user {event.user_id}."]
    if event.rows[0].type == EventType.IMPRESSION:
        items = {
            str(i): {"content_id": [f"Unknown title {row.title_id}."]}
            for i, row in enumerate(event.rows)
            if row.title_id not in runtimes
        }
        if items:
            problems["items"] = items
    elif event.rows[0].title_id not in runtimes:
        problems["content_id"] = [f"Unknown title {event.rows[0].title_id}."]
    return problems


def _with_watch_seconds(row: EventRow, runtime_minutes: int) -> EventRow:
    if row.type not in VIEWING_TYPES:
        return row
    return replace(row, watch_seconds=round((row.watch_percentage or 0.0) * runtime_minutes * 60))


_COLUMNS = (
    ("client_event_id", "varchar"),
    ("type", "varchar"),
    ("profile_id", "bigint"),
    ("title_id", "bigint"),
    ("request_id", "varchar"),
    ("row_key", "varchar"),
    ("position", "smallint"),
    ("experiment", "varchar"),
    ("arm", "varchar"),
    ("propensity", "float8"),
    ("policy", "varchar"),
    ("watch_percentage", "float8"),
    ("device_type", "smallint"),
    ("occurred_at", "timestamptz"),
)
_FOLD_COLUMNS = (("started_at", "timestamptz"), ("watch_seconds", "integer"))
_KEY_COLUMNS = (("item_position", "smallint"),)  # computed by the database on insert; read to order and join
_STORED = ", ".join(name for name, _ in _COLUMNS)
_VIEWING_TYPES_SQL = ", ".join(f"'{t.value}'" for t in sorted(VIEWING_TYPES))

# One statement: read the batch from one JSON parameter, insert the keys that are new (events_eventkey: the
# events table is partitioned by month, so it cannot hold a unique key without occurred_at), store exactly
# those rows, and fold them into viewing history, aggregated per viewing (ON CONFLICT DO UPDATE may touch a
# row only once per statement). The inserts run in key order, so concurrent batches take their locks alike. The
# fold joins the new keys (exactly the stored rows): the planner guesses one row for `stored`, an INSERT from a
# join, and would join 1,000 rows by a nested loop over the batch (250 ms a batch instead of a hash join's 1 ms).
# Viewing events are item 0, so the join on the whole key never meets an impression's rows.
# One JSON text costs ~3 ms to build for 1,000 rows; binding 16 arrays cost ~30 ms of psycopg quoting.
_STORE_AND_FOLD_SQL = f"""
WITH incoming AS (
    SELECT * FROM json_to_recordset(%(rows)s::json)
        AS t({", ".join(f"{name} {sql_type}" for name, sql_type in _COLUMNS + _FOLD_COLUMNS + _KEY_COLUMNS)})
),
new_keys AS (
    INSERT INTO events_eventkey (client_id, client_event_id, item_position, occurred_at)
    SELECT %(client_id)s, client_event_id, item_position, occurred_at FROM incoming ORDER BY client_event_id, item_position
    ON CONFLICT (client_id, client_event_id, item_position) DO NOTHING
    RETURNING client_event_id, item_position
),
stored AS (
    INSERT INTO events_event (client_id, received_at, {_STORED})
    SELECT %(client_id)s, %(received_at)s, {_STORED} FROM incoming JOIN new_keys USING (client_event_id, item_position)
    ORDER BY client_event_id, item_position
    RETURNING client_event_id, item_position
),
viewings AS (
    SELECT i.profile_id, i.title_id, i.started_at,
           max(greatest(i.occurred_at, i.started_at)) AS last_watched_at,
           max(i.watch_seconds) AS watch_seconds,
           max(coalesce(i.watch_percentage, 0)) AS watch_percentage,
           (array_agg(i.device_type ORDER BY i.occurred_at))[1] AS device_type,  -- where playback began
           bool_or(i.type = %(complete)s) OR max(coalesce(i.watch_percentage, 0)) >= %(completed_at)s AS completed
    FROM incoming i JOIN new_keys USING (client_event_id, item_position)  -- the stored rows (see stored)
    WHERE i.type IN ({_VIEWING_TYPES_SQL})
    GROUP BY i.profile_id, i.title_id, i.started_at
),
folded AS (
    INSERT INTO users_viewingevent AS v
        (profile_id, title_id, started_at, last_watched_at, watch_seconds, watch_percentage, device_type, completed)
    SELECT profile_id, title_id, started_at, last_watched_at, watch_seconds, watch_percentage, device_type, completed
    FROM viewings ORDER BY profile_id, title_id, started_at
    ON CONFLICT (profile_id, title_id, started_at) DO UPDATE SET
        last_watched_at = greatest(v.last_watched_at, excluded.last_watched_at),
        watch_seconds = greatest(v.watch_seconds, excluded.watch_seconds),
        watch_percentage = greatest(v.watch_percentage, excluded.watch_percentage),
        completed = v.completed OR excluded.completed
    RETURNING 1
)
SELECT (SELECT count(*) FROM stored), (SELECT count(*) FROM folded)
"""
_JSON_NAMES = [name for name, _ in _COLUMNS + _FOLD_COLUMNS + _KEY_COLUMNS]


def _store_and_fold_postgres(client_id: int, rows: list[EventRow]) -> tuple[int, int]:
    params = {
        "rows": json.dumps([{name: getattr(row, name) for name in _JSON_NAMES} for row in rows], default=_iso),
        "client_id": client_id,
        "received_at": _now(),
        "complete": EventType.COMPLETE.value,
        "completed_at": COMPLETED_AT,
    }
    with connection.cursor() as cursor:
        cursor.execute(_STORE_AND_FOLD_SQL, params)
        stored, folded = cursor.fetchone()
    return stored, folded


def _iso(value: dt.datetime) -> str:
    return value.isoformat()


def _store_and_fold_portable(client_id: int, rows: list[EventRow]) -> tuple[int, int]:
    """The embedded default (SQLite): the same outcome in a few ORM queries."""
    ids = sorted({row.client_event_id for row in rows})
    existing = {
        key
        for chunk in _chunks(ids)
        for key in EventKey.objects.filter(client_id=client_id, client_event_id__in=chunk).values_list(
            "client_event_id", "item_position"
        )
    }
    new_rows = [row for row in rows if row.key not in existing]
    received_at = _now()
    EventKey.objects.bulk_create(
        [
            EventKey(
                client_id=client_id,
                client_event_id=row.client_event_id,
                item_position=row.item_position,
                occurred_at=row.occurred_at,
            )
            for row in new_rows
        ],
        batch_size=SQLITE_CHUNK,
    )
    Event.objects.bulk_create(
        [Event(client_id=client_id, received_at=received_at, **_stored_fields(row)) for row in new_rows],
        batch_size=SQLITE_CHUNK,
    )
    return len(new_rows), _fold_portable([row for row in new_rows if row.type in VIEWING_TYPES])


def _stored_fields(row: EventRow) -> dict:
    return {name: getattr(row, name) for name, _ in _COLUMNS}


def _fold_portable(rows: list[EventRow]) -> int:
    viewings: dict[tuple, ViewingEvent] = {}
    for row in sorted(rows, key=lambda r: r.occurred_at):
        key = (row.profile_id, row.title_id, row.started_at)
        incoming = ViewingEvent(
            profile_id=row.profile_id,
            title_id=row.title_id,
            started_at=row.started_at,
            last_watched_at=max(row.occurred_at, row.started_at),
            watch_seconds=row.watch_seconds,
            watch_percentage=row.watch_percentage or 0.0,
            device_type=row.device_type,
            completed=row.type == EventType.COMPLETE or (row.watch_percentage or 0.0) >= COMPLETED_AT,
        )
        viewings[key] = _raised(viewings[key], incoming) if key in viewings else incoming
    stored = {
        (v.profile_id, v.title_id, v.started_at): v
        for chunk in _chunks(sorted({key[0] for key in viewings}))
        for v in ViewingEvent.objects.filter(profile_id__in=chunk, title_id__in={key[1] for key in viewings})
    }
    new = [viewing for key, viewing in viewings.items() if key not in stored]
    raised = [_raised(stored[key], viewing) for key, viewing in viewings.items() if key in stored]
    ViewingEvent.objects.bulk_create(new, batch_size=SQLITE_CHUNK)
    ViewingEvent.objects.bulk_update(
        raised, ["last_watched_at", "watch_seconds", "watch_percentage", "completed"], batch_size=SQLITE_CHUNK
    )
    return len(new) + len(raised)


def _raised(viewing: ViewingEvent, incoming: ViewingEvent) -> ViewingEvent:
    """`viewing` moved forward by `incoming`: the furthest point, the latest time, completed once completed."""
    viewing.last_watched_at = max(viewing.last_watched_at, incoming.last_watched_at)
    viewing.watch_seconds = max(viewing.watch_seconds, incoming.watch_seconds)
    viewing.watch_percentage = max(viewing.watch_percentage, incoming.watch_percentage)
    viewing.completed = viewing.completed or incoming.completed
    return viewing


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
