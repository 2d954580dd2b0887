"""What training reads from the database: interactions and the content catalog, as DataFrames."""

from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
from django.db import connection
from django.db.models import Count

from config import partitions as config_partitions
from events.models import Event, EventType
from features import pgarrays
from users.models import ViewingEvent

VIEWING_TABLE = ViewingEvent._meta.db_table
PROFILES_PER_READ = 100_000  # ~5M viewings a query: PostgreSQL caps one packed column at 1 GB
READ_THREADS = 2  # month partitions read at once, each on its own connection: PostgreSQL packs them in parallel
_COLUMNS = ["profile_id", "title_id", "watch_percentage", "started_at"]
_TYPES = ["int8", "int8", "float4", "timestamptz"]  # float4 as the rating is stored: half the bytes


def training_interactions(*, until: dt.datetime | None = None) -> pd.DataFrame:
    """Every viewing started before `until` as user_id (profile), content_id (title), rating
    (watch_percentage × 5, so a MovieLens rating comes back as itself) and started_at.

    Partitioned history is read one month partition a query (a sequential scan each, READ_THREADS at once);
    otherwise in ranges of PROFILES_PER_READ profiles."""
    partitions = [
        p for p in config_partitions.partitions(VIEWING_TABLE) if until is None or p.start is None or p.start < until
    ]
    if partitions:
        parts = _read_partitions([p.name for p in partitions], until)
    else:
        parts = [_read_profiles(start, end, until) for start, end in _profile_ranges()]
    frame = {}
    for name, column, dtype in (
        ("profile_id", "user_id", np.int64),
        ("title_id", "content_id", np.int64),
        ("watch_percentage", "rating", np.float32),
        ("started_at", "started_at", "datetime64[us]"),
    ):  # one column at a time, each part's copy dropped as it joins: 50M viewings peak at ~1.8 GB, not 4
        pieces = [np.asarray(part.pop(name)).astype(dtype, copy=False) for part in parts]
        frame[column] = np.concatenate(pieces) if pieces else np.empty(0, dtype)
        del pieces
    frame["rating"] *= 5
    return pd.DataFrame(frame, copy=False)


def _read_partitions(names: list[str], until: dt.datetime | None) -> list[dict[str, np.ndarray]]:
    """Each partition's columns, in `names`' order. Inside a transaction on this connection only: another
    connection would not see its writes (tests)."""
    where, params = ("WHERE started_at < %s", [until]) if until else ("", [])

    def read(name: str) -> dict[str, np.ndarray]:
        sql = f"SELECT {', '.join(_COLUMNS)} FROM {connection.ops.quote_name(name)} {where}"
        return pgarrays.fetch_columns(sql, params, list(zip(_COLUMNS, _TYPES, strict=True)))

    if connection.in_atomic_block or READ_THREADS < 2 or len(names) < 2:
        return [read(name) for name in names]

    def read_and_close(name: str) -> dict[str, np.ndarray]:
        try:
            return read(name)
        finally:
            connection.close()  # this pool thread's own connection

    with ThreadPoolExecutor(READ_THREADS) as pool:
        return list(pool.map(read_and_close, names))


def _read_profiles(start: int, end: int, until: dt.datetime | None) -> dict[str, np.ndarray]:
    conditions, params = ["profile_id >= %s", "profile_id < %s"], [start, end]
    if until:
        conditions.append("started_at < %s")
        params.append(until)
    sql = f"SELECT {', '.join(_COLUMNS)} FROM {VIEWING_TABLE} WHERE {' AND '.join(conditions)}"
    if connection.vendor == "postgresql":  # packed columns: ~1.5 µs a row, no Python object per value
        return pgarrays.fetch_columns(sql, params, list(zip(_COLUMNS, _TYPES, strict=True)))
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        frame = pd.DataFrame(cursor.fetchall(), columns=_COLUMNS)
    frame["started_at"] = pd.to_datetime(frame["started_at"], utc=True).dt.tz_localize(None)
    return {name: frame[name].to_numpy() for name in _COLUMNS}


def _profile_ranges() -> list[tuple[int, int]]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT min(id), max(id) FROM users_profile")
        low, high = cursor.fetchone()
    if low is None:
        return []
    return [(start, min(start + PROFILES_PER_READ, high + 1)) for start in range(low, high + 1, PROFILES_PER_READ)]


def title_impression_counts(*, until: dt.datetime | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(title ids sorted, impressions of each) over the stored impression events before `until`: one aggregate."""
    rows = Event.objects.filter(type=EventType.IMPRESSION.value)
    if until:
        rows = rows.filter(occurred_at__lt=until)
    counted = list(rows.values_list("title_id").annotate(n=Count("id")).order_by("title_id"))
    return np.array([t for t, _ in counted], np.int64), np.array([n for _, n in counted], np.int64)


def content_catalog() -> pd.DataFrame:
    """content_id plus genres, cast and directors as lists of tokens, for content similarity."""
    titles = _frame("SELECT id FROM catalog_title ORDER BY id", ["content_id"])
    genres = _frame("SELECT title_id, genre_id FROM catalog_title_genres", ["content_id", "token"])
    credits = _frame("SELECT title_id, person_id, role FROM catalog_credit", ["content_id", "token", "role"])
    catalog = titles.set_index("content_id")
    for column, links in (
        ("genres", genres),
        ("cast", credits[credits["role"] == "cast"]),
        ("directors", credits[credits["role"] == "director"]),
    ):
        tokens = links.assign(token=links["token"].astype(str)).groupby("content_id")["token"].agg(list)
        catalog[column] = tokens.reindex(catalog.index)
        catalog[column] = catalog[column].apply(lambda value: value if isinstance(value, list) else [])
    return catalog.reset_index()


def _frame(sql: str, columns: list[str]) -> pd.DataFrame:
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return pd.DataFrame(cursor.fetchall(), columns=columns)
