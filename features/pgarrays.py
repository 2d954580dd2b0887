"""Query results as numpy columns: PostgreSQL packs each column with `array_send(array_agg(...))`.

One row of bytea comes back per query, which numpy reads in place: no Python object per value. Measured
here: 1.2-2 µs a viewing, against 2.5-6 µs through binary COPY, which costs one Python call per row.
Only fixed-width, NOT NULL columns.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import psycopg
from django.db import connection, transaction

_PG_EPOCH_US = np.datetime64("2000-01-01T00:00:00", "us").astype(np.int64)
_TYPES = {
    "int2": ">i2",
    "int4": ">i4",
    "int8": ">i8",
    "float4": ">f4",
    "float8": ">f8",
    "bool": "u1",
    "timestamptz": ">i8",
}
_HEADER = np.dtype([("ndim", ">i4"), ("has_nulls", ">i4"), ("oid", ">u4"), ("size", ">i4"), ("lower", ">i4")])


def fetch_columns(
    query: str, params: Sequence[Any], columns: Sequence[tuple[str, str]], *, parallel: bool = False
) -> dict[str, np.ndarray]:
    """Run `query`, a SELECT whose output columns are `columns` as (name, pg_type), and return them.

    Timestamps come back as datetime64[us] (UTC), booleans as bool. `parallel` lets PostgreSQL plan
    parallel workers: safe only when `query` ends in a GROUP BY, so that the packing sits serially on top.
    """
    packed = ", ".join(f"array_send(array_agg(q.{name}::{pg_type}))" for name, pg_type in columns)
    with transaction.atomic(), connection.cursor() as wrapper:
        if not parallel:
            # Serial plan: every array_agg of one node sees the rows in the same order, so columns align.
            wrapper.execute("SET LOCAL max_parallel_workers_per_gather = 0")
        with connection.wrap_database_errors, psycopg.Cursor(wrapper.cursor.connection) as cursor:
            cursor.execute(f"SELECT {packed} FROM ({query}) q", params, binary=True)
            row = cursor.fetchone()
    return {name: _unpack(name, pg_type, payload) for (name, pg_type), payload in zip(columns, row, strict=True)}


def _unpack(name: str, pg_type: str, payload: bytes | None) -> np.ndarray:
    value_type = np.dtype(_TYPES[pg_type])
    if payload is None:  # array_agg over no rows
        values = np.empty(0, dtype=value_type)
    else:
        header = np.frombuffer(payload, _HEADER, 1)[0]
        if header["ndim"] != 1 or header["has_nulls"]:
            raise ValueError(f"column {name} has NULLs or is not one-dimensional")
        elements = np.frombuffer(payload, np.dtype([("length", ">i4"), ("value", value_type)]), offset=_HEADER.itemsize)
        if len(elements) != header["size"] or (elements["length"] != value_type.itemsize).any():
            raise ValueError(f"column {name} is not {pg_type}")
        values = elements["value"]
    if pg_type == "timestamptz":
        return (values.astype(np.int64) + _PG_EPOCH_US).astype("datetime64[us]")
    if pg_type == "bool":
        return values.astype(bool)
    return values.astype(value_type.newbyteorder("="))
