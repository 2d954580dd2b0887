"""Read replicas: which database a read may use, read-your-writes pins, and each replica's health.

A read goes to a replica only when all of these hold, else to the primary ("default"):
- it runs inside `replica_reads()` (set per request by ReplicaReadMiddleware for the request path's and the staff
  pages' reads; jobs, commands, the admin and every write path never set it), outside any transaction, and the
  request has not written through the ORM yet;
- the profile it reads for (`profile_reads()` or `read_alias(profile_id=...)`) is not pinned: `pin_profiles()`
  pins a profile for DATABASE_PIN_SECONDS after its own writes, in the cache (Redis: shared by every web host)
  and in this process; a pin that cannot be read (cache down) counts as pinned, and a pin that could not be
  written pins every profile of this process for that long;
- the replica's breaker (config.db) is closed and the background monitor found it, within the last few checks,
  replaying the primary's WAL within min(DATABASE_REPLICA_MAX_LAG_SECONDS, DATABASE_PIN_SECONDS): a replica
  further behind than the pin lasts could hand a profile its state from before its own write.

A statement a replica fails (down, no answer within the read's replica limit, cancelled by recovery) runs again
on the primary (config.db.base.ReplicaCursor): a replica fault costs one request that limit, never an error.
The monitor runs in a daemon thread of each process, started by the first read that asks: every
DATABASE_REPLICA_CHECK_SECONDS it reads the primary's WAL insert position and waits (up to the lag limit) for
each replica to replay past it; the wait is the lag. Nothing of that runs on the request path.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import threading
import time
from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field

import psycopg
from django.apps import apps
from django.conf import settings
from django.core.cache import cache
from django.db import DEFAULT_DB_ALIAS, connections

from config.deadlines import database_deadline, database_deadline_set

log = logging.getLogger(__name__)

PRIMARY = DEFAULT_DB_ALIAS
PIN_KEY = "dbpin:v1:{}"
_LOCAL_PINS_MAX = 50_000  # profiles this process remembers pinning (a burst of event batches stays bounded)
_MONITOR_WAIT_SECONDS = 1.0  # the monitor's own limit per wait for a server
_LAG_POLL_SECONDS = 0.02


@dataclass
class ReadIntent:
    """What the current request may read from replicas; set by replica_reads()."""

    profile_id: int | None = None
    replica_timeout: float | None = None  # a replica wait's limit, below the request's own deadline
    wrote: bool = False  # the request wrote through the ORM: its later reads see the primary
    pins: dict[int, bool] = field(default_factory=dict)  # pin lookups already made by this request


_intent: ContextVar[ReadIntent | None] = ContextVar("reco_read_intent", default=None)


@contextlib.contextmanager
def replica_reads(*, profile_id: int | None = None, replica_timeout: float | None = None) -> Iterator[ReadIntent]:
    """Reads inside may go to a replica (see the module docstring)."""
    token = _intent.set(ReadIntent(profile_id=profile_id, replica_timeout=replica_timeout))
    try:
        yield _intent.get()
    finally:
        _intent.reset(token)


@contextlib.contextmanager
def profile_reads(profile_id: int) -> Iterator[None]:
    """Within a replica_reads() block: the reads inside are one profile's (its pin applies); else nothing."""
    intent = _intent.get()
    if intent is None:
        yield
        return
    previous, intent.profile_id = intent.profile_id, int(profile_id)
    try:
        yield
    finally:
        intent.profile_id = previous


def replica_aliases() -> tuple[str, ...]:
    return tuple(settings.DATABASE_REPLICA_ALIASES)


def read_alias(*, profile_id: int | None = None) -> str:
    """The database alias this read may use now (raw SQL: `connections[read_alias(...)]`; the ORM: the router)."""
    intent = _intent.get()
    if intent is None or intent.wrote or not settings.DATABASE_REPLICA_ALIASES:
        return PRIMARY
    if connections[PRIMARY].in_atomic_block:
        return PRIMARY
    usable = [alias for alias in settings.DATABASE_REPLICA_ALIASES if monitor.usable(alias)]
    if not usable:
        return PRIMARY
    profile = intent.profile_id if profile_id is None else int(profile_id)
    if profile is not None and _pinned(intent, profile):
        return PRIMARY
    return usable[(profile or 0) % len(usable)]  # a profile keeps to one replica: no going back in time between reads


def note_write(*, model_label: str = "", pk: int | None = None) -> None:
    """An ORM write: the rest of this request reads the primary; a single-row save of a profile, or of an account
    (tier, country), pins the profiles whose homepage it changes (admin edits)."""
    intent = _intent.get()
    if intent is not None:
        intent.wrote = True
    if pk is None or model_label not in PINNING_MODELS or not settings.DATABASE_REPLICA_ALIASES:
        return
    if model_label == "users.Account":
        profiles = apps.get_model("users", "Profile").objects.using(PRIMARY).filter(account_id=pk)
        pin_profiles(profiles.values_list("pk", flat=True))
    else:
        pin_profiles([pk])


PINNING_MODELS = frozenset({"users.Profile", "users.Account"})
# Read on the primary whatever the request: who is signed in must never lag behind a login (sessions, users,
# login attempts), and the admin's bookkeeping goes with them.
PRIMARY_APPS = frozenset({"sessions", "auth", "contenttypes", "admin", "axes"})


# --- pins -----------------------------------------------------------------------------------------
_local_pins: dict[int, float] = {}  # profile id -> time.monotonic() until which this process pinned it
_everyone_until = 0.0  # a pin this process could not share: it reads the primary for everyone until then


def pin_profiles(profile_ids: Iterable[int]) -> None:
    """Send these profiles' reads to the primary for DATABASE_PIN_SECONDS, on every web host. Call before the
    write commits (a reader must never see the commit without the pin); never raises."""
    global _everyone_until
    seconds = settings.DATABASE_PIN_SECONDS
    ids = {int(pk) for pk in profile_ids}
    if not ids or seconds <= 0 or not settings.DATABASE_REPLICA_ALIASES:
        return
    until = time.monotonic() + seconds
    if len(_local_pins) + len(ids) > _LOCAL_PINS_MAX:
        now = time.monotonic()
        for pk in [pk for pk, expires in _local_pins.items() if expires <= now]:
            _local_pins.pop(pk, None)
        if len(_local_pins) + len(ids) > _LOCAL_PINS_MAX:
            _local_pins.clear()
            _everyone_until = max(_everyone_until, until)  # forgetting pins must not unpin anyone
    _local_pins.update(dict.fromkeys(ids, until))
    try:
        cache.set_many({PIN_KEY.format(pk): 1 for pk in ids}, timeout=math.ceil(seconds))
    except Exception as error:
        _everyone_until = max(_everyone_until, until)
        log.warning(
            "could not share read-your-writes pins (%s): this process reads the primary for %.0f s",
            type(error).__name__,
            seconds,
        )


def _pinned(intent: ReadIntent, profile_id: int) -> bool:
    found = intent.pins.get(profile_id)
    if found is None:
        found = intent.pins[profile_id] = _pin_lookup(profile_id)
    return found


def _pin_lookup(profile_id: int) -> bool:
    now = time.monotonic()
    if _everyone_until > now or _local_pins.get(profile_id, 0.0) > now:
        return True
    try:
        return cache.get(PIN_KEY.format(profile_id)) is not None
    except Exception:
        return True


# --- health ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ReplicaState:
    alias: str
    usable: bool
    lag_seconds: float | None  # how long it took to replay past the primary's position; None: not within the limit
    checked_at: float  # time.monotonic()
    error: str = ""


def lag_limit_seconds() -> float:
    """A replica further behind than this serves nobody: the max lag, capped by how long a pin lasts."""
    limit = settings.DATABASE_REPLICA_MAX_LAG_SECONDS
    pin = settings.DATABASE_PIN_SECONDS
    return min(limit, pin) if pin > 0 else limit


class ReplicaMonitor:
    """Each replica's replay position against the primary's, measured in a background thread of this process."""

    def __init__(self) -> None:
        self._states: dict[str, ReplicaState] = {}
        self._pid: int | None = None
        self._lock = threading.Lock()
        self._wake = threading.Event()

    def usable(self, alias: str) -> bool:
        if self._pid != os.getpid():
            self._start()
        state = self._states.get(alias)
        if state is None or not state.usable:
            return False
        if time.monotonic() - state.checked_at > 3 * settings.DATABASE_REPLICA_CHECK_SECONDS + lag_limit_seconds():
            return False  # the monitor has stalled: what it last saw says nothing about now
        return not _breaker_open(alias)

    def states(self) -> list[ReplicaState]:
        return [self._states[alias] for alias in replica_aliases() if alias in self._states]

    def mark_failed(self, alias: str, error: BaseException) -> None:
        """A read failed on this replica: skip it until the monitor has checked it again."""
        self._states[alias] = ReplicaState(
            alias, False, None, time.monotonic(), f"{type(error).__name__}: {error}"[:300]
        )
        self._wake.set()

    def check_now(self) -> list[ReplicaState]:
        """One round of checks in the calling thread (tests, the health page)."""
        return self._check_all({})

    def _start(self) -> None:
        with self._lock:
            if self._pid == os.getpid():
                return
            self._pid = os.getpid()
            self._states = {}  # a forked child measures for itself
        threading.Thread(target=self._run, name="replica-monitor", daemon=True).start()

    def _run(self) -> None:
        pid = os.getpid()
        connections_by_alias: dict[str, psycopg.Connection] = {}
        while self._pid == pid:
            started = time.monotonic()
            try:
                self._check_all(connections_by_alias)
            except Exception:
                log.exception("replica check failed")
            self._wake.wait(max(0.0, settings.DATABASE_REPLICA_CHECK_SECONDS - (time.monotonic() - started)))
            self._wake.clear()

    def _check_all(self, open_connections: dict[str, psycopg.Connection]) -> list[ReplicaState]:
        aliases = replica_aliases()
        with database_deadline_set(_MONITOR_WAIT_SECONDS):
            try:
                primary = _connection(PRIMARY, open_connections)
                target = primary.execute("SELECT pg_current_wal_insert_lsn()").fetchone()[0]
            except psycopg.Error as error:
                _drop(PRIMARY, open_connections)
                for alias in aliases:  # no position to compare with: lag unknown
                    self._states[alias] = ReplicaState(
                        alias,
                        False,
                        None,
                        time.monotonic(),
                        f"primary unreachable: {type(error).__name__}: {error}"[:300],
                    )
                return self.states()
            for alias in aliases:
                self._states[alias] = self._check(alias, target, open_connections)
        return self.states()

    def _check(self, alias: str, target: str, open_connections: dict) -> ReplicaState:
        limit = lag_limit_seconds()
        started = time.monotonic()
        try:
            replica = _connection(alias, open_connections)
            while True:
                standby, replayed = replica.execute(
                    "SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn() >= %s::pg_lsn", [target]
                ).fetchone()
                waited = time.monotonic() - started
                if not standby:  # the primary itself (a test mirror), or a promoted replica that no longer follows it
                    same = _server(alias) == _server(PRIMARY)
                    return ReplicaState(
                        alias,
                        same,
                        0.0 if same else None,
                        time.monotonic(),
                        "" if same else "not a standby (promoted?): it no longer follows the primary",
                    )
                if replayed:
                    return ReplicaState(alias, True, waited, time.monotonic())
                if waited > limit:
                    return ReplicaState(alias, False, None, time.monotonic(), f"behind by more than {limit:g} s")
                time.sleep(_LAG_POLL_SECONDS)
        except psycopg.Error as error:
            _drop(alias, open_connections)
            return ReplicaState(alias, False, None, time.monotonic(), f"{type(error).__name__}: {error}"[:300])


def _connection(alias: str, open_connections: dict[str, psycopg.Connection]) -> psycopg.Connection:
    """The monitor's own connection to `alias` (not Django's: those belong to request threads)."""
    found = open_connections.get(alias)
    if found is not None and not found.closed:
        return found
    from config.db.base import DeadlineConnection  # its waits honour this thread's deadline

    params = connections[alias].get_connection_params()
    params = {k: v for k, v in params.items() if k not in {"cursor_factory", "context", "prepare_threshold"}}
    params["connect_timeout"] = max(2, int(params.get("connect_timeout") or 2))
    params["application_name"] = "reco-replica-monitor"
    connection = DeadlineConnection.connect(**params, autocommit=True)
    open_connections[alias] = connection
    return connection


def _server(alias: str) -> tuple:
    params = connections[alias].get_connection_params()
    return params.get("host"), str(params.get("port") or ""), params.get("dbname")


def _drop(alias: str, open_connections: dict[str, psycopg.Connection]) -> None:
    connection = open_connections.pop(alias, None)
    if connection is not None:
        with contextlib.suppress(Exception):
            connection.close()


def _breaker_open(alias: str) -> bool:
    from config.db.base import DatabaseWrapper

    wrapper = connections[alias]
    return isinstance(wrapper, DatabaseWrapper) and wrapper.read_breaker().is_open


def replica_wait_limit() -> float | None:
    """How long this thread may wait for a replica: its deadline, capped by the request's replica limit."""
    intent = _intent.get()
    deadline = database_deadline()
    cap = intent.replica_timeout if intent is not None else None
    if cap is None:
        return deadline
    return cap if deadline is None else min(cap, deadline)


monitor = ReplicaMonitor()
