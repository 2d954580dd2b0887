"""Fault injection for the reliability tests and bench/reliability.py: processes a test owns, and a load generator.

Everything here runs on 127.0.0.1 and only touches what it started itself, never the machine's own services:

- `redis_server()`: a private `redis-server` on a free port (no persistence) that can be frozen (SIGSTOP: the
  kernel still accepts connections, nothing answers, like a hung server), thawed, killed, and restarted empty.
- `tcp_proxy(host, port)`: a TCP proxy on a free port in front of PostgreSQL (point DATABASE_URL at it) that
  can freeze (sockets stay open, no byte moves: a hung database or network), thaw, kill (every connection
  closed, new ones refused: a dead database) and revive.
- `gunicorn_server(env)`: the web tier exactly as the README serves it (`gunicorn -c config/gunicorn.py
  config.wsgi`, WEB_CONCURRENCY and GUNICORN_BIND from the environment), its log in a temporary file.
- `load(url, rate, seconds, headers)`: an open-loop load generator (requests leave on schedule whatever the
  server does, so a stall shows as latency, not as fewer requests) returning one record per request;
  `recovered_at()` says from when on every answer was good again.
- `celery_worker(env, beat=...)`: a worker of config.celery (solo pool), optionally with its beat.
- `schemathesis_run(base_url, ...)`: schemathesis' CLI with every check against /api/schema/, its JSON report read.

Every process is stopped when its context exits and, as a last resort, at interpreter exit; every wait has a
deadline and every loop a bound. Importable by the tests and by bench/ scripts (which put the repository root
on sys.path).
"""

from __future__ import annotations

import atexit
import contextlib
import http.client
import json
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
LOOPBACK = "127.0.0.1"

# --- process bookkeeping --------------------------------------------------------------------------
_cleanups: dict[int, Callable[[], None]] = {}
_cleanups_lock = threading.Lock()


def _register(owner: object, cleanup: Callable[[], None]) -> None:
    with _cleanups_lock:
        _cleanups[id(owner)] = cleanup


def _unregister(owner: object) -> None:
    with _cleanups_lock:
        _cleanups.pop(id(owner), None)


@atexit.register
def _cleanup_everything() -> None:
    """Whatever a crashed test or an interrupted bench left running."""
    with _cleanups_lock:
        pending = list(_cleanups.values())
        _cleanups.clear()
    for cleanup in pending:
        with contextlib.suppress(Exception):
            cleanup()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        return probe.getsockname()[1]


def wait_until(
    condition: Callable[[], bool], *, seconds: float, interval: float = 0.1, what: str = "condition"
) -> None:
    """Poll `condition` until it holds; TimeoutError after `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(interval)
    if not condition():
        raise TimeoutError(f"{what} did not hold within {seconds:.0f} s")


def _stop_process(process: subprocess.Popen, *, group: bool, grace: float = 10.0) -> None:
    """SIGCONT (a frozen process cannot act on SIGTERM), SIGTERM, then SIGKILL after `grace` seconds.
    `group`: signal the process group the process leads (gunicorn's master and its workers)."""
    if process.poll() is not None:
        return

    def send(sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig) if group else process.send_signal(sig)

    send(signal.SIGCONT)
    send(signal.SIGTERM)
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        send(signal.SIGKILL)
        process.wait(timeout=10)
    if group:  # workers that outlived their master
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)


# --- Redis ----------------------------------------------------------------------------------------
class RedisServer:
    """A private redis-server on a free port; see `redis_server()`."""

    def __init__(self, *, startup_seconds: float = 10.0) -> None:
        self.port = free_port()
        self.url = f"redis://{LOOPBACK}:{self.port}/0"
        self.frozen = False
        self._startup_seconds = startup_seconds
        self._directory = tempfile.TemporaryDirectory(prefix="reco-redis-")
        self._process: subprocess.Popen | None = None
        _register(self, self.close)
        self._start()

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process and self._process.poll() is None else None

    def _start(self) -> None:
        self._process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                LOOPBACK,
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                self._directory.name,
                "--logfile",
                "",
                "--loglevel",
                "warning",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.frozen = False
        deadline = time.monotonic() + self._startup_seconds
        while not self.ping():
            if self._process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server on port {self.port} did not start (exit {self._process.poll()})")
            time.sleep(0.05)

    def ping(self, timeout: float = 0.5) -> bool:
        """Whether the server answers PING within `timeout` seconds."""
        try:
            with socket.create_connection((LOOPBACK, self.port), timeout=timeout) as connection:
                connection.sendall(b"PING\r\n")
                return connection.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def freeze(self) -> None:
        """SIGSTOP: connections are still accepted by the kernel, nothing is answered."""
        assert self._process is not None and self._process.poll() is None, "redis-server is not running"
        self._process.send_signal(signal.SIGSTOP)
        self.frozen = True

    def thaw(self) -> None:
        """SIGCONT: it answers again, with everything it held."""
        assert self._process is not None and self._process.poll() is None, "redis-server is not running"
        self._process.send_signal(signal.SIGCONT)
        self.frozen = False

    def kill(self) -> None:
        """SIGKILL: connections reset, the port refuses until restart()."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait(timeout=10)
        self.frozen = False

    def restart(self) -> None:
        """A new, empty redis-server on the same port (kills the old one first if it still runs)."""
        self.kill()
        self._start()

    def close(self) -> None:
        if self._process is not None:
            _stop_process(self._process, group=False, grace=5)
        self._directory.cleanup()
        _unregister(self)


@contextlib.contextmanager
def redis_server() -> Iterator[RedisServer]:
    """`with redis_server() as redis: ... redis.url, .freeze(), .thaw(), .kill(), .restart()`."""
    server = RedisServer()
    try:
        yield server
    finally:
        server.close()


# --- TCP proxy ------------------------------------------------------------------------------------
@dataclass
class _Pipe:
    """One proxied connection: the client's socket, the upstream socket, bytes waiting in each direction."""

    client: socket.socket
    upstream: socket.socket
    to_upstream: bytearray = field(default_factory=bytearray)
    to_client: bytearray = field(default_factory=bytearray)

    def close(self) -> None:
        for sock in (self.client, self.upstream):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()


class TcpProxy:
    """A TCP proxy on a free loopback port; see `tcp_proxy()`. One thread runs a select loop over every socket,
    and every change of state is carried out by that thread (no socket is closed under a select)."""

    BUFFER_LIMIT = 1 << 20  # stop reading a side while this much waits to be written to the other
    MAX_CONNECTIONS = 400  # beyond this a new connection is closed at once (select() handles ~1000 fds)

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self.frozen = False
        self.killed = False
        self.accepted = 0
        self._pipes: list[_Pipe] = []
        self._listener: socket.socket | None = self._listen()
        self._commands: list[tuple[str, threading.Event]] = []
        self._lock = threading.Lock()
        self._wake_read, self._wake_write = socket.socketpair()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name=f"tcp-proxy-{self.port}", daemon=True)
        _register(self, self.close)
        self._thread.start()

    def _listen(self) -> socket.socket:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((LOOPBACK, self.port))
        listener.listen(128)
        listener.setblocking(False)
        return listener

    # public controls: each waits until the loop thread has carried it out
    def freeze(self) -> None:
        """Stop moving bytes either way; connections stay open and new ones are accepted (and hang)."""
        self._command("freeze")

    def thaw(self) -> None:
        """Move bytes again; what waited is delivered."""
        self._command("thaw")

    def kill(self) -> None:
        """Close every connection and stop listening: new connections are refused."""
        self._command("kill")

    def revive(self) -> None:
        """Listen again on the same port (and thaw): the database is back."""
        self._command("revive")

    def _command(self, name: str, timeout: float = 5.0) -> None:
        done = threading.Event()
        with self._lock:
            self._commands.append((name, done))
        self._wake_write.send(b"x")
        if not done.wait(timeout):
            raise TimeoutError(f"the proxy did not {name} within {timeout} s")

    def _apply(self, name: str) -> None:
        if name == "freeze":
            self.frozen = True
        elif name == "thaw":
            self.frozen = False
        elif name == "kill":
            self.killed = True
            if self._listener is not None:
                self._listener.close()
                self._listener = None
            for pipe in self._pipes:
                pipe.close()
            self._pipes.clear()
        elif name == "revive":
            self.killed = self.frozen = False
            if self._listener is None:
                self._listener = self._listen()

    def _run(self) -> None:
        while not self._stopped:
            with self._lock:
                commands, self._commands = self._commands, []
            for name, done in commands:
                self._apply(name)
                done.set()
            if self._stopped:
                break
            readers: list[socket.socket] = [self._wake_read]
            writers: list[socket.socket] = []
            if self._listener is not None:
                readers.append(self._listener)
            if not self.frozen:
                for pipe in self._pipes:
                    for source, target, waiting in (
                        (pipe.client, pipe.upstream, pipe.to_upstream),
                        (pipe.upstream, pipe.client, pipe.to_client),
                    ):
                        if len(waiting) < self.BUFFER_LIMIT:
                            readers.append(source)
                        if waiting:
                            writers.append(target)
            try:
                readable, writable, _ = select.select(readers, writers, [], 0.1)
            except (OSError, ValueError):
                self._drop_dead()
                continue
            if self._wake_read in readable:
                with contextlib.suppress(BlockingIOError):
                    self._wake_read.recv(4096)
            if self._listener is not None and self._listener in readable:
                self._accept()
            if not self.frozen:
                self._pump(set(readable), set(writable))
        for pipe in self._pipes:
            pipe.close()
        if self._listener is not None:
            self._listener.close()

    def _accept(self) -> None:
        assert self._listener is not None
        for _ in range(64):  # bounded per loop turn
            try:
                client, _ = self._listener.accept()
            except (BlockingIOError, OSError):
                return
            if len(self._pipes) >= self.MAX_CONNECTIONS:
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=2.0)
            except OSError:
                client.close()
                continue
            client.setblocking(False)
            upstream.setblocking(False)
            for sock in (client, upstream):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._pipes.append(_Pipe(client, upstream))
            self.accepted += 1

    def _pump(self, readable: set, writable: set) -> None:
        closed = []
        for pipe in self._pipes:
            try:
                for source, waiting in ((pipe.client, pipe.to_upstream), (pipe.upstream, pipe.to_client)):
                    if source in readable:
                        data = source.recv(65536)
                        if not data:
                            raise ConnectionResetError("peer closed")
                        waiting.extend(data)
                for target, waiting in ((pipe.upstream, pipe.to_upstream), (pipe.client, pipe.to_client)):
                    if target in writable and waiting:
                        sent = target.send(waiting)
                        del waiting[:sent]
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                closed.append(pipe)
        for pipe in closed:
            pipe.close()
            self._pipes.remove(pipe)

    def _drop_dead(self) -> None:
        alive = []
        for pipe in self._pipes:
            if pipe.client.fileno() < 0 or pipe.upstream.fileno() < 0:
                pipe.close()
            else:
                alive.append(pipe)
        self._pipes = alive

    @property
    def connections(self) -> int:
        return len(self._pipes)

    def close(self) -> None:
        if not self._stopped:
            self._stopped = True
            with contextlib.suppress(OSError):
                self._wake_write.send(b"x")
            self._thread.join(timeout=5)
            self._wake_read.close()
            self._wake_write.close()
        _unregister(self)


@contextlib.contextmanager
def tcp_proxy(target_host: str, target_port: int) -> Iterator[TcpProxy]:
    """`with tcp_proxy("127.0.0.1", 5432) as proxy: ... proxy.port, .freeze(), .thaw(), .kill(), .revive()`."""
    proxy = TcpProxy(target_host, int(target_port))
    try:
        yield proxy
    finally:
        proxy.close()


# --- gunicorn -------------------------------------------------------------------------------------
class GunicornServer:
    """The web tier as documented, on a free port; see `gunicorn_server()`."""

    def __init__(
        self, env: Mapping[str, str], *, workers: int = 2, ready_path: str = "/healthz", ready_seconds: float = 120.0
    ) -> None:
        self.port = free_port()
        self.url = f"http://{LOOPBACK}:{self.port}"
        self.workers = workers
        handle, name = tempfile.mkstemp(prefix="reco-gunicorn-", suffix=".log")
        self.log_path = Path(name)
        self._log = os.fdopen(handle, "w")
        gunicorn = Path(sys.executable).with_name("gunicorn")
        command = [str(gunicorn)] if gunicorn.exists() else [sys.executable, "-m", "gunicorn"]
        # gunicorn 27 opens a control socket at one fixed path per user: several servers at once (tests, benches,
        # other people's) would take it from one another, so ours run without it; the command stays as documented.
        full_env = {
            "OPENBLAS_NUM_THREADS": "1",
            "OMP_NUM_THREADS": "1",
            "LOG_LEVEL": "INFO",
            "GUNICORN_CMD_ARGS": "--no-control-socket",
            **os.environ,
            **env,
            "GUNICORN_BIND": f"{LOOPBACK}:{self.port}",
            "WEB_CONCURRENCY": str(workers),
        }
        self.process = subprocess.Popen(
            [*command, "-c", "config/gunicorn.py", "config.wsgi"],
            cwd=ROOT,
            env=full_env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        _register(self, self.close)
        try:
            self._wait_ready(ready_path, ready_seconds)
        except BaseException:
            self.close()
            raise

    def _wait_ready(self, path: str, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                status, _, _ = request(self.url + path, timeout=2.0)
                if status == 200 and len(self.worker_pids()) >= self.workers:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"gunicorn did not answer {path} within {seconds:.0f} s:\n{self.log_tail()}")

    def log_text(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def log_tail(self, characters: int = 4000) -> str:
        return self.log_text()[-characters:]

    def worker_timeouts(self) -> int:
        """How many times the master killed a worker that overran gunicorn's timeout."""
        return self.log_text().count("WORKER TIMEOUT")

    def worker_pids(self) -> list[int]:
        """The master's current children (its workers)."""
        try:
            children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children").read_text()
        except OSError:
            return []
        return [int(pid) for pid in children.split()]

    def worker_rss_mib(self) -> dict[int, float]:
        """Resident set size of each worker in MiB."""
        sizes = {}
        for pid in self.worker_pids():
            with contextlib.suppress(OSError, StopIteration):
                line = next(x for x in Path(f"/proc/{pid}/status").read_text().splitlines() if x.startswith("VmRSS:"))
                sizes[pid] = round(int(line.split()[1]) / 1024, 1)
        return sizes

    def close(self) -> None:
        _stop_process(self.process, group=True, grace=15)
        if not self._log.closed:
            self._log.close()
        _unregister(self)


@contextlib.contextmanager
def gunicorn_server(
    env: Mapping[str, str], workers: int = 2, *, ready_path: str = "/healthz", keep_log: bool = False
) -> Iterator[GunicornServer]:
    """`gunicorn -c config/gunicorn.py config.wsgi` from the repository root with os.environ + `env`, on a free
    port; yields once `ready_path` answers 200 and every worker is forked (`.url` is the base URL). The log is in
    `.log_path` (deleted afterwards unless keep_log). Set DJANGO_SETTINGS_MODULE in `env` explicitly."""
    server = GunicornServer(env, workers=workers, ready_path=ready_path)
    try:
        yield server
    finally:
        server.close()
        if not keep_log:
            server.log_path.unlink(missing_ok=True)


# --- Celery ---------------------------------------------------------------------------------------
class CeleryWorker:
    """A Celery worker of config.celery (solo pool), optionally with an embedded beat; see `celery_worker()`."""

    def __init__(self, env: Mapping[str, str], *, beat: bool = False, ready_seconds: float = 90.0) -> None:
        self._directory = tempfile.TemporaryDirectory(prefix="reco-celery-")
        self.log_path = Path(self._directory.name) / "worker.log"
        self._log = self.log_path.open("w")
        name = f"reliability-{os.getpid()}-{free_port()}"
        command = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "--pool",
            "solo",
            "--loglevel",
            "INFO",
            "--without-gossip",
            "--without-mingle",
            "--hostname",
            f"{name}@%h",
        ]
        if beat:
            command += ["--beat", "--schedule", str(Path(self._directory.name) / "beat-schedule")]
        full_env = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", **os.environ, **env}
        self.process = subprocess.Popen(
            command, cwd=ROOT, env=full_env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )
        _register(self, self.close)
        try:
            wait_until(
                lambda: " ready." in self.log_text() or self.process.poll() is not None,
                seconds=ready_seconds,
                interval=0.2,
                what="the Celery worker being ready",
            )
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"the Celery worker exited with {self.process.returncode}:\n{self.log_text()[-4000:]}"
                )
        except BaseException:
            self.close()
            raise

    def log_text(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def close(self) -> None:
        _stop_process(self.process, group=True, grace=15)
        if not self._log.closed:
            self._log.close()
        self._directory.cleanup()
        _unregister(self)


@contextlib.contextmanager
def celery_worker(env: Mapping[str, str], *, beat: bool = False) -> Iterator[CeleryWorker]:
    """`celery -A config worker --pool solo` (and `--beat` if asked) with os.environ + `env`, until it says it is
    ready; stopped with its beat afterwards."""
    worker = CeleryWorker(env, beat=beat)
    try:
        yield worker
    finally:
        worker.close()


# --- HTTP and load --------------------------------------------------------------------------------
def request(
    url: str,
    *,
    method: str = "GET",
    headers: Mapping[str, str] | None = None,
    body: bytes | None = None,
    timeout: float = 5.0,
) -> tuple[int, dict[str, str], bytes]:
    """One HTTP request on a new connection: (status, headers with lower-case names, body)."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        connection.request(method, target or "/", body=body, headers=dict(headers or {}))
        response = connection.getresponse()
        payload = response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, payload
    finally:
        connection.close()


ERROR_KEYS = frozenset({"code", "message", "details"})


@dataclass(frozen=True)
class RequestRecord:
    """One request of a load run.

    sent_at: seconds from the start of the run at which it was scheduled to leave; latency_ms: from that moment
    to the full response (so time queued in the client is counted); status: 0 when no HTTP response came.
    flags: on a 200 JSON body its `degraded` reasons; on an error `code:<code>` when the body is the error shape
    (`{"code","message","details"}`), else `bad_error_shape` / `not_json`; without a response `transport:<Error>`.
    """

    sent_at: float
    latency_ms: float
    status: int
    flags: tuple[str, ...] = ()
    retry_after: str | None = None
    content_type: str = ""

    @property
    def full(self) -> bool:
        """A 200 that took no simpler path."""
        return self.status == 200 and not self.flags


def _flags(status: int, payload: bytes) -> tuple[str, ...]:
    try:
        body = json.loads(payload)
    except ValueError:
        return ("not_json",)
    if status == 200:
        return tuple(body.get("degraded", ())) if isinstance(body, dict) else ()
    if isinstance(body, dict) and set(body) == ERROR_KEYS:
        return (f"code:{body['code']}",)
    return ("bad_error_shape",)


def percentiles(latencies_ms: Sequence[float]) -> dict[str, float | None]:
    """p50, p95 and p99 in milliseconds (None when there is nothing to measure)."""
    if not len(latencies_ms):
        return {"p50_ms": None, "p95_ms": None, "p99_ms": None}
    values = np.asarray(latencies_ms, dtype=float)
    return {f"p{q}_ms": round(float(np.percentile(values, q)), 2) for q in (50, 95, 99)}


def summarize(records: Sequence[RequestRecord], seconds: float | None = None) -> dict:
    """Counts and latency percentiles of some records (`seconds`: the span they cover, for the throughput)."""
    span = seconds or ((max(r.sent_at for r in records) - min(r.sent_at for r in records)) if records else 0)
    return {
        "requests": len(records),
        "ok": sum(r.status == 200 for r in records),
        "full": sum(r.full for r in records),
        "degraded": sum(r.status == 200 and bool(r.flags) for r in records),
        "non_200": sum(r.status != 200 for r in records),
        "server_errors": sum(r.status >= 500 for r in records),
        "no_response": sum(r.status == 0 for r in records),
        "throughput_rps": round(sum(r.status != 0 for r in records) / span, 1) if span else None,
        **percentiles([r.latency_ms for r in records]),
    }


def recovered_at(
    records: Sequence[RequestRecord], *, after: float, good: Callable[[RequestRecord], bool] = lambda r: r.full
) -> float | None:
    """The earliest send time at or past `after` from which every later request is `good` (by default a full
    200), as seconds from the start of the run; None if the last request is not good or none left after it."""
    later = [r for r in records if r.sent_at >= after]
    if not later or not good(later[-1]):
        return None
    for index in range(len(later) - 1, -1, -1):
        if not good(later[index]):
            return later[index + 1].sent_at  # the first good one after the last bad one
    return after


@dataclass
class LoadResult:
    """What `load()` saw: every request, and when each scheduled action finished (`actions`) and began
    (`actions_started`), in seconds from the start."""

    records: list[RequestRecord]
    seconds: float
    actions: dict[str, float] = field(default_factory=dict)
    actions_started: dict[str, float] = field(default_factory=dict)

    def between(self, start: float, end: float) -> list[RequestRecord]:
        """The requests scheduled to leave in [start, end) seconds from the start."""
        return [r for r in self.records if start <= r.sent_at < end]

    def within(self, start: float, end: float) -> list[RequestRecord]:
        """The requests that left at or after `start` and were answered before `end`."""
        return [r for r in self.records if start <= r.sent_at and r.sent_at + r.latency_ms / 1000 < end]

    def summary(self, start: float = 0.0, end: float | None = None) -> dict:
        end = self.seconds if end is None else end
        return summarize(self.between(start, end), seconds=end - start)


Action = tuple[float, str, Callable[[], object]]


def load(
    url: str | Callable[[int], str],
    rate: float,
    seconds: float,
    headers: Mapping[str, str] | None = None,
    *,
    timeout: float = 5.0,
    actions: Sequence[Action] = (),
    max_in_flight: int = 64,
    stop: threading.Event | None = None,
) -> LoadResult:
    """GET `url` (or `url(i)` for the i-th request) `rate` times a second for `seconds`, open loop.

    Each request uses a new connection (gunicorn's sync workers close it anyway) and gives up after `timeout`
    seconds per socket operation. `actions`: (at_seconds, name, callable) run on their own thread at that
    offset, e.g. (5.0, "freeze", redis.freeze); LoadResult.actions says when each finished. Bounded: exactly
    int(rate * seconds) requests, at most `max_in_flight` at once, and the call returns within about
    seconds + 2 * timeout. `stop`: set it to end the run early (LoadResult.seconds then says how long it ran).
    """
    total = int(rate * seconds)
    records: list[RequestRecord] = []
    lock = threading.Lock()
    started_actions: dict[str, float] = {}
    done_actions: dict[str, float] = {}
    failed_actions: list[BaseException] = []
    start = time.perf_counter()

    def one(i: int, scheduled: float) -> None:
        target = url(i) if callable(url) else url
        try:
            status, response_headers, payload = request(target, headers=headers, timeout=timeout)
            flags = _flags(status, payload)
            retry_after, content_type = response_headers.get("retry-after"), response_headers.get("content-type", "")
        except (OSError, http.client.HTTPException) as error:
            status, flags, retry_after, content_type = 0, (f"transport:{type(error).__name__}",), None, ""
        latency = (time.perf_counter() - scheduled) * 1000
        with lock:
            records.append(
                RequestRecord(scheduled - start, round(latency, 3), status, flags, retry_after, content_type)
            )

    def run_actions() -> None:
        for at, name, action in sorted(actions, key=lambda a: a[0]):
            delay = start + at - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            started_actions[name] = round(time.perf_counter() - start, 3)
            try:
                action()
            except Exception as error:
                failed_actions.append(error)
            done_actions[name] = round(time.perf_counter() - start, 3)

    actor = threading.Thread(target=run_actions, name="load-actions", daemon=True)
    actor.start()
    slots = threading.BoundedSemaphore(max_in_flight)
    with ThreadPoolExecutor(max_workers=max_in_flight, thread_name_prefix="load") as pool:
        for i in range(total):
            if stop is not None and stop.is_set():
                seconds = i / rate
                break
            scheduled = start + i / rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            if not slots.acquire(timeout=2 * timeout + 1):  # every slot stuck: count it, do not wait forever
                with lock:
                    records.append(RequestRecord(scheduled - start, float("inf"), 0, ("transport:client_saturated",)))
                continue
            future = pool.submit(one, i, scheduled)
            future.add_done_callback(lambda _: slots.release())
    actor.join(timeout=max(0.0, start + seconds + 2 * timeout - time.perf_counter()) + 30)
    if failed_actions:
        raise RuntimeError(f"a load action failed: {failed_actions[0]!r}") from failed_actions[0]
    records.sort(key=lambda r: r.sent_at)
    return LoadResult(records, seconds, dict(done_actions), dict(started_actions))


# --- schemathesis ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class SchemathesisResult:
    """One `schemathesis run`: its exit code (None if it overran), the cases it generated, the operations it
    tested, its failures as {"ST200 Title": {"count", "operations"}}, its errors, and the tail of its output."""

    exit_code: int | None
    cases: int
    operations: int
    failures: dict[str, dict]
    errors: list
    seconds: float
    output_tail: str

    @property
    def server_errors(self) -> int:
        """Cases answered 5xx (schemathesis' not_a_server_error check)."""
        return sum(f["count"] for name, f in self.failures.items() if "server error" in name.lower())


def schemathesis_run(
    base_url: str,
    *,
    api_key: str,
    report_dir: Path,
    max_examples: int,
    seed: int,
    timeout: float,
    workers: int = 1,
    extra: Sequence[str] = (),
) -> SchemathesisResult:
    """schemathesis' CLI (the venv's) against `base_url`/api/schema/: every operation, every check (undocumented
    status codes, content types and headers, response schemas, server errors, auth ignored, ...), sending the
    API key, `max_examples` per operation in the fuzzing phase (its coverage phase adds a few hundred), no
    shrinking and every failure of a case kept, stopped after `timeout` seconds. Reads the run's JSON report."""
    executable = Path(sys.executable).with_name("schemathesis")
    report_dir = report_dir.resolve()
    report_dir.mkdir(parents=True, exist_ok=True)
    report = report_dir / f"schemathesis-{seed}.json"
    command = [
        str(executable),
        "--config-file",
        str(ROOT / "schemathesis.toml"),
        "run",
        f"{base_url}/api/schema/",
        "--checks",
        "all",
        "--max-examples",
        str(max_examples),
        "--seed",
        str(seed),
        "--header",
        f"X-Api-Key: {api_key}",
        "--workers",
        str(workers),
        "--no-color",
        "--generation-database",
        "none",
        "--no-shrink",
        "--continue-on-failure",
        "--request-timeout",
        "10",
        "--report",
        "json",
        "--report-json-path",
        str(report),
        *extra,
    ]
    started = time.monotonic()
    try:
        # its working directory: schemathesis keeps a cache folder (.schemathesis/) there
        completed = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=report_dir)
        exit_code, output = completed.returncode, completed.stdout + completed.stderr
    except subprocess.TimeoutExpired as expired:
        exit_code, output = None, f"{expired.stdout or ''}\n... stopped after {timeout:.0f} s"
        output = output if isinstance(output, str) else output.decode(errors="replace")
    seconds = round(time.monotonic() - started, 1)
    if not report.exists():
        return SchemathesisResult(exit_code, 0, 0, {}, [], seconds, output[-20000:])
    summary = json.loads(report.read_text())
    failures = {
        f"{f['code']} {f['title']}": {"count": f["count"], "operations": f["operations"]}
        for f in summary.get("failures", [])
    }
    return SchemathesisResult(
        exit_code,
        summary["test_cases"]["generated"],
        summary["operations"]["tested"],
        failures,
        summary.get("errors", []),
        seconds,
        output[-20000:],
    )
