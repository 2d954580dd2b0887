"""Circuit breakers for the request path's dependencies (Redis, PostgreSQL).

A dependency that fails or times out a few times in a row is skipped for a while: calls fail at once (the
caller degrades: default features, no cache, a JSON 503) instead of each waiting for its own timeout. While
open, a background thread of this process probes the dependency every `probe_seconds`; the first good probe
closes the breaker, so no request ever pays for a trial call and answers are full again within one probe
interval of the dependency's return. State is per process (gunicorn workers each keep their own); a fork
starts the probe thread again in the child when it is needed.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)

CLOSED, OPEN = "closed", "open"


@dataclass(frozen=True)
class BreakerState:
    name: str
    state: str
    failures: int
    opened_at: float | None  # time.time() when it last opened
    last_error: str


class CircuitOpen(ConnectionError):
    """Raised instead of calling a dependency whose breaker is open."""


class CircuitBreaker:
    def __init__(
        self, name: str, *, probe: Callable[[], object], failure_threshold: int = 2, probe_seconds: float = 0.5
    ) -> None:
        self.name = name
        self.probe = probe
        self.failure_threshold = failure_threshold
        self.probe_seconds = probe_seconds
        self._lock = threading.Lock()
        self._failures = 0
        self._open = False
        self._opened_at: float | None = None
        self._last_error = ""
        self._prober_pid: int | None = None

    @property
    def is_open(self) -> bool:
        if self._open and self._prober_pid != os.getpid():
            self._start_prober()  # forked while open: this process needs its own prober
        return self._open

    def check(self) -> None:
        """Raise CircuitOpen when the dependency is being skipped."""
        if self.is_open:
            raise CircuitOpen(
                f"{self.name} is unavailable (circuit open since {self._opened_at:.0f}; last error: {self._last_error})"
            )

    def record_success(self) -> None:
        if self._failures:  # read without the lock: the common case costs one attribute read
            with self._lock:
                self._failures = 0

    def record_failure(self, error: BaseException) -> None:
        with self._lock:
            self._failures += 1
            self._last_error = f"{type(error).__name__}: {error}"[:300]
            if self._open or self._failures < self.failure_threshold:
                return
            self._open = True
            self._opened_at = time.time()
        log.warning(
            "%s circuit open after %d failures (%s): skipping it, probing every %.2g s",
            self.name,
            self._failures,
            self._last_error,
            self.probe_seconds,
        )
        self._start_prober()

    def reset(self) -> None:
        with self._lock:
            self._open, self._failures, self._opened_at, self._last_error = False, 0, None, ""

    def state(self) -> BreakerState:
        return BreakerState(
            self.name, OPEN if self._open else CLOSED, self._failures, self._opened_at, self._last_error
        )

    def _start_prober(self) -> None:
        with self._lock:
            if self._prober_pid == os.getpid():
                return
            self._prober_pid = os.getpid()
        threading.Thread(target=self._probe_until_closed, name=f"{self.name}-probe", daemon=True).start()

    def _probe_until_closed(self) -> None:
        pid = os.getpid()
        while self._open and self._prober_pid == pid:
            time.sleep(self.probe_seconds)
            try:
                self.probe()
            except Exception as error:
                self._last_error = f"{type(error).__name__}: {error}"[:300]
                continue
            with self._lock:
                self._open, self._failures = False, 0
            log.warning("%s is back: circuit closed after %.1f s", self.name, time.time() - (self._opened_at or 0))
        with self._lock:
            if self._prober_pid == pid:
                self._prober_pid = None


_breakers: dict[str, CircuitBreaker] = {}
_registry_lock = threading.Lock()


def breaker(name: str, *, probe: Callable[[], object], **options) -> CircuitBreaker:
    """The process's breaker called `name`, created on first use."""
    found = _breakers.get(name)
    if found is None:
        with _registry_lock:
            found = _breakers.setdefault(name, CircuitBreaker(name, probe=probe, **options))
    return found


def breaker_states() -> list[BreakerState]:
    return [b.state() for b in sorted(_breakers.values(), key=lambda b: b.name)]


class SkipOpenCircuit:
    """A logging filter: a call refused by an open breaker is not news (the breaker logged when it opened), so
    records about one are dropped instead of printing a traceback on every request of an outage."""

    def filter(self, record) -> bool:
        if record.exc_info and _caused_by_open_circuit(record.exc_info[1]):
            return False
        args = record.args if isinstance(record.args, tuple) else ()
        return not any(isinstance(arg, BaseException) and _caused_by_open_circuit(arg) for arg in args)


def _caused_by_open_circuit(error: BaseException | None) -> bool:
    for _ in range(5):  # wrappers such as django-redis' ConnectionInterrupted keep the cause
        if error is None:
            return False
        if isinstance(error, CircuitOpen):
            return True
        error = error.__cause__ or error.__context__
    return False
