"""Processes the job tests start, own and kill: Celery workers and a throwaway redis-server.

Each runs in its own session (process group), is bounded in time and is always cleaned up by the fixture
that started it.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent.parent


def tests_database_url() -> str:
    """The URL of the test database this process uses, for the processes it starts."""
    db = connection.settings_dict
    return f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}"


@dataclass
class Worker:
    """A `celery worker --pool solo` on one queue: the task runs in the worker process itself, so that
    SIGKILL of its process group kills the task mid-flight with nothing left to clean up after it. With
    `processes`, a prefork pool of that many processes (SIGKILL of the group kills them all)."""

    name: str
    queue: str
    env: dict[str, str]
    log_path: Path
    processes: int | None = None
    process: subprocess.Popen | None = field(default=None, repr=False)

    def start(self, *, ready_within: float = 60.0) -> Worker:
        log = open(self.log_path, "ab")  # noqa: SIM115 (open while the worker runs)
        pool = ["--pool", "prefork", "--concurrency", str(self.processes)] if self.processes else ["--pool", "solo"]
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                *pool,
                "--queues",
                self.queue,
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "--loglevel",
                "INFO",
                "--hostname",
                f"{self.name}@%h",
            ],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + ready_within
        # Ready once it logs so: a solo worker that picks up a task at once cannot answer a ping.
        while f"{self.name}@{socket.gethostname()} ready." not in self.log_tail(chars=1 << 20):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"worker {self.name} did not start:\n{self.log_tail()}")
            time.sleep(0.1)
        return self

    def kill(self) -> None:
        """SIGKILL the whole process group: no warm shutdown, no ack, no cleanup."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.kill()

    def log_tail(self, chars: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""


def worker_env(queue: str, **overrides: str) -> dict[str, str]:
    """The environment of a worker on the test database and broker, consuming `queue`."""
    if not settings.CELERY_BROKER_URL:
        raise RuntimeError("worker tests need CELERY_BROKER_URL (make test sets a Redis broker)")
    return {
        **os.environ,
        "DATABASE_URL": tests_database_url(),
        **one_queue_env(queue),
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        **overrides,
    }


def one_queue_env(queue: str) -> dict[str, str]:
    """Environment variables that send every task, of every domain, to `queue` (a test run's own)."""
    return {"CELERY_DEFAULT_QUEUE": queue, **{f"CELERY_{group.upper()}_QUEUE": queue for group in settings.RECO_QUEUES}}


@contextmanager
def tasks_sent_to(queue: str) -> Iterator[None]:
    """While inside, this process sends every task to `queue`, as `one_queue_env` does for a worker."""
    from config.celery import app

    previous_default, previous_queues = app.conf.task_default_queue, settings.RECO_QUEUES
    app.conf.task_default_queue = queue
    settings.RECO_QUEUES = dict.fromkeys(previous_queues, queue)
    try:
        yield
    finally:
        app.conf.task_default_queue, settings.RECO_QUEUES = previous_default, previous_queues


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class RedisServer:
    """A private redis-server with nothing persisted: killing and starting it again gives an empty Redis."""

    port: int
    log_path: Path
    process: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        import redis

        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--logfile",
                str(self.log_path),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        client = redis.Redis.from_url(self.url, socket_timeout=0.5, socket_connect_timeout=0.5)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                return self
            except redis.exceptions.ConnectionError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server on {self.port} did not start") from None
                time.sleep(0.05)
            finally:
                client.close()

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)


def wait_for(condition, *, within: float, every: float = 0.2, message: str = "condition"):
    """Poll `condition()` until it returns something truthy (returned), or fail after `within` seconds."""
    deadline = time.monotonic() + within
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within:.0f} s waiting for {message}")
        time.sleep(every)
