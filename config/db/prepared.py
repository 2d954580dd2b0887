"""Prepared statements for the request path's few hot queries.

Django binds parameters on the client (and turns psycopg's preparing off), so PostgreSQL plans every statement
anew, and over the month partitions of viewing history planning is most of a profile query's time: on
reco_bench (25 months, 2,000 random profiles, warm) the profile's head takes 1.26 ms p50 client-bound and
0.46 ms prepared, its 200 newest viewings 1.6 ms and 0.63 ms. `fetchall(alias, sql, params)` runs one statement through a server-side-binding
cursor on Django's own connection, prepared at its first use there (psycopg keeps it for the connection's
life), so the connection's deadlines, breaker and Django's error classes still apply. On a replica it keeps
the failover of `config.db.failover`: a replica that cannot answer within the read's limit is marked failed
and the statement runs on the primary. Other databases (SQLite) go through Django's cursor.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import psycopg
from django.conf import settings
from django.db import InterfaceError, OperationalError, connections
from psycopg import errors as pg_errors

from config.db.replicas import PRIMARY, monitor, replica_wait_limit
from config.deadlines import database_deadline_set

log = logging.getLogger(__name__)
NEVER_AUTOMATIC = (
    2**31 - 1
)  # executions before psycopg prepares a statement by itself: never (Django's cursors bind on the client)


def fetchall(alias: str, sql: str, params: Sequence[Any]) -> list[tuple]:
    connection = connections[alias]
    if connection.vendor != "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()
    if alias not in settings.DATABASE_REPLICA_ALIASES:
        return _prepared(alias, sql, params)
    try:
        with database_deadline_set(replica_wait_limit()):
            return _prepared(alias, sql, params)
    except (OperationalError, InterfaceError) as error:
        if isinstance(error.__cause__, pg_errors.QueryCanceled) and "statement timeout" in str(error):
            raise  # too slow anywhere: the primary would only pay for it again
        log.warning(
            "read on replica %s failed (%s: %s): running it on the primary",
            alias,
            type(error).__name__,
            str(error).strip()[:200],
        )
        monitor.mark_failed(alias, error)
        return _prepared(PRIMARY, sql, params)


def _prepared(alias: str, sql: str, params: Sequence[Any]) -> list[tuple]:
    connection = connections[alias]
    connection.close_if_health_check_failed()  # as Django's own cursor does (CONN_HEALTH_CHECKS)
    connection.ensure_connection()
    raw = connection.connection
    if raw.prepare_threshold is None:  # Django turns psycopg's preparing off: allow the explicit one only
        raw.prepare_threshold = NEVER_AUTOMATIC
    with connection.wrap_database_errors, psycopg.Cursor(raw) as cursor:
        cursor.execute(sql, params, prepare=True)
        return cursor.fetchall()
