"""What training reads from the database: interactions and the content catalog, as DataFrames."""
from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
from django.db import connection

from features import pgarrays


def training_interactions(*, until: dt.datetime | None = None) -> pd.DataFrame:
    """Every viewing started before `until` as user_id (profile), content_id (title), rating
    (watch_percentage × 5, so a MovieLens rating comes back as itself) and started_at."""
    where, params = ("WHERE started_at < %s", [until]) if until else ("", [])
    sql = f"SELECT profile_id, title_id, watch_percentage, started_at FROM users_viewingevent {where}"
    if connection.vendor == "postgresql":  # packed columns: ~1.5 µs a row, no Python object per value
        columns = pgarrays.fetch_columns(
            sql, params, [("profile_id", "int8"), ("title_id", "int8"), ("watch_percentage", "float8"),
                          ("started_at", "timestamptz")],
        )  # fmt: skip
    else:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
        frame = pd.DataFrame(rows, columns=["profile_id", "title_id", "watch_percentage", "started_at"])
        columns = {name: frame[name].to_numpy() for name in frame.columns}
        columns["started_at"] = pd.to_datetime(frame["started_at"], utc=True).dt.tz_localize(None).to_numpy()
    return pd.DataFrame(
        {
            "user_id": np.asarray(columns["profile_id"], dtype=np.int64),
            "content_id": np.asarray(columns["title_id"], dtype=np.int64),
            "rating": np.asarray(columns["watch_percentage"], dtype=np.float32) * 5,
            "started_at": columns["started_at"],
        }
    )


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
