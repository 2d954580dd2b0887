"""One reload mechanism for the in-process caches: a snapshot rebuilt when its version changes, checked every N s.

Each cache (business rules, models, catalog, bandits, running experiments, serving state, API keys, the title
feature matrix, the taste arm's fits) holds one immutable snapshot in a VersionedSnapshot:

- `get()` returns the snapshot. When `check_seconds` have passed since the last check it reads the version
  and, if that differs from the snapshot's, builds a new snapshot and swaps it in with one assignment (a
  reader sees the old snapshot or the new one, never a mix). Without a version reader it rebuilds at every
  check (a plain time to live; the builder may hand back the previous snapshot unchanged).
- One thread checks or builds at a time. Once a snapshot exists no reader waits for a check or a rebuild:
  the others serve what they have meanwhile. Only the first build is waited for.
- A version read or build that fails keeps the last good snapshot, logs the error (its traceback once while
  it repeats) and shows it in `error` until a check succeeds; the next check is an interval later. With no
  snapshot yet the error is raised.

Pure Python (the version reader, builder, interval and clock are passed in), so it is tested without Django.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Generic, TypeVar, cast

V = TypeVar("V")  # the version: anything comparable with ==
T = TypeVar("T")  # the snapshot

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Held(Generic[V, T]):
    version: V
    snapshot: T


class VersionedSnapshot(Generic[V, T]):
    """A snapshot of type T built for a version of type V, its version checked at most every `check_seconds`.

    build(version, previous): the snapshot of `version` (previous: the one served now, or None).
    read_version(): the version now; None: rebuild at every check.
    version_of(snapshot): the version a built snapshot holds, when it may differ from the one read (a
      snapshot that reads its own version from the source of truth); by default the one read.
    check_seconds: seconds between checks, or a callable read at each check (a setting that tests change).
    on_swap(snapshot): called after a build installed a snapshot that is not the previous object.
    """

    def __init__(
        self,
        name: str,
        *,
        build: Callable[[V, T | None], T],
        read_version: Callable[[], V] | None = None,
        version_of: Callable[[T], V] | None = None,
        check_seconds: float | Callable[[], float],
        clock: Callable[[], float] = time.monotonic,
        on_swap: Callable[[T], None] | None = None,
        log: logging.Logger = _log,
    ) -> None:
        self.name = name
        self._build = build
        self._read_version = read_version
        self._version_of = version_of
        if callable(check_seconds):
            self._interval = check_seconds
        else:
            seconds = float(check_seconds)
            self._interval = lambda: seconds
        self._clock = clock
        self._on_swap = on_swap
        self._log = log
        self._held: _Held[V, T] | None = None
        self._checked_at = float("-inf")
        self._lock = threading.Lock()
        self.error: str | None = None  # the last check's failure while an older snapshot serves; None when fine
        self.failed_at: float | None = None  # time.time() of that failure

    # --- reading ------------------------------------------------------------------------------------
    def get(self) -> T:
        """The snapshot, checked first when due. Raises only when no snapshot was ever built."""
        held = self._held
        if held is not None and not self._due():
            return held.snapshot
        if not self._lock.acquire(blocking=held is None):
            assert held is not None
            return held.snapshot  # another thread checks or rebuilds: serve what we have
        try:
            held = self._held
            if held is None or self._due():  # not checked by another thread while this one waited
                self._check(held)
        finally:
            self._lock.release()
        assert self._held is not None
        return self._held.snapshot

    def peek(self) -> T | None:
        """The snapshot served now, without checking anything (None before the first build)."""
        held = self._held
        return None if held is None else held.snapshot

    @property
    def version(self) -> V | None:
        held = self._held
        return None if held is None else held.version

    def fresh(self) -> bool:
        """A snapshot exists and was checked within the interval."""
        return self._held is not None and not self._due()

    # --- changing it --------------------------------------------------------------------------------
    def refresh(self) -> T:
        """Build now, whatever the version says (waits for a check in progress; raises a failure)."""
        with self._lock:
            self._checked_at = self._clock()
            version = self._read_version() if self._read_version is not None else cast(V, None)
            self._install(version, self._build(version, self.peek()))
            self.error = self.failed_at = None
        assert self._held is not None
        return self._held.snapshot

    def expire(self) -> None:
        """Check on the next `get()` (this process only)."""
        self._checked_at = float("-inf")

    def clear(self) -> None:
        """Forget the snapshot: the next `get()` builds one and waits for it."""
        with self._lock:
            self._held = None
            self._checked_at = float("-inf")
            self.error = self.failed_at = None

    @contextmanager
    def exclusive(self, timeout: float = -1) -> Iterator[bool]:
        """Hold off checks and builds (True), e.g. to `replace()` the snapshot; False if `timeout` ran out."""
        acquired = self._lock.acquire(timeout=timeout)
        try:
            yield acquired
        finally:
            if acquired:
                self._lock.release()

    def replace(self, snapshot: T) -> None:
        """Serve `snapshot` under the current version (call within `exclusive()`; on_swap is not called)."""
        held = self._held
        if held is None:
            raise RuntimeError(f"{self.name}: nothing to replace before the first build")
        self._held = _Held(held.version, snapshot)

    def after_fork_in_child(self) -> None:
        """A forked child has none of its parent's threads: a lock one of them held must not stay held."""
        self._lock = threading.Lock()

    # --- inside the lock ----------------------------------------------------------------------------
    def _due(self) -> bool:
        return self._clock() - self._checked_at >= self._interval()

    def _check(self, held: _Held[V, T] | None) -> None:
        self._checked_at = self._clock()  # a failing check is retried an interval later, not by every reader
        try:
            version = self._read_version() if self._read_version is not None else cast(V, None)
            if held is None or self._read_version is None or version != held.version:
                self._install(version, self._build(version, None if held is None else held.snapshot))
        except Exception as error:
            if held is None:
                raise
            message = f"{type(error).__name__}: {error}"
            # The traceback once per kind of failure: an outage fails every check the same way.
            self._log.error(
                "could not refresh the %s; still serving version %s: %s",
                self.name,
                held.version,
                message,
                exc_info=message != self.error,
            )
            self.error, self.failed_at = message, time.time()
        else:
            self.error = self.failed_at = None

    def _install(self, version: V, snapshot: T) -> None:
        previous = self.peek()
        self._held = _Held(version if self._version_of is None else self._version_of(snapshot), snapshot)
        if self._on_swap is not None and snapshot is not previous:
            try:
                self._on_swap(snapshot)
            except Exception:  # a listener's failure is not the snapshot's
                self._log.exception("%s: a swap listener failed", self.name)
