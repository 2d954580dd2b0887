"""Bulk-load plumbing shared by the data loaders: staged upserts, binary COPY, deferred indexes.

PostgreSQL gets COPY (text for modest tables, binary built from numpy arrays for the big ones);
SQLite, the embedded default, gets batched `INSERT ... ON CONFLICT` through executemany.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from queue import Empty, Queue
from typing import TypeVar

import numpy as np
import pandas as pd
from django.db import connection

from config import partitions

SQLITE_BATCH_ROWS = 5_000
T = TypeVar("T")

# PostgreSQL's binary COPY wants timestamps as microseconds since 2000-01-01 UTC.
_PG_EPOCH_US = np.datetime64("2000-01-01T00:00:00", "us").astype(np.int64)
_BINARY_HEADER = b"PGCOPY\n\xff\r\n\x00" + np.array([0, 0], dtype=">i4").tobytes()
_BINARY_TRAILER = np.array([-1], dtype=">i2").tobytes()
_BINARY_TYPES = {
    "int2": ">i2",
    "int4": ">i4",
    "int8": ">i8",
    "float4": ">f4",
    "float8": ">f8",
    "bool": "u1",
    "timestamptz": ">i8",
}


def is_postgres() -> bool:
    return connection.vendor == "postgresql"


def _quoted(names: Sequence[str]) -> str:
    return ", ".join(connection.ops.quote_name(n) for n in names)


def _copy_csv(cursor, table: str, frame: pd.DataFrame) -> None:
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, header=False, na_rep="\\N")
    sql = f"COPY {connection.ops.quote_name(table)} ({_quoted(frame.columns)}) FROM STDIN (FORMAT CSV, NULL '\\N')"
    with connection.wrap_database_errors, cursor.copy(sql) as copy:
        copy.write(buffer.getvalue())


def upsert_frame(
    table: str,
    frame: pd.DataFrame,
    *,
    conflict_columns: Sequence[str],
    update_columns: Sequence[str] = (),
) -> int:
    """Insert `frame` into `table`; rows whose `conflict_columns` exist are updated or left alone.

    Runs in the caller's transaction; returns the rows inserted or updated. Column names of `frame` are
    the table's column names.
    """
    if frame.empty:
        return 0
    columns = list(frame.columns)
    if update_columns:
        action = "DO UPDATE SET " + ", ".join(
            f"{connection.ops.quote_name(c)} = EXCLUDED.{connection.ops.quote_name(c)}" for c in update_columns
        )
    else:
        action = "DO NOTHING"
    if not is_postgres():
        return _sqlite_insert(table, frame, skip_conflicts_on=conflict_columns, action=action)
    return _staged_insert(
        table,
        columns,
        conflict=f"({_quoted(conflict_columns)}) {action}",
        fill=lambda c, stage: _copy_csv(c, stage, frame),
    )


def _staged_insert(table: str, columns: Sequence[str], *, conflict: str, fill) -> int:
    """COPY into a temporary twin of `table` (via `fill(psycopg_cursor, stage)`), then INSERT ... ON CONFLICT."""
    names = _quoted(columns)
    quoted_table = connection.ops.quote_name(table)
    stage = f"stage_{table}"
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {stage}")
        cursor.execute(f"CREATE TEMP TABLE {stage} ON COMMIT DROP AS SELECT {names} FROM {quoted_table} WITH NO DATA")
        fill(cursor.cursor, stage)
        cursor.execute(f"INSERT INTO {quoted_table} ({names}) SELECT {names} FROM {stage} ON CONFLICT {conflict}")
        written = cursor.rowcount
        cursor.execute(f"DROP TABLE {stage}")
    return written


def _python_rows(frame: pd.DataFrame) -> list[tuple]:
    """Rows as tuples of plain Python values (None for missing), as the SQLite driver wants them."""
    columns = []
    for name in frame.columns:
        series = frame[name]
        if pd.api.types.is_datetime64_any_dtype(series):
            columns.append(_sqlite_datetimes(series))
        else:
            values = series.astype(object).where(series.notna(), None).tolist()
            columns.append([v.item() if isinstance(v, np.generic) else v for v in values])
    return list(zip(*columns, strict=True))


def _sqlite_datetimes(series: pd.Series) -> list[str | None]:
    """Django's SQLite storage format: naive UTC, `YYYY-MM-DD HH:MM:SS[.ffffff]` (microseconds only when set)."""
    if series.dt.tz is not None:
        series = series.dt.tz_convert("UTC").dt.tz_localize(None)
    whole = series.dt.strftime("%Y-%m-%d %H:%M:%S")
    text = whole.where(series.dt.microsecond == 0, series.dt.strftime("%Y-%m-%d %H:%M:%S.%f"))
    return text.astype(object).where(series.notna(), None).tolist()


def copy_arrays(
    table: str, columns: dict[str, tuple[str, np.ndarray]], *, skip_conflicts_on: Sequence[str] = ()
) -> int:
    """Append rows given as equal-length numpy arrays, `{column: (pg_type, values)}`; returns rows written.

    PostgreSQL: one binary COPY built with numpy (no per-row Python); with `skip_conflicts_on`, the rows go
    through a temporary stage and those that collide on those columns are skipped. Timestamps are
    datetime64 arrays. SQLite: batched executemany.
    """
    lengths = {len(values) for _, values in columns.values()}
    if len(lengths) != 1:
        raise ValueError(f"columns of {table} have different lengths: {sorted(lengths)}")
    if lengths.pop() == 0:
        return 0
    if not is_postgres():
        frame = pd.DataFrame({name: values for name, (_, values) in columns.items()})
        for name, (pg_type, _) in columns.items():
            if pg_type == "timestamptz":
                frame[name] = pd.to_datetime(frame[name], utc=True)
        return _sqlite_insert(table, frame, skip_conflicts_on=skip_conflicts_on)
    _ensure_partitions(table, columns)
    if not skip_conflicts_on:
        return _copy_binary(table, columns)
    return _staged_insert(
        table,
        list(columns),
        conflict=f"({_quoted(skip_conflicts_on)}) DO NOTHING",
        fill=lambda c, stage: _copy_binary(stage, columns),
    )


def _ensure_partitions(table: str, columns: dict[str, tuple[str, np.ndarray]]) -> None:
    """A partitioned table (config.partitions) gets the month partitions of these rows before the COPY, which
    PostgreSQL then routes; none of them lands in the default partition."""
    spec = next((s for s in partitions.PARTITIONED_TABLES if s.table == table), None)
    if spec is not None and spec.key in columns:
        partitions.ensure_months(spec, partitions.months_of(columns[spec.key][1]))


def _copy_binary(table: str, columns: dict[str, tuple[str, np.ndarray]]) -> int:
    n_rows = len(next(iter(columns.values()))[1])
    fields = [("field_count", ">i2")]
    for i, (pg_type, _) in enumerate(columns.values()):
        fields += [(f"len{i}", ">i4"), (f"val{i}", _BINARY_TYPES[pg_type])]
    rows = np.empty(n_rows, dtype=np.dtype(fields))
    rows["field_count"] = len(columns)
    for i, (pg_type, values) in enumerate(columns.values()):
        rows[f"len{i}"] = np.dtype(_BINARY_TYPES[pg_type]).itemsize
        if pg_type == "timestamptz":
            rows[f"val{i}"] = values.astype("datetime64[us]").astype(np.int64) - _PG_EPOCH_US
        else:
            rows[f"val{i}"] = values
    sql = f"COPY {connection.ops.quote_name(table)} ({_quoted(list(columns))}) FROM STDIN (FORMAT BINARY)"
    # The raw psycopg cursor: wrap its errors so callers see Django's IntegrityError and friends.
    with connection.wrap_database_errors, connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
        copy.write(_BINARY_HEADER)
        copy.write(rows.tobytes())
        copy.write(_BINARY_TRAILER)
    return n_rows


def _sqlite_insert(table: str, frame: pd.DataFrame, *, skip_conflicts_on: Sequence[str] = (), action: str = "") -> int:
    columns = list(frame.columns)
    placeholders = ", ".join(["%s"] * len(columns))
    sql = f"INSERT INTO {connection.ops.quote_name(table)} ({_quoted(columns)}) VALUES ({placeholders})"
    if skip_conflicts_on:
        sql += f" ON CONFLICT ({_quoted(skip_conflicts_on)}) {action or 'DO NOTHING'}"
    rows = _python_rows(frame)
    written = 0
    with connection.cursor() as cursor:
        for start in range(0, len(rows), SQLITE_BATCH_ROWS):
            cursor.executemany(sql, rows[start : start + SQLITE_BATCH_ROWS])
            written += max(cursor.rowcount, 0)
    return written


@dataclass(frozen=True)
class IndexRebuild:
    """Indexes and constraints dropped by `drop_indexes`, to be rebuilt once the rows are in."""

    table: str
    indexes: list[tuple[str, str]]
    constraints: list[tuple[str, str]]

    def rebuild(self, *, maintenance_work_mem: str = "1GB") -> None:
        if not self.indexes and not self.constraints:
            return
        quoted_table = connection.ops.quote_name(self.table)
        with connection.cursor() as cursor:
            cursor.execute(f"SET LOCAL maintenance_work_mem = '{maintenance_work_mem}'")
            cursor.execute("SET LOCAL max_parallel_maintenance_workers = 2")
            for _, definition in self.indexes:
                # A partitioned table's index reads "ON ONLY parent": built that way it would cover no partition.
                cursor.execute(definition.replace(" ON ONLY ", " ON ", 1))
            for name, definition in reversed(self.constraints):
                cursor.execute(
                    f"ALTER TABLE {quoted_table} ADD CONSTRAINT {connection.ops.quote_name(name)} {definition}"
                )


def drop_indexes(table: str) -> IndexRebuild:
    """Drop `table`'s secondary indexes, unique and foreign-key constraints (PostgreSQL; a no-op elsewhere).

    Loading tens of millions of rows and then building each index once is several times faster than
    maintaining the indexes row by row. Call inside `transaction.atomic()` and call `.rebuild()` after the
    load: if anything fails in between, the rollback brings every index and constraint back. The rebuild
    validates the unique and foreign-key constraints, so bad rows still fail the load. On a partitioned table
    the parent's indexes and constraints are dropped and rebuilt, which cascades to every partition (partitions
    created during the load get them at the rebuild too); the primary key stays.
    """
    if not is_postgres():
        return IndexRebuild(table, [], [])
    if not connection.in_atomic_block:
        raise RuntimeError("drop_indexes must run inside transaction.atomic()")
    with connection.cursor() as cursor:
        # Pending deferred FK checks on related tables would block the ALTER TABLEs below.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute(
            """
            SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint
            WHERE conrelid = %s::regclass AND contype IN ('u', 'f')
            ORDER BY contype DESC
            """,
            [table],
        )
        constraints = cursor.fetchall()
        cursor.execute(
            """
            SELECT indexname, indexdef FROM pg_indexes i
            WHERE i.tablename = %s AND NOT EXISTS (
                SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname AND c.conrelid = %s::regclass
            )
            """,
            [table, table],
        )
        indexes = cursor.fetchall()
        quoted_table = connection.ops.quote_name(table)
        for name, _ in constraints:
            cursor.execute(f"ALTER TABLE {quoted_table} DROP CONSTRAINT {connection.ops.quote_name(name)}")
        for name, _ in indexes:
            cursor.execute(f"DROP INDEX {connection.ops.quote_name(name)}")
    return IndexRebuild(table, indexes, constraints)


def prefetched(items: Iterable[T], *, depth: int = 1) -> Iterator[T]:
    """Iterate `items` while a background thread produces the next ones.

    Lets numpy build chunk n+1 while the database ingests chunk n (both release the GIL for most of
    their work). Exceptions from the producer surface in the consumer.
    """
    queue: Queue = Queue(maxsize=depth)
    done = object()
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                if stop.is_set():
                    return
                queue.put(item)
            queue.put(done)
        except BaseException as error:  # handed to the consumer, which re-raises it
            queue.put(error)

    worker = threading.Thread(target=produce, name="prefetch", daemon=True)
    worker.start()
    try:
        while True:
            item = queue.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while worker.is_alive():  # unblock a producer waiting on a full queue
            try:
                queue.get_nowait()
            except Empty:
                worker.join(timeout=0.05)
