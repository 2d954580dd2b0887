"""Django's PostgreSQL backend, with a deadline on every wait for the server and a circuit breaker.

PostgreSQL's own `statement_timeout` cannot help when the network or the server hangs: the query never
arrives, or its answer never leaves. So every wait for the server (a query, a health check) in a thread
that set a deadline (`config.deadlines`: the web tier sets one per request) gives up after it, closes the
connection (its protocol state is unknown) and raises OperationalError, which the API answers with a JSON
503. The first such failure opens the breaker: later calls fail at once, without waiting, until a
background probe connects again. Connecting honours the deadline too (on a helper thread: libpq's
`connect_timeout` cannot go below 2 s).

A replica alias (settings.DATABASE_REPLICA_ALIASES) hands out ReplicaCursors (config/db/failover.py): a read the
replica cannot answer runs again on the primary.
"""

from __future__ import annotations

import threading

import psycopg
from django.conf import settings
from django.db.backends.postgresql import base as postgresql
from psycopg import errors as pg_errors

from config.breakers import CircuitBreaker, CircuitOpen, breaker
from config.db.failover import ReplicaCursor
from config.deadlines import database_deadline


class DatabaseUnavailable(CircuitOpen, psycopg.OperationalError):
    pass


class DeadlineConnection(psycopg.Connection):
    """A psycopg connection whose waits honour the calling thread's database deadline."""

    breaker: CircuitBreaker | None = None

    def wait(self, gen, interval=0.1, timeout=None):
        limit = database_deadline()
        ours = limit is not None and (timeout is None or limit < timeout)
        timeout = limit if ours else timeout
        try:
            return super().wait(gen, interval=interval, timeout=timeout)
        except pg_errors._WaitTimeout:  # psycopg 3.3's timeout signal (pinned in pyproject.toml)
            if not ours:
                raise  # the caller's own timeout (psycopg's notifies(timeout=...)): its business
            self.pgconn.finish()  # mid-protocol: the connection cannot be reused
            error = psycopg.OperationalError(f"no answer from the database within {timeout:g} s")
            if self.breaker is not None:
                self.breaker.record_failure(error)
            raise error from None
        except psycopg.OperationalError as error:
            if self.breaker is not None and self.pgconn.status != psycopg.pq.ConnStatus.OK:
                self.breaker.record_failure(error)
            raise


class _Psycopg:
    """The psycopg module as Django's backend uses it, except that connections are DeadlineConnections."""

    def __init__(self, connection_class: type[psycopg.Connection]) -> None:
        self._connection_class = connection_class

    def __getattr__(self, name: str):
        return getattr(psycopg, name)

    def connect(self, *args, **kwargs) -> psycopg.Connection:
        return self._connection_class.connect(*args, **kwargs)


class DatabaseWrapper(postgresql.DatabaseWrapper):
    Database = _Psycopg(DeadlineConnection)

    def cursor(self):
        if self.alias not in settings.DATABASE_REPLICA_ALIASES:
            return super().cursor()
        return ReplicaCursor(self, super().cursor)

    def chunked_cursor(self):
        return self.cursor() if self.alias in settings.DATABASE_REPLICA_ALIASES else super().chunked_cursor()

    def read_breaker(self) -> CircuitBreaker:
        """This database's breaker (the router skips a replica while it is open)."""
        found = getattr(self, "_read_breaker", None)
        if found is None:
            found = self._read_breaker = self._breaker(self.get_connection_params())
        return found

    def get_new_connection(self, conn_params: dict) -> psycopg.Connection:
        guard = self._breaker(conn_params)
        if guard.is_open:
            raise DatabaseUnavailable(f"database {self.alias} skipped: circuit open ({guard.state().last_error})")
        try:
            connection = self._connect_within(database_deadline(), conn_params)
        except psycopg.OperationalError as error:
            guard.record_failure(error)
            raise
        connection.breaker = guard
        guard.record_success()
        return connection

    def _connect_within(self, seconds: float | None, conn_params: dict) -> psycopg.Connection:
        """Connect, giving up after `seconds` (libpq's own connect_timeout cannot go below 2 s). The attempt
        runs on a helper thread; one that gives up leaves it to finish, and closes what it returns."""
        connect = super().get_new_connection
        if seconds is None:
            return connect(conn_params)
        outcome: dict = {}
        done = threading.Event()
        abandoned = threading.Event()

        def attempt() -> None:
            try:
                outcome["connection"] = connect(conn_params)
            except BaseException as error:
                outcome["error"] = error
            done.set()
            if abandoned.is_set() and "connection" in outcome:
                outcome["connection"].close()

        threading.Thread(target=attempt, name=f"connect-{self.alias}", daemon=True).start()
        if not done.wait(seconds):
            abandoned.set()
            if done.is_set() and "connection" in outcome:  # it finished just now
                outcome["connection"].close()
            raise psycopg.OperationalError(f"no connection to the database within {seconds:g} s")
        if "error" in outcome:
            raise outcome["error"]
        return outcome["connection"]

    def _breaker(self, conn_params: dict) -> CircuitBreaker:
        target = f"{conn_params.get('host', '')}:{conn_params.get('port', '')}/{conn_params.get('dbname', '')}"

        def probe() -> None:
            params = {
                k: v for k, v in conn_params.items() if k not in {"cursor_factory", "context", "prepare_threshold"}
            }
            with psycopg.connect(**params, autocommit=True) as connection:
                connection.execute("SELECT 1")

        return breaker(f"postgresql {target}", probe=probe, failure_threshold=1, probe_seconds=0.25)
