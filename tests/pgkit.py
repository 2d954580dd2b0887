"""A private PostgreSQL primary and streaming replica for the replica tests and bench scripts.

Never the machine's own server: `pg_pair()` initdb's a primary in a temporary directory on a free port (as the
`postgres` user when run as root, since initdb refuses root; else as the current user; trust on 127.0.0.1,
wal_level=replica, fsync off), pg_basebackup's it into a second directory (`-R`: a standby that streams from the
primary) and starts that on another free port. The replica can be stopped and started again, frozen (SIGSTOP
on every process of it: connections are accepted by the kernel, nothing answers) and thawed, and made to lag
(`recovery_min_apply_delay`, set with ALTER SYSTEM and a reload on the replica). Every wait has a deadline;
both servers stop and their directories go when the context exits or, as a last resort, at interpreter exit.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg

from tests.faultkit import LOOPBACK, _register, _unregister, free_port, wait_until

BIN = Path(os.environ.get("RECO_PG_BIN", "/usr/lib/postgresql/15/bin"))
SUPERUSER = "postgres"
_SETTINGS = """
listen_addresses = '127.0.0.1'
port = {port}
unix_socket_directories = '{socket_dir}'
wal_level = replica
max_wal_senders = 5
hot_standby = on
fsync = off
full_page_writes = off
shared_buffers = 32MB
max_connections = 60
logging_collector = off
"""
_HBA = """
local all all trust
host all all 127.0.0.1/32 trust
host replication all 127.0.0.1/32 trust
"""


def _as_postgres(*command: str, timeout: float = 60.0) -> None:
    """Run a PostgreSQL binary, as the postgres user when this is root (initdb refuses root; any other user
    runs it as itself); RuntimeError with its output when it fails."""
    prefix = ["runuser", "-u", SUPERUSER, "--"] if os.geteuid() == 0 else []
    result = subprocess.run([*prefix, *command], capture_output=True, text=True, timeout=timeout, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{Path(command[0]).name} failed ({result.returncode}): {result.stderr or result.stdout}")


class PgServer:
    """One private cluster: its data directory, port and pg_ctl."""

    def __init__(self, data_dir: Path, port: int) -> None:
        self.data_dir = data_dir
        self.port = port
        self.log_path = data_dir.parent / f"{data_dir.name}.log"

    def url(self, database: str) -> str:
        return f"postgres://{SUPERUSER}@{LOOPBACK}:{self.port}/{database}"

    def connect(self, database: str = "postgres", *, timeout: int = 5) -> psycopg.Connection:
        return psycopg.connect(
            host=LOOPBACK, port=self.port, user=SUPERUSER, dbname=database, autocommit=True, connect_timeout=timeout
        )

    def start(self, *, seconds: int = 60) -> None:
        _as_postgres(
            str(BIN / "pg_ctl"),
            "-D",
            str(self.data_dir),
            "-l",
            str(self.log_path),
            "-w",
            "-t",
            str(seconds),
            "start",
            timeout=seconds + 10,
        )

    def stop(self, *, mode: str = "fast", seconds: int = 30) -> None:
        """pg_ctl stop (`immediate`: like a crash); thaws a frozen server first, a stopped one is left alone."""
        if not self.running:
            return
        self._signal_all(signal.SIGCONT)
        _as_postgres(
            str(BIN / "pg_ctl"),
            "-D",
            str(self.data_dir),
            "-m",
            mode,
            "-w",
            "-t",
            str(seconds),
            "stop",
            timeout=seconds + 10,
        )

    @property
    def running(self) -> bool:
        pid = self._postmaster_pid()
        return pid is not None and Path(f"/proc/{pid}").exists()

    def freeze(self) -> None:
        """SIGSTOP the postmaster and every backend: a hung server (new and open connections get no answer)."""
        self._signal_all(signal.SIGSTOP)

    def thaw(self) -> None:
        self._signal_all(signal.SIGCONT)

    def log_tail(self, characters: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-characters:]
        except OSError:
            return ""

    def _postmaster_pid(self) -> int | None:
        try:
            return int((self.data_dir / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def _signal_all(self, sig: int) -> None:
        pid = self._postmaster_pid()
        if pid is None:
            return
        try:
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except OSError:
            children = []
        for target in [pid, *map(int, children)]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(target, sig)


class PgPair:
    """A primary and a streaming replica of it; see `pg_pair()`."""

    def __init__(self, *, database: str = "reco") -> None:
        self.database = database
        self._directory = Path(tempfile.mkdtemp(prefix="reco-pgpair-"))
        if os.geteuid() == 0:
            shutil.chown(self._directory, SUPERUSER, SUPERUSER)
        self.primary = PgServer(self._directory / "primary", free_port())
        self.replica = PgServer(self._directory / "replica", free_port())
        _register(self, self.close)
        try:
            self._build()
        except BaseException:
            self.close()
            raise

    def _build(self) -> None:
        primary = self.primary
        _as_postgres(
            str(BIN / "initdb"),
            "-D",
            str(primary.data_dir),
            "-U",
            SUPERUSER,
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--no-sync",
            "--no-instructions",
        )
        with open(primary.data_dir / "postgresql.conf", "a") as conf:
            conf.write(_SETTINGS.format(port=primary.port, socket_dir=self._directory))
        (primary.data_dir / "pg_hba.conf").write_text(_HBA)
        primary.start()
        with primary.connect() as connection:
            connection.execute(f'CREATE DATABASE "{self.database}"')
        _as_postgres(
            str(BIN / "pg_basebackup"),
            "-h",
            LOOPBACK,
            "-p",
            str(primary.port),
            "-U",
            SUPERUSER,
            "-D",
            str(self.replica.data_dir),
            "-R",
            "-X",
            "stream",
            "--checkpoint=fast",
            "--no-sync",
        )
        with open(self.replica.data_dir / "postgresql.conf", "a") as conf:
            conf.write(f"port = {self.replica.port}\n")
        self.replica.start()
        wait_until(self._streaming, seconds=30, what="the replica streaming from the primary")

    @property
    def primary_url(self) -> str:
        return self.primary.url(self.database)

    @property
    def replica_url(self) -> str:
        return self.replica.url(self.database)

    def _streaming(self) -> bool:
        with self.primary.connect() as connection:
            return (
                connection.execute("SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'").fetchone()[0]
                > 0
            )

    def delay_replica(self, seconds: float) -> None:
        """Replay on the replica only `seconds` after each commit (0: at once again); takes effect on reload."""
        with self.replica.connect() as connection:
            connection.execute(f"ALTER SYSTEM SET recovery_min_apply_delay = '{int(seconds * 1000)}ms'")
            connection.execute("SELECT pg_reload_conf()")

    def wait_replica_caught_up(self, *, seconds: float = 30.0) -> None:
        """Until the replica has replayed everything the primary had written when this was called."""
        with self.primary.connect() as connection:
            target = connection.execute("SELECT pg_current_wal_insert_lsn()").fetchone()[0]

        def replayed() -> bool:
            with self.replica.connect() as connection:
                return bool(connection.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", [target]).fetchone()[0])

        wait_until(replayed, seconds=seconds, interval=0.05, what="the replica catching up")

    def stop_replica(self) -> None:
        self.replica.stop(mode="immediate")

    def start_replica(self) -> None:
        self.replica.start()
        wait_until(self._streaming, seconds=30, what="the replica streaming again")

    def promote_replica(self) -> None:
        """pg_ctl promote: the replica becomes a primary of its own and stops following (for good, in this pair)."""
        _as_postgres(str(BIN / "pg_ctl"), "-D", str(self.replica.data_dir), "-w", "-t", "30", "promote", timeout=40)

    def close(self) -> None:
        for server in (self.replica, self.primary):
            with contextlib.suppress(Exception):
                server.stop(mode="immediate")
        shutil.rmtree(self._directory, ignore_errors=True)
        _unregister(self)


@contextlib.contextmanager
def pg_pair(*, database: str = "reco") -> Iterator[PgPair]:
    """`with pg_pair() as pair: pair.primary_url, pair.replica_url, pair.delay_replica(30), pair.stop_replica()`."""
    pair = PgPair(database=database)
    try:
        yield pair
    finally:
        pair.close()


def backend_count(server: PgServer, database: str, *, application_name: str | None = None) -> int:
    """Client sessions on `database` of `server` right now, other than this one (pg_stat_activity)."""
    sql = "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()"
    params: list = [database]
    if application_name is not None:
        sql += " AND application_name = %s"
        params.append(application_name)
    with server.connect() as connection:
        return connection.execute(sql, params).fetchone()[0]
