"""Monthly range partitions of the big time-ordered tables (PostgreSQL; every function is a no-op elsewhere).

Viewing history (users_viewingevent, by started_at) and API events (events_event, by occurred_at) are declaratively
partitioned: one partition per calendar month (UTC) named `<table>_pYYYY_MM`, plus `<table>_default`, which catches
a row no month partition covers, so no insert ever fails. Every index and constraint is declared on the parent
and cascades to each partition; the primary key is (id, key), as PostgreSQL requires the partition key in every
unique constraint. Creating a month moves its rows out of the default partition first, so it works whatever the
default holds. Dropping months (retention) detaches and drops whole partitions and deletes the default's rows
older than the cutoff. All of it is idempotent and runs in the caller's transaction.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from django.db import connection, transaction

_BOUND = re.compile(r"FOR VALUES FROM \('([^']+)'\) TO \('([^']+)'\)")


@dataclass(frozen=True)
class PartitionedTable:
    table: str
    key: str  # the timestamptz column the months are cut on
    # (table, timestamp column) of a plain side table whose rows go with the months they belong to
    side_table: tuple[str, str] | None = None


VIEWING_EVENTS = PartitionedTable("users_viewingevent", "started_at")
API_EVENTS = PartitionedTable("events_event", "occurred_at", side_table=("events_eventkey", "occurred_at"))
PARTITIONED_TABLES = (VIEWING_EVENTS, API_EVENTS)


@dataclass(frozen=True)
class Partition:
    name: str
    start: dt.datetime | None  # None for the default partition
    end: dt.datetime | None


def is_postgres() -> bool:
    return connection.vendor == "postgresql"


def month_start(moment: dt.datetime | dt.date) -> dt.datetime:
    return dt.datetime(moment.year, moment.month, 1, tzinfo=dt.UTC)


def add_months(month: dt.datetime, months: int) -> dt.datetime:
    index = month.year * 12 + month.month - 1 + months
    return dt.datetime(index // 12, index % 12 + 1, 1, tzinfo=dt.UTC)


def months_between(first: dt.datetime, last: dt.datetime) -> list[dt.datetime]:
    """Month starts from `first`'s month to `last`'s month, both included."""
    month, end, months = month_start(first), month_start(last), []
    while month <= end:
        months.append(month)
        month = add_months(month, 1)
    return months


def partition_name(table: str, month: dt.datetime) -> str:
    return f"{table}_p{month.year:04d}_{month.month:02d}"


def default_name(table: str) -> str:
    return f"{table}_default"


def is_partitioned(table: str) -> bool:
    if not is_postgres():
        return False
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_partitioned_table WHERE partrelid = to_regclass(%s)", [table])
        return cursor.fetchone() is not None


def partitions(table: str) -> list[Partition]:
    """`table`'s partitions, the months in time order, then the default one."""
    if not is_postgres():
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
            WHERE i.inhparent = to_regclass(%s)
            """,
            [table],
        )
        rows = cursor.fetchall()
    found = []
    for name, bound in rows:
        match = _BOUND.search(bound)
        if match:
            found.append(Partition(name, *(_timestamp(text) for text in match.groups())))
        else:
            found.append(Partition(name, None, None))
    return sorted(found, key=lambda p: (p.start is None, p.start or dt.datetime.min.replace(tzinfo=dt.UTC)))


def _timestamp(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).astimezone(dt.UTC)


def ensure_months(spec: PartitionedTable, months: Iterable[dt.datetime], *, lock_timeout_ms: int = 0) -> list[str]:
    """Create the month partitions of `months` that are missing; returns the names created.

    Rows of those months already in the default partition move into their new partition.
    """
    if not is_partitioned(spec.table):
        return []
    existing = {p.start for p in partitions(spec.table) if p.start is not None}
    missing = sorted({month_start(m) for m in months} - existing)
    if not missing:
        return []
    with connection.cursor() as cursor:
        if lock_timeout_ms:
            cursor.execute(f"SET LOCAL lock_timeout = {int(lock_timeout_ms)}")
        # Pending deferred FK checks on the table would block the DDL below: run them now.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        for month in missing:
            _create_month(cursor, spec, month)
    return [partition_name(spec.table, m) for m in missing]


def months_of(timestamps: np.ndarray) -> list[dt.datetime]:
    """The distinct months (UTC) of a datetime64 array: what a loader's chunk needs before its COPY."""
    months = np.unique(np.asarray(timestamps).astype("datetime64[M]"))
    return [dt.datetime.fromisoformat(f"{m}-01").replace(tzinfo=dt.UTC) for m in months.astype(str)]


def create_ahead(spec: PartitionedTable, *, months_ahead: int, now: dt.datetime, lock_timeout_ms: int = 0) -> list[str]:
    """This month and the next `months_ahead` months, created where missing."""
    return ensure_months(
        spec, months_between(now, add_months(month_start(now), months_ahead)), lock_timeout_ms=lock_timeout_ms
    )


def _create_month(cursor, spec: PartitionedTable, month: dt.datetime) -> None:
    quote = connection.ops.quote_name
    parent, default = quote(spec.table), quote(default_name(spec.table))
    start, end = month, add_months(month, 1)
    cursor.execute(
        f"SELECT 1 FROM {default} WHERE {quote(spec.key)} >= %s AND {quote(spec.key)} < %s LIMIT 1", [start, end]
    )
    strays = cursor.fetchone() is not None
    if strays:  # PostgreSQL refuses a partition whose rows sit in the default: move them through a temporary table
        columns = ", ".join(quote(c) for c in stored_columns(spec.table))
        cursor.execute(
            f"CREATE TEMP TABLE _partition_strays ON COMMIT DROP AS SELECT {columns} FROM {parent} WITH NO DATA"
        )
        cursor.execute(
            f"WITH moved AS (DELETE FROM {default} WHERE {quote(spec.key)} >= %s AND {quote(spec.key)} < %s "
            f"RETURNING {columns}) INSERT INTO _partition_strays SELECT * FROM moved",
            [start, end],
        )
    cursor.execute(_create_partition_sql(spec.table, month))
    if strays:
        cursor.execute(f"INSERT INTO {parent} ({columns}) SELECT {columns} FROM _partition_strays")
        cursor.execute("DROP TABLE _partition_strays")


def _create_partition_sql(table: str, month: dt.datetime) -> str:
    # Literal bounds: DDL takes no parameters; both are our own ISO timestamps.
    quote = connection.ops.quote_name
    start, end = month.isoformat(), add_months(month, 1).isoformat()
    return f"CREATE TABLE {quote(partition_name(table, month))} PARTITION OF {quote(table)} FOR VALUES FROM ('{start}') TO ('{end}')"


def stored_columns(table: str) -> list[str]:
    """The columns one can write (generated ones excluded), in table order."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(%s) AND attnum > 0 AND NOT attisdropped
            AND attgenerated = '' ORDER BY attnum
            """,
            [table],
        )
        return [name for (name,) in cursor.fetchall()]


def drop_before(spec: PartitionedTable, *, cutoff: dt.datetime, lock_timeout_ms: int = 0) -> list[str]:
    """Detach and drop the month partitions that end on or before `cutoff`, and delete the default partition's
    rows older than it and the side table's; returns the partitions dropped. Idempotent."""
    if not is_partitioned(spec.table):
        return []
    quote = connection.ops.quote_name
    old = [p for p in partitions(spec.table) if p.end is not None and p.end <= cutoff]
    with connection.cursor() as cursor:
        if lock_timeout_ms:
            cursor.execute(f"SET LOCAL lock_timeout = {int(lock_timeout_ms)}")
        for partition in old:
            cursor.execute(f"ALTER TABLE {quote(spec.table)} DETACH PARTITION {quote(partition.name)}")
            cursor.execute(f"DROP TABLE {quote(partition.name)}")
        cursor.execute(f"DELETE FROM {quote(default_name(spec.table))} WHERE {quote(spec.key)} < %s", [cutoff])
        if spec.side_table:
            side, column = spec.side_table
            cursor.execute(f"DELETE FROM {quote(side)} WHERE {quote(column)} < %s", [cutoff])
    return [p.name for p in old]


LOCK_TIMEOUT_MS = 5_000  # the job gives up (and retries later) rather than queue every query behind its DDL


def partitions_maintain(*, months_ahead: int, retention_months: int, now: dt.datetime) -> int:
    """Every partitioned table: this month and `months_ahead` more exist; months that ended `retention_months`
    or more months before this one are dropped (0: none). Returns the partitions created plus dropped."""
    changed = 0
    for spec in PARTITIONED_TABLES:
        with transaction.atomic():
            changed += len(create_ahead(spec, months_ahead=months_ahead, now=now, lock_timeout_ms=LOCK_TIMEOUT_MS))
        if retention_months > 0:
            cutoff = add_months(month_start(now), -retention_months)
            with transaction.atomic():
                changed += len(drop_before(spec, cutoff=cutoff, lock_timeout_ms=LOCK_TIMEOUT_MS))
    return changed


def vacuum_newest(table: str, *, months: int = 2) -> list[str]:
    """VACUUM (ANALYZE) the newest `months` non-empty month partitions: a title's recent views are an index-only
    scan only once the visibility map covers them (at 50M rows: 268 ms before, 13 ms after, for 1.2 s of work).
    Autovacuum gets there minutes after a big load; a loader calls this to be there at once. Outside a
    transaction (VACUUM refuses one); returns the partitions vacuumed."""
    if not is_postgres() or connection.in_atomic_block:
        return []
    filled = [p.name for p in partitions(table) if p.start is not None and _has_rows(p.name)]
    newest = filled[-months:] if months > 0 else []
    with connection.cursor() as cursor:
        for name in newest:
            cursor.execute(f"VACUUM (ANALYZE) {connection.ops.quote_name(name)}")
    return newest


def _has_rows(name: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT EXISTS (SELECT 1 FROM {connection.ops.quote_name(name)})")
        return bool(cursor.fetchone()[0])


def partition_sizes(table: str) -> list[dict]:
    """Each partition's name, bounds, estimated rows and bytes (heap plus indexes), for benches and the docs."""
    if not is_postgres():
        return []
    sizes = []
    with connection.cursor() as cursor:
        for partition in partitions(table):
            cursor.execute(
                "SELECT reltuples::bigint, pg_total_relation_size(oid) FROM pg_class WHERE oid = to_regclass(%s)",
                [partition.name],
            )
            rows, size = cursor.fetchone()
            sizes.append(
                {
                    "name": partition.name,
                    "start": partition.start and partition.start.isoformat(),
                    "rows_estimate": max(int(rows), 0),
                    "bytes": int(size),
                }
            )
    return sizes


# --- converting a plain table (the migrations) ---------------------------------------------------------------------


def convert_to_partitioned(spec: PartitionedTable, *, months_ahead: int, now: dt.datetime | None = None) -> None:
    """Turn the plain table `spec.table` into a partitioned one with the same columns, defaults, checks,
    indexes, unique and foreign-key constraints, and rows (PostgreSQL; call inside the migration's transaction).

    Rename the old table, create the partitioned one, one month partition per month its rows span up to
    `months_ahead` months past `now` and the default one, copy the rows in one INSERT ... SELECT (routed by
    PostgreSQL), build the indexes and constraints once, drop the old table. The id keeps counting from where
    it was (a sequence owned by the column: identity columns on partitioned tables need PostgreSQL 17).
    """
    if not is_postgres() or is_partitioned(spec.table):
        return
    quote = connection.ops.quote_name
    table, key = spec.table, spec.key
    old = f"{table}_unpartitioned"
    sequence = f"{table}_id_seq"
    now = now or dt.datetime.now(dt.UTC)
    with connection.cursor() as cursor:
        cursor.execute(f"LOCK TABLE {quote(table)} IN ACCESS EXCLUSIVE MODE")
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        constraints, indexes = _own_constraints_and_indexes(cursor, table)
        for name, contype, definition in constraints:
            if contype == "u" and key not in definition:
                raise RuntimeError(f"{table}.{name} {definition} does not include the partition key {key}")
        cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [table])
        (old_sequence,) = cursor.fetchone()
        # Only the months that hold rows (MovieLens's 1997 and today's must not fill the gap with empty months).
        cursor.execute(f"SELECT DISTINCT date_trunc('month', {quote(key)} AT TIME ZONE 'UTC') FROM {quote(table)}")
        filled = [month_start(month) for (month,) in cursor.fetchall()]

        # Free every name the new table takes: the table, its sequence, its indexes and constraints.
        for name, _, _ in constraints:
            cursor.execute(f"ALTER TABLE {quote(table)} DROP CONSTRAINT {quote(name)}")
        for name, _ in indexes:
            cursor.execute(f"DROP INDEX {quote(name)}")
        cursor.execute(f"ALTER TABLE {quote(table)} RENAME TO {quote(old)}")
        if old_sequence:
            cursor.execute(f"ALTER SEQUENCE {old_sequence} RENAME TO {quote(old + '_id_seq')}")

        cursor.execute(
            f"CREATE TABLE {quote(table)} (LIKE {quote(old)} INCLUDING DEFAULTS INCLUDING GENERATED "
            f"INCLUDING CONSTRAINTS INCLUDING STORAGE INCLUDING COMMENTS) PARTITION BY RANGE ({quote(key)})"
        )
        cursor.execute(f"CREATE SEQUENCE {quote(sequence)} OWNED BY {quote(table)}.id")
        cursor.execute(f"ALTER TABLE {quote(table)} ALTER COLUMN id SET DEFAULT nextval('{sequence}'::regclass)")
        cursor.execute(f"SELECT coalesce(max(id), 0) FROM {quote(old)}")
        (highest,) = cursor.fetchone()
        if old_sequence:
            cursor.execute(f"SELECT greatest(nextval('{quote(old + '_id_seq')}'), %s + 1)", [highest])
            (highest,) = cursor.fetchone()
            highest -= 1
        cursor.execute("SELECT setval(%s, %s, %s)", [sequence, max(highest, 1), highest > 0])

        cursor.execute(f"CREATE TABLE {quote(default_name(table))} PARTITION OF {quote(table)} DEFAULT")
        ahead = months_between(now, add_months(month_start(now), months_ahead))
        for month in sorted(set(filled) | set(ahead)):
            cursor.execute(_create_partition_sql(table, month))
        columns = ", ".join(quote(c) for c in stored_columns(old))
        cursor.execute(f"INSERT INTO {quote(table)} ({columns}) SELECT {columns} FROM {quote(old)}")
        cursor.execute(f"DROP TABLE {quote(old)}")

        cursor.execute("SET LOCAL maintenance_work_mem = '1GB'")
        for name, contype, definition in reversed(constraints):
            if contype == "p":
                definition = f"PRIMARY KEY (id, {quote(key)})"
            cursor.execute(f"ALTER TABLE {quote(table)} ADD CONSTRAINT {quote(name)} {definition}")
        for _, definition in indexes:
            cursor.execute(definition)
        cursor.execute(f"ANALYZE {quote(table)}")


def convert_to_plain(spec: PartitionedTable) -> None:
    """The reverse of `convert_to_partitioned`: one plain table again, the primary key back to (id)."""
    if not is_partitioned(spec.table):
        return
    quote = connection.ops.quote_name
    table, old = spec.table, f"{spec.table}_partitioned"
    with connection.cursor() as cursor:
        cursor.execute(f"LOCK TABLE {quote(table)} IN ACCESS EXCLUSIVE MODE")
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        constraints, indexes = _own_constraints_and_indexes(cursor, table)
        for name, _, _ in constraints:
            cursor.execute(f"ALTER TABLE {quote(table)} DROP CONSTRAINT {quote(name)}")
        for name, _ in indexes:
            cursor.execute(f"DROP INDEX {quote(name)}")
        cursor.execute(f"ALTER TABLE {quote(table)} RENAME TO {quote(old)}")
        cursor.execute(f"ALTER SEQUENCE {quote(table + '_id_seq')} RENAME TO {quote(old + '_id_seq')}")
        cursor.execute(
            f"CREATE TABLE {quote(table)} (LIKE {quote(old)} INCLUDING DEFAULTS INCLUDING GENERATED "
            f"INCLUDING CONSTRAINTS INCLUDING STORAGE INCLUDING COMMENTS)"
        )
        cursor.execute(f"ALTER SEQUENCE {quote(old + '_id_seq')} OWNED BY {quote(table)}.id")
        cursor.execute(f"ALTER SEQUENCE {quote(old + '_id_seq')} RENAME TO {quote(table + '_id_seq')}")
        cursor.execute(f"ALTER TABLE {quote(table)} ALTER COLUMN id SET DEFAULT nextval('{table}_id_seq'::regclass)")
        columns = ", ".join(quote(c) for c in stored_columns(old))
        cursor.execute(f"INSERT INTO {quote(table)} ({columns}) SELECT {columns} FROM {quote(old)}")
        cursor.execute(f"DROP TABLE {quote(old)}")
        for name, contype, definition in reversed(constraints):
            if contype == "p":
                definition = "PRIMARY KEY (id)"
            cursor.execute(f"ALTER TABLE {quote(table)} ADD CONSTRAINT {quote(name)} {definition}")
        for _, definition in indexes:
            cursor.execute(definition)


def _own_constraints_and_indexes(cursor, table: str) -> tuple[list[tuple[str, str, str]], list[tuple[str, str]]]:
    """`table`'s own primary, unique and foreign keys [(name, type, definition)], primary first, and its indexes
    that back no constraint [(name, definition)] (a partition's inherited ones are its parent's, not its own)."""
    cursor.execute(
        "SELECT conname, contype, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = %s::regclass AND contype IN ('p', 'u', 'f') AND conparentid = 0 ORDER BY contype DESC",
        [table],
    )
    constraints = cursor.fetchall()
    cursor.execute(
        """
        SELECT indexname, indexdef FROM pg_indexes i WHERE i.tablename = %s AND NOT EXISTS (
            SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname AND c.conrelid = %s::regclass)
        """,
        [table, table],
    )
    return constraints, cursor.fetchall()
