"""The background thread of a web process: it re-verifies what is served, publishes the process's status and,
in gunicorn's master, notices a newly activated version and has the workers re-forked around it.

Nothing here runs on the request path. Each pass (about every second at most):
- every RECO_ARTIFACT_VERIFY_SECONDS: `registry.verify_served()` stats every served file, hashes the changed
  ones (paced), logs and shows a change, and replaces a changed private copy;
- every RECO_PROCESS_STATUS_SECONDS, and at once after a swap, a failed load or a changed file: publishes
  {host, pid, role, started_at, versions + checksums, failures, problems, recent errors}
  (recommendations/serving/process_status.py);
- every RECO_REGISTRY_CHECK_SECONDS, in a worker started with `refresh_models` and in the master: refreshes
  the process's registry, so that a request never waits for the database check or for a new version's
  download from the artifact store (which may be a remote bucket, or unreachable: the failed load is retried
  here with back-off while the old model serves);
- in the master only: when what the master serves differs from what its workers were forked with, calls
  `on_models_changed` (config/gunicorn.py: SIGHUP to itself, so gunicorn
  reloads, the on_reload hook warms up and fresh workers share the new models). A version that fails to
  load in the master changes nothing there, so it causes no reload loop; its retries back off.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import connections

from recommendations.registry import registry
from recommendations.serving.process_status import process_status_publish, process_status_withdraw

log = logging.getLogger(__name__)

MIN_PASS_SECONDS = 0.2
PUBLISH_FAILURE_LOG_SECONDS = 300  # an unreachable cache is logged once per this, not every pass


class ServingMonitor:
    def __init__(self) -> None:
        self._reset()
        registry.add_listener(lambda: self._wake.set())  # a swap, failed load or changed file: publish now

    def _reset(self) -> None:
        self.role = "process"
        self.started_at = time.time()
        self._thread: threading.Thread | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._on_models_changed: Callable[[], None] | None = None
        self._refresh_models = False
        self._forked_key: tuple | None = None
        self._next_poll = self._next_verify = self._next_publish = 0.0
        self._publish_failed_at = float("-inf")
        self._last_failure = ""

    def _after_fork_in_child(self) -> None:
        """A forked worker has none of its parent's threads: it starts its own monitor (post_worker_init)."""
        self._reset()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(
        self, *, role: str, on_models_changed: Callable[[], None] | None = None, refresh_models: bool = False
    ) -> None:
        """Start the thread in this process (once); `on_models_changed` only for a process that forks workers;
        `refresh_models`: this thread, not the requests, refreshes the registry (a web worker)."""
        if self.running:
            return
        self.role, self._on_models_changed = role, on_models_changed
        self._refresh_models = refresh_models
        if refresh_models:
            try:  # before the first request (a worker that did not inherit the master's models loads them now)
                registry.refresh_if_due()
            except Exception:
                log.warning("first model refresh failed; the monitor retries", exc_info=True)
        self._stop.clear()
        self.models_shared()
        self._thread = threading.Thread(target=self._run, name=f"serving-monitor-{role}", daemon=True)
        self._thread.start()
        if refresh_models:
            registry.background_refresh = True
        log.info("serving monitor started (%s, pid %d)", role, os.getpid())

    def stop(self, *, withdraw: bool = True) -> None:
        """Stop the thread; with `withdraw`, remove the published status (the process is exiting)."""
        self._stop.set()
        self._wake.set()
        if self._refresh_models:
            registry.background_refresh = False  # requests check for themselves again
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        self._thread = None
        if withdraw:
            try:
                process_status_withdraw(host=socket.gethostname(), pid=os.getpid())
            except Exception:
                log.debug("could not withdraw the serving status", exc_info=True)

    def models_shared(self) -> None:
        """What is served now is what forked workers inherit (the master calls this after a warm-up)."""
        self._forked_key = registry.serving_key()

    def status(self) -> dict[str, Any]:
        return {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "ppid": os.getppid(),
            "role": self.role,
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.started_at)),
            **registry.status(),
        }

    def _run(self) -> None:
        while not self._stop.is_set():
            woken = self._wake.wait(timeout=self._pause())
            self._wake.clear()
            if self._stop.is_set():
                break
            try:
                self.run_once(publish=woken)
            except Exception as error:
                message = f"{type(error).__name__}: {error}"
                # The traceback once per kind of failure (a database outage fails every pass the same way).
                log.warning("serving monitor pass failed: %s", message, exc_info=message != self._last_failure)
                self._last_failure = message
            else:
                self._last_failure = ""

    @property
    def _polls(self) -> bool:
        """This thread refreshes the registry: a master (it re-forks around a change) or a web worker."""
        return self._refresh_models or self._on_models_changed is not None

    def _pause(self) -> float:
        upcoming = [self._next_verify, self._next_publish] + ([self._next_poll] if self._polls else [])
        return max(MIN_PASS_SECONDS, min(upcoming) - time.monotonic())

    def run_once(self, *, publish: bool = False) -> None:
        """One pass: what is due of polling (master), verifying and publishing."""
        now = time.monotonic()
        if self._polls and now >= self._next_poll:
            self._next_poll = now + max(registry.check_seconds, 1.0)
            self._poll()
        if now >= self._next_verify:
            self._next_verify = now + settings.RECO_ARTIFACT_VERIFY_SECONDS
            registry.verify_served()
        if publish or now >= self._next_publish:
            self._next_publish = now + settings.RECO_PROCESS_STATUS_SECONDS
            self._publish()

    def _poll(self) -> None:
        try:
            registry.refresh_if_due()
        finally:
            connections.close_all()  # this thread's own connection: nothing of it may cross the next fork
        if self._on_models_changed is None:
            return  # a worker: nothing forks from it
        key = registry.serving_key()
        if self._forked_key is not None and key != self._forked_key:
            log.info(
                "served models changed to %s: reloading the workers",
                [f"{m['kind']} {m['version']}" for m in registry.status()["models"]],
            )
            self._forked_key = key
            self._on_models_changed()  # type: ignore[misc]

    def _publish(self) -> None:
        if self._stop.is_set():
            return  # stopping: a pass still running must not publish after the withdrawal
        try:
            process_status_publish(status=self.status())
        except Exception:
            if time.monotonic() - self._publish_failed_at > PUBLISH_FAILURE_LOG_SECONDS:
                self._publish_failed_at = time.monotonic()
                log.warning("could not publish the serving status", exc_info=True)


serving_monitor = ServingMonitor()
os.register_at_fork(after_in_child=lambda: serving_monitor._after_fork_in_child())
