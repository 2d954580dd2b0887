"""A replica's cursor that runs a statement again on the primary when the replica cannot answer it.

Reads reach a replica only outside transactions (config.db.replicas), as single autocommit statements, so
running one again elsewhere changes nothing. A replica that is down, gives no answer within the read's replica
limit (`replica_wait_limit()`: the request's deadline, capped lower for the API), or cancels the statement for
a recovery conflict, costs that statement its wait and no error: the statement runs on the primary, this cursor
reads the primary's answer from then on, and the replica is skipped until the monitor has seen it well again.
A statement the database refuses (bad SQL, bad data) or cancels by statement_timeout is not retried.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from django.db import InterfaceError, OperationalError, connections
from psycopg import errors as pg_errors

from config.db.replicas import PRIMARY, monitor, replica_wait_limit
from config.deadlines import database_deadline_set

log = logging.getLogger(__name__)


class ReplicaCursor:
    """Django's cursor on a replica connection (opened lazily), or on the primary once the replica failed."""

    def __init__(self, replica, open_cursor) -> None:
        self._replica = replica
        self._open_cursor = open_cursor
        self._cursor: Any = None
        self._on_primary = False

    def execute(self, sql, params=None):
        return self._run("execute", sql, params)

    def executemany(self, sql, param_list):
        return self._run("executemany", sql, param_list)

    def _run(self, method: str, sql, params):
        if not self._on_primary:
            try:
                with database_deadline_set(replica_wait_limit()):
                    if self._cursor is None:
                        self._cursor = self._open_cursor()
                    return getattr(self._cursor, method)(sql, params)
            except (OperationalError, InterfaceError) as error:
                if isinstance(error.__cause__, pg_errors.QueryCanceled) and "statement timeout" in str(error):
                    raise  # too slow anywhere: the primary would only pay for it again
                self._fail_over(error)
        return getattr(self._cursor, method)(sql, params)

    def _fail_over(self, error: BaseException) -> None:
        log.warning(
            "read on replica %s failed (%s: %s): running it on the primary",
            self._replica.alias,
            type(error).__name__,
            str(error).strip()[:200],
        )
        monitor.mark_failed(self._replica.alias, error)
        if self._cursor is not None:
            with contextlib.suppress(Exception):
                self._cursor.close()
        self._cursor = connections[PRIMARY].cursor()
        self._on_primary = True

    def close(self) -> None:
        if self._cursor is not None:
            self._cursor.close()

    def __getattr__(self, name: str):
        if self._cursor is None:
            raise AttributeError(name)
        return getattr(self._cursor, name)

    def __iter__(self):
        return iter(self._cursor)

    def __enter__(self) -> ReplicaCursor:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
