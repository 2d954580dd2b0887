"""What training reads from the database: interactions and the content catalog, as DataFrames."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
from django.db import connection
from django.db.models import Count

from events.models import Event, EventType
from features import pgarrays

PROFILES_PER_READ = 100_000  # ~5M viewings a query: PostgreSQL caps one packed column at 1 GB


def training_interactions(*, until: dt.datetime | None = None) -> pd.DataFrame:
    """Every viewing started before `until` as user_id (profile), content_id (title), rating
    (watch_percentage × 5, so a MovieLens rating comes back as itself) and started_at."""
    names = ["profile_id", "title_id", "watch_percentage", "started_at"]
    conditions, params = ["profile_id >= %s", "profile_id < %s"], []
    if until:
        conditions.append("started_at < %s")
        params.append(until)
    sql = f"SELECT {', '.join(names)} FROM users_viewingevent WHERE {' AND '.join(conditions)}"
    parts = []
    for start, end in _profile_ranges():
        if connection.vendor == "postgresql":  # packed columns: ~1.5 µs a row, no Python object per value
            types = ["int8", "int8", "float8", "timestamptz"]
            parts.append(pgarrays.fetch_columns(sql, [start, end, *params], list(zip(names, types, strict=True))))
        else:
            with connection.cursor() as cursor:
                cursor.execute(sql, [start, end, *params])
                frame = pd.DataFrame(cursor.fetchall(), columns=names)
            frame["started_at"] = pd.to_datetime(frame["started_at"], utc=True).dt.tz_localize(None)
            parts.append({name: frame[name].to_numpy() for name in names})
    columns = {name: np.concatenate([part[name] for part in parts]) if parts else np.empty(0) for name in names}
    return pd.DataFrame(
        {
            "user_id": columns["profile_id"].astype(np.int64),
            "content_id": columns["title_id"].astype(np.int64),
            "rating": columns["watch_percentage"].astype(np.float32) * 5,
            "started_at": columns["started_at"].astype("datetime64[us]"),
        }
    )


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
