"""A multi-host Reco deployment on one machine, for bench/rehearsal.py and tests/rehearsal/ (one code path).

`deployment(world)` builds it with network namespaces it makes itself, all named `rh5-*` (`PREFIX`):

- a hub namespace holding a bridge; every host is a namespace with one veth (`eth0`, 10.231.55.N/24) on it,
  and the root namespace gets one veth too (`rh5-root`, .1) so this process (the operator and the load
  generator) reaches every host. Nothing else of the machine is touched: no other interface, no firewall rule,
  no system service;
- `lb` (.10): our own haproxy process and config file, health checks on /readyz, `option redispatch`,
  `retries`, `retry-on` and `observe layer7`, in front of `web1`/`web2` (.21/.22): gunicorn as the README
  serves it (`gunicorn -c config/gunicorn.py config.wsgi`, production settings, 2 workers each);
- `redis1..3` (.41-.43): a Redis Cluster of 3 masters + 3 replicas, two nodes per host (ports 6379 and 6380;
  redis-cli puts each replica on another host than its master), `cluster-require-full-coverage no`;
- `pg1` (.31) the PostgreSQL primary and `pg2` (.32) its streaming replica (pg_basebackup -R; tests/pgkit.py's
  server and settings), database `reco_h5`;
- `mq` (.50): a private rabbitmq-server (its own node name, ports, mnesia and log directories, and HOME for
  the Erlang cookie; epmd starts inside the namespace) with quorum queues as the settings declare them;
- `worker1`/`worker2` (.61/.62): `celery worker` (prefork, 1 process, every queue), `beat` (.63): one beat.

It loads a synthetic world (manage.py migrate, generate_synthetic, train_models, create_api_client, run
from the root namespace against the primary), refreshes the features through the workers (the sharded
refresh) and starts the web tier. Faults: `kill_host()` (SIGKILL of every process in a namespace),
`kill_redis_master()`, `stop_replica()`. Every wait has a deadline; everything stops and every namespace,
link and directory goes when the context exits (also on Ctrl-C or an exception) and, as a last resort, at
interpreter exit; `cleanup_leftovers()` removes what a killed run left, by name prefix.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from tests import pgkit
from tests.clusterkit import NODE_TIMEOUT_MS
from tests.faultkit import (
    ROOT,
    LoadResult,
    RequestRecord,
    _register,
    _unregister,
    load,
    recovered_at,
    request,
    summarize,
    wait_until,
)

PREFIX = "rh5"  # every namespace, link and temporary directory this kit makes starts with it
SUBNET = "10.231.55"  # a private /24 nothing on this machine routes (checked before use)
DATABASE = "reco_h5"
ROOT_LINK = f"{PREFIX}-root"
HUB = f"{PREFIX}-hub"
BRIDGE = "br0"
HOSTS = {
    "lb": 10,
    "web1": 21,
    "web2": 22,
    "pg1": 31,
    "pg2": 32,
    "redis1": 41,
    "redis2": 42,
    "redis3": 43,
    "mq": 50,
    "worker1": 61,
    "worker2": 62,
    "beat": 63,
}
REDIS_PORTS = (6379, 6380)
WEB_PORT = 8000
LB_PORT = 80
AMQP_PORT = 5672
API_HOST = "rehearsal.internal"  # the Host header of haproxy's health checks
# What an answer says when a model kind is not active (recommendations.serving.engine's CACHEABLE_DEGRADATIONS): the
# world trains popularity, MF and content (no ranker: 30 s more), and MF serves only if it passed the gate.
MODEL_FLAGS = {
    "no_ranker": {"ranker"},
    "no_collaborative_model": {"mf", "ncf", "ease"},
    "no_content_model": {"content"},
}
FAN_OUT = "tasks.features.refresh_user_features"
SHARD = "tasks.features.refresh_user_features_shard"


def netns_permitted() -> tuple[bool, str]:
    """Whether this process may make network namespaces (root, `ip` present, netns allowed), and why not."""
    if shutil.which("ip") is None:
        return False, "iproute2's `ip` is not installed"
    if os.geteuid() != 0:
        return False, "making network namespaces (ip netns add) needs root"
    probe = f"{PREFIX}-probe-{os.getpid()}"
    result = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True, timeout=10, check=False)
    if result.returncode != 0:
        return False, f"ip netns add is not permitted here: {result.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True, timeout=10, check=False)
    return True, ""


def _ip(*args: str, netns: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    command = ["ip", *(["-n", netns] if netns else []), *args]
    result = subprocess.run(command, capture_output=True, text=True, timeout=15, check=False)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)}: {result.stderr.strip()}")
    return result


def _namespaces() -> list[str]:
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=10, check=False).stdout
    return [line.split()[0] for line in listed.splitlines() if line.strip()]


def namespace_pids(netns: str) -> list[int]:
    """Every process whose network namespace is `netns`."""
    out = subprocess.run(["ip", "netns", "pids", netns], capture_output=True, text=True, timeout=10, check=False).stdout
    return [int(pid) for pid in out.split()]


def _kill_namespace_processes(netns: str, sig: int = signal.SIGKILL) -> int:
    pids = namespace_pids(netns)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
    return len(pids)


def cleanup_leftovers() -> list[str]:
    """What a killed run left, by name: its namespaces' processes (SIGKILL), the namespaces, the root link,
    the temporary directories. Returns what it removed."""
    removed = []
    ours = [name for name in _namespaces() if name.startswith(f"{PREFIX}-")]
    for name in ours:
        _kill_namespace_processes(name)
    for name in ours:
        with contextlib.suppress(Exception):
            wait_until(lambda n=name: not namespace_pids(n), seconds=10, interval=0.1, what=f"{name} emptied")
        _ip("netns", "del", name, check=False)
        removed.append(f"netns {name}")
    if _ip("link", "show", ROOT_LINK, check=False).returncode == 0:
        _ip("link", "del", ROOT_LINK, check=False)
        removed.append(f"link {ROOT_LINK}")
    for directory in Path(tempfile.gettempdir()).glob(f"{PREFIX}-deploy-*"):
        shutil.rmtree(directory, ignore_errors=True)
        removed.append(str(directory))
    return removed


# --- hosts ----------------------------------------------------------------------------------------------
@dataclass
class Host:
    """One network namespace on the hub's bridge: its name, address and the processes we started in it."""

    name: str
    ip: str
    processes: list[subprocess.Popen] = field(default_factory=list)

    @property
    def netns(self) -> str:
        return f"{PREFIX}-{self.name}"

    def popen(self, command: Sequence[str], *, env: dict[str, str], log: Path, cwd: Path = ROOT) -> subprocess.Popen:
        """`command` inside this host, in a session of its own, output appended to `log`."""
        with open(log, "ab") as handle:
            process = subprocess.Popen(
                ["ip", "netns", "exec", self.netns, *command],
                cwd=cwd,
                env=env,
                stdout=handle,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.processes.append(process)
        return process

    def run(self, command: Sequence[str], *, env: dict[str, str] | None = None, timeout: float = 60) -> str:
        result = subprocess.run(
            ["ip", "netns", "exec", self.netns, *command],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"{self.name}: {' '.join(command)} failed: {(result.stderr or result.stdout)[-2000:]}")
        return result.stdout

    def kill_all(self) -> int:
        """SIGKILL every process in this host (the machine lost power); returns how many there were."""
        count = _kill_namespace_processes(self.netns)
        for process in self.processes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=10)
        self.processes.clear()
        return count


class Network:
    """The hub with its bridge, the root namespace's link to it, and one namespace per host."""

    def __init__(self, names: Sequence[str]) -> None:
        routes = _ip("route", "show").stdout
        if f"{SUBNET}." in routes or _namespaces_with_prefix():
            raise RuntimeError(
                f"{SUBNET}.0/24 or {PREFIX}-* namespaces are in use: another rehearsal is running, or a "
                "killed one left them (bench/rehearsal.py --cleanup removes them)"
            )
        self.hosts: dict[str, Host] = {}
        try:
            _ip("netns", "add", HUB)
            _ip("link", "set", "lo", "up", netns=HUB)
            _ip("link", "add", BRIDGE, "type", "bridge", netns=HUB)
            _ip("link", "set", BRIDGE, "up", netns=HUB)
            _ip("link", "add", ROOT_LINK, "type", "veth", "peer", "name", "root", "netns", HUB)
            self._attach("root")
            _ip("addr", "add", f"{SUBNET}.1/24", "dev", ROOT_LINK)
            _ip("link", "set", ROOT_LINK, "up")
            for name in names:
                self.add_host(name)
        except BaseException:
            self.close()
            raise

    def _attach(self, port: str) -> None:
        _ip("link", "set", port, "master", BRIDGE, netns=HUB)
        _ip("link", "set", port, "up", netns=HUB)

    def add_host(self, name: str) -> Host:
        host = Host(name, f"{SUBNET}.{HOSTS[name]}")
        _ip("netns", "add", host.netns)
        self.hosts[name] = host  # from here on close() removes it
        _ip("link", "add", "eth0", "netns", host.netns, "type", "veth", "peer", "name", name, "netns", HUB)
        self._attach(name)
        _ip("addr", "add", f"{host.ip}/24", "dev", "eth0", netns=host.netns)
        _ip("link", "set", "eth0", "up", netns=host.netns)
        _ip("link", "set", "lo", "up", netns=host.netns)
        return host

    def close(self) -> None:
        for host in self.hosts.values():
            host.kill_all()
        for host in self.hosts.values():
            _ip("netns", "del", host.netns, check=False)
        _ip("link", "del", ROOT_LINK, check=False)
        _ip("netns", "del", HUB, check=False)


def _namespaces_with_prefix() -> list[str]:
    return [name for name in _namespaces() if name.startswith(f"{PREFIX}-")]


# --- PostgreSQL: tests/pgkit.py's server, started inside a host ----------------------------------------
class NetnsPgServer(pgkit.PgServer):
    """pgkit's PgServer listening on a host's address, started inside the host's namespace."""

    def __init__(self, data_dir: Path, host: Host) -> None:
        super().__init__(data_dir, 5432)
        self.host = host

    def url(self, database: str) -> str:
        return f"postgres://{pgkit.SUPERUSER}@{self.host.ip}:{self.port}/{database}"

    def connect(self, database: str = "postgres", *, timeout: int = 5) -> psycopg.Connection:
        return psycopg.connect(
            host=self.host.ip,
            port=self.port,
            user=pgkit.SUPERUSER,
            dbname=database,
            autocommit=True,
            connect_timeout=timeout,
        )

    def start(self, *, seconds: int = 60) -> None:
        self.host.run(
            [
                "runuser",
                "-u",
                pgkit.SUPERUSER,
                "--",
                str(pgkit.BIN / "pg_ctl"),
                "-D",
                str(self.data_dir),
                "-l",
                str(self.log_path),
                "-w",
                "-t",
                str(seconds),
                "start",
            ],
            timeout=seconds + 10,
        )


def _pg_conf(server: NetnsPgServer, socket_dir: Path) -> str:
    return pgkit._SETTINGS.format(port=server.port, socket_dir=socket_dir) + f"listen_addresses = '{server.host.ip}'\n"


_HBA = f"host all all {SUBNET}.0/24 trust\nhost replication all {SUBNET}.0/24 trust\n"


def pg_primary_and_replica(
    primary_host: Host, replica_host: Host, directory: Path
) -> tuple[NetnsPgServer, NetnsPgServer]:
    """initdb a primary in `primary_host`, pg_basebackup -R it from `replica_host` and start the standby there."""
    directory.mkdir()
    shutil.chown(directory, pgkit.SUPERUSER, pgkit.SUPERUSER)
    primary = NetnsPgServer(directory / "primary", primary_host)
    replica = NetnsPgServer(directory / "replica", replica_host)
    pgkit._as_postgres(
        str(pgkit.BIN / "initdb"),
        "-D",
        str(primary.data_dir),
        "-U",
        pgkit.SUPERUSER,
        "-A",
        "trust",
        "-E",
        "UTF8",
        "--no-sync",
        "--no-instructions",
    )
    with open(primary.data_dir / "postgresql.conf", "a") as conf:
        conf.write(_pg_conf(primary, directory) + "max_connections = 200\n")
    (primary.data_dir / "pg_hba.conf").write_text(pgkit._HBA + _HBA)
    primary.start()
    with primary.connect() as connection:
        connection.execute(f'CREATE DATABASE "{DATABASE}"')
    replica_host.run(
        [
            "runuser",
            "-u",
            pgkit.SUPERUSER,
            "--",
            str(pgkit.BIN / "pg_basebackup"),
            "-h",
            primary_host.ip,
            "-U",
            pgkit.SUPERUSER,
            "-D",
            str(replica.data_dir),
            "-R",
            "-X",
            "stream",
            "--checkpoint=fast",
            "--no-sync",
        ],
        timeout=120,
    )
    replica_sockets = directory / "replica-sockets"  # both listen on 5432: each its own socket directory
    replica_sockets.mkdir()
    shutil.chown(replica_sockets, pgkit.SUPERUSER, pgkit.SUPERUSER)
    with open(replica.data_dir / "postgresql.conf", "a") as conf:
        conf.write(f"listen_addresses = '{replica_host.ip}'\nunix_socket_directories = '{replica_sockets}'\n")
    replica.start()
    wait_until(lambda: _streaming(primary), seconds=30, what="the replica streaming from the primary")
    return primary, replica


def _streaming(primary: NetnsPgServer) -> bool:
    with primary.connect() as connection:
        return (
            connection.execute("SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'").fetchone()[0] > 0
        )


# --- Redis Cluster across hosts ---------------------------------------------------------------------------
@dataclass
class ClusterNode:
    host: Host
    port: int
    directory: Path
    process: subprocess.Popen | None = None

    @property
    def address(self) -> str:
        return f"{self.host.ip}:{self.port}"

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, env: dict[str, str]) -> None:
        self.directory.mkdir(exist_ok=True)
        self.process = self.host.popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                self.host.ip,
                "--protected-mode",
                "no",
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                str(self.directory / "nodes.conf"),
                "--cluster-node-timeout",
                str(NODE_TIMEOUT_MS),
                "--cluster-require-full-coverage",
                "no",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
                "--loglevel",
                "warning",
            ],
            env=env,
            log=self.directory / "redis.log",
        )

    def cli(self, *command: str) -> str:
        result = subprocess.run(
            ["redis-cli", "-h", self.host.ip, "-p", str(self.port), *command],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
        return result.stdout

    def info(self, section: str) -> dict[str, str]:
        return dict(line.strip().split(":", 1) for line in self.cli("INFO", section).splitlines() if ":" in line)

    def cluster_ok(self) -> bool:
        info = dict(line.strip().split(":", 1) for line in self.cli("CLUSTER", "INFO").splitlines() if ":" in line)
        return info.get("cluster_state") == "ok" and info.get("cluster_slots_ok") == "16384"


class RedisCluster:
    """Six cluster nodes over three hosts, joined by `redis-cli --cluster create --cluster-replicas 1`."""

    def __init__(self, hosts: Sequence[Host], directory: Path, env: dict[str, str]) -> None:
        directory.mkdir()
        self.env = env
        self.nodes = [
            ClusterNode(host, port, directory / f"{host.name}-{port}") for port in REDIS_PORTS for host in hosts
        ]
        for node in self.nodes:
            node.start(env)
        for node in self.nodes:
            wait_until(
                lambda n=node: n.cli("PING").strip() == "PONG", seconds=20, interval=0.05, what=f"{node.address} up"
            )
        # the first three are masters, one per host; redis-cli places each replica on another host than its master
        subprocess.run(
            [
                "redis-cli",
                "--cluster",
                "create",
                *[n.address for n in self.nodes],
                "--cluster-replicas",
                "1",
                "--cluster-yes",
            ],
            check=True,
            capture_output=True,
            timeout=30,
        )
        self.wait_ok(seconds=30)

    @property
    def urls(self) -> list[str]:
        return [f"redis://{node.address}" for node in self.nodes]

    def wait_ok(self, *, seconds: float) -> None:
        wait_until(
            lambda: all(n.cluster_ok() for n in self.nodes if n.alive),
            seconds=seconds,
            interval=0.1,
            what="cluster_state:ok on every node",
        )

    def masters(self) -> list[ClusterNode]:
        return [n for n in self.nodes if n.alive and n.info("replication").get("role") == "master"]

    def kill(self, node: ClusterNode) -> None:
        """SIGKILL one node: its replica is promoted after the node timeout."""
        if node.process is not None and node.alive:
            node.process.kill()
            node.process.wait(timeout=10)

    def restart(self, node: ClusterNode) -> None:
        """Start a killed node again with its nodes.conf: it rejoins, as a replica of the node that replaced it."""
        node.start(self.env)
        wait_until(lambda: node.cli("PING").strip() == "PONG", seconds=20, interval=0.05, what=f"{node.address} back")


# --- RabbitMQ ---------------------------------------------------------------------------------------------
class RabbitMQ:
    """A private rabbitmq-server inside `host`: its own node name, config, mnesia, logs and HOME (cookie)."""

    NODE = "rh5@localhost"  # `localhost` is the namespace's own loopback: epmd and the node's dist port live there

    def __init__(self, host: Host, directory: Path, base_env: dict[str, str]) -> None:
        self.host = host
        directory.mkdir()
        (directory / "home").mkdir()
        conf = directory / "rabbitmq.conf"
        # guest may connect from other hosts (a private test broker); consumer_timeout above training's hard limit
        conf.write_text(
            f"listeners.tcp.default = {host.ip}:{AMQP_PORT}\nloopback_users = none\nconsumer_timeout = 10800000\n"
        )
        (directory / "enabled_plugins").write_text("[].\n")
        self.env = {
            **base_env,
            "HOME": str(directory / "home"),
            "RABBITMQ_NODENAME": self.NODE,
            "RABBITMQ_NODE_PORT": str(AMQP_PORT),
            "RABBITMQ_CONFIG_FILE": str(conf),
            "RABBITMQ_MNESIA_BASE": str(directory / "mnesia"),
            "RABBITMQ_LOG_BASE": str(directory / "log"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(directory / "enabled_plugins"),
            "RABBITMQ_PID_FILE": str(directory / "rabbit.pid"),
        }
        self.process = host.popen([_rabbitmq_binary("rabbitmq-server")], env=self.env, log=directory / "server.log")
        self.url = f"amqp://guest:guest@{host.ip}:{AMQP_PORT}//"
        wait_until(self._listening, seconds=90, interval=0.2, what="RabbitMQ listening")
        # rabbitmqctl reaches the node through the namespace's own epmd: that it answers shows epmd works there
        self.ctl("--timeout", "60", "await_startup")

    def _listening(self) -> bool:
        if self.process.poll() is not None:
            raise RuntimeError(f"rabbitmq-server exited with {self.process.returncode}")
        with contextlib.suppress(OSError), socket.create_connection((self.host.ip, AMQP_PORT), timeout=1):
            return True
        return False

    def ctl(self, *command: str) -> str:
        return self.host.run([_rabbitmq_binary("rabbitmqctl"), "-n", self.NODE, *command], env=self.env, timeout=90)


def _rabbitmq_binary(name: str) -> str:
    """The scripts themselves: Debian's /usr/sbin wrappers switch to the rabbitmq user and its HOME (cookie)."""
    direct = Path("/usr/lib/rabbitmq/bin") / name
    return str(direct) if direct.exists() else name


# --- haproxy ---------------------------------------------------------------------------------------------
HAPROXY_CONFIG = """\
global
    maxconn 2000
    stats socket {socket} mode 600 level admin
    log stdout format raw local0 info
defaults
    mode http
    log global
    option httplog
    option dontlog-normal
    timeout connect 1s
    timeout client 10s
    timeout server 5s
    timeout check 2s
    timeout queue 5s
    # a connection refused, reset or dropped before an answer (a host that died under it) goes to the other host
    # (redispatch on every retry): GETs are idempotent, so retry-on may send again one whose answer never came.
    # No status is retried: the API's own JSON 503 (database unavailable, Retry-After) reaches the client as is.
    retries 3
    option redispatch 1
    retry-on conn-failure empty-response junk-response response-timeout
    option http-server-close
    # No host ready (every /readyz failing, e.g. the database down) or none answering: the API's error contract
    # (JSON code/message/details, Retry-After), never haproxy's own HTML page.
    http-error status 503 content-type application/json hdr Retry-After 2 string "{{\\"code\\": \\"service_unavailable\\", \\"message\\": \\"No web host is ready; retry in a few seconds.\\", \\"details\\": {{}}}}"
    http-error status 502 content-type application/json hdr Retry-After 2 string "{{\\"code\\": \\"bad_gateway\\", \\"message\\": \\"A web host gave no valid answer; retry.\\", \\"details\\": {{}}}}"
    http-error status 504 content-type application/json hdr Retry-After 2 string "{{\\"code\\": \\"gateway_timeout\\", \\"message\\": \\"No web host answered in time; retry.\\", \\"details\\": {{}}}}"
frontend api
    bind {ip}:{port}
    default_backend web
backend web
    balance roundrobin
    option httpchk
    http-check send meth GET uri /readyz ver HTTP/1.1 hdr Host {api_host}
    http-check expect status 200
    # maxconn: no more requests on a host than it has sync workers (haproxy queues the rest), so a health check
    # waits for one request at most, and a loaded host is not taken for a dead one. observe layer7 with
    # error-limit 1: the first refused connection takes the host out at once, so the retries go to the other
    # (with the default 10, three retries of one request went to the dead host and answered 503)
    default-server maxconn {maxconn} inter 500ms fastinter 250ms downinter 500ms fall 3 rise 2 observe layer7 error-limit 1 on-error mark-down
{servers}
"""


class HAProxy:
    """Our own haproxy process (not the system service) with its own config file and admin socket."""

    def __init__(
        self, host: Host, web_hosts: Sequence[Host], directory: Path, env: dict[str, str], *, maxconn: int
    ) -> None:
        directory.mkdir()
        self.socket = directory / "haproxy.sock"
        servers = "\n".join(f"    server {w.name} {w.ip}:{WEB_PORT} check" for w in web_hosts)
        self.config = directory / "haproxy.cfg"
        self.config.write_text(
            HAPROXY_CONFIG.format(
                socket=self.socket, ip=host.ip, port=LB_PORT, api_host=API_HOST, maxconn=maxconn, servers=servers
            )
        )
        self.process = host.popen(["haproxy", "-db", "-f", str(self.config)], env=env, log=directory / "haproxy.log")
        self.url = f"http://{host.ip}:{LB_PORT}" if LB_PORT != 80 else f"http://{host.ip}"

    def admin(self, command: str) -> str:
        """One command on the admin socket (`disable server web/web1`, ...); its answer."""
        data = b""
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(2)
            sock.connect(str(self.socket))
            sock.sendall(command.encode() + b"\n")
            while chunk := sock.recv(65536):
                data += chunk
        return data.decode()

    def server_states(self) -> dict[str, str]:
        """{server: "UP" | "DOWN" | ...} from the admin socket's `show stat`."""
        if self.process.poll() is not None:
            raise RuntimeError(f"haproxy exited with {self.process.returncode}")
        data = b""
        with socket.socket(socket.AF_UNIX) as sock, contextlib.suppress(OSError):
            sock.settimeout(2)
            sock.connect(str(self.socket))  # absent until haproxy has started: no state yet
            sock.sendall(b"show stat\n")
            while chunk := sock.recv(65536):
                data += chunk
        if not data:
            return {}
        rows = csv.DictReader(io.StringIO(data.decode().lstrip("# ")))
        return {row["svname"]: row["status"] for row in rows if row["pxname"] == "web" and row["svname"] != "BACKEND"}


# --- the deployment ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class World:
    """The synthetic world's size and what is trained on it."""

    titles: int = 500
    accounts: int = 400
    events: int = 20_000
    kinds: str = "popularity,mf,content"
    shard_size: int = 50  # profiles per shard of the full refresh (small: the worker fault needs many shards)
    web_workers: int = 2
    # off, as bench/http_load.py measures: every request runs the whole engine and reads its profile's features,
    # so a fault shows in every answer it touches rather than hiding behind answers cached before it
    response_cache: bool = False


def _base_env() -> dict[str, str]:
    """A clean environment for the deployment's processes: nothing of this process's test settings leaks."""
    keep = ("PATH", "LANG", "LC_ALL", "TZ", "TMPDIR")
    return {**{k: os.environ[k] for k in keep if k in os.environ}, "HOME": os.environ.get("HOME", "/root")}


class Deployment:
    """Everything `deployment()` builds; see the module docstring."""

    def __init__(self, world: World, *, progress: Callable[[str], None] = print, keep_logs: Path | None = None) -> None:
        self.world = world
        self.keep_logs = keep_logs
        self.progress = progress
        self.started = time.monotonic()
        self.timings: dict[str, float] = {}
        self.directory = Path(tempfile.mkdtemp(prefix=f"{PREFIX}-deploy-"))
        os.chmod(self.directory, 0o755)
        self.network: Network | None = None
        self.web: dict[str, subprocess.Popen] = {}
        self.workers: dict[str, subprocess.Popen] = {}
        self.api_key = ""
        self.profile_ids: list[int] = []
        _register(self, self.close)
        try:
            self._build()
        except BaseException:
            self.close()
            raise

    # -- building
    def _step(self, name: str, action: Callable[[], object]) -> object:
        self.progress(f"[{time.monotonic() - self.started:6.1f} s] {name} ...")
        began = time.monotonic()
        result = action()
        self.timings[name] = round(time.monotonic() - began, 2)
        return result

    def _build(self) -> None:
        world = self.world
        self.network = self._step("network namespaces", lambda: Network(list(HOSTS)))
        hosts = self.network.hosts
        self.hosts = hosts
        self.primary, self.replica = self._step(
            "PostgreSQL primary + streaming replica",
            lambda: pg_primary_and_replica(hosts["pg1"], hosts["pg2"], self.directory / "pg"),
        )
        self.redis = self._step(
            "Redis Cluster 3 masters + 3 replicas",
            lambda: RedisCluster([hosts[f"redis{i}"] for i in (1, 2, 3)], self.directory / "redis", _base_env()),
        )
        self.rabbitmq = self._step("RabbitMQ", lambda: RabbitMQ(hosts["mq"], self.directory / "rabbitmq", _base_env()))
        self.env = self._env()
        self._step("migrate", lambda: self.manage("migrate", "--verbosity", "0", timeout=600))
        self._step(
            "generate_synthetic",
            lambda: self.manage(
                "generate_synthetic",
                "--titles",
                str(world.titles),
                "--accounts",
                str(world.accounts),
                "--events",
                str(world.events),
                "--seed",
                "42",
                timeout=1800,
            ),
        )
        self.training_output = self._step(
            "train_models", lambda: self.manage("train_models", "--kinds", world.kinds, timeout=3600)
        )  # its lines say which kinds passed their activation gate, and why not
        self.api_key = (
            self._step("API client", lambda: self.manage("create_api_client", "rehearsal", "--rate", "100000000/min"))
            .strip()
            .splitlines()[-1]
        )
        self.profile_ids = self._step("profiles with history", self._watching_profiles)
        active = {row[0] for row in self.sql("SELECT kind FROM recommendations_modelversion WHERE status = 'active'")}
        self.world_flags = frozenset(flag for flag, kinds in MODEL_FLAGS.items() if not kinds & active)
        self.progress(f"  active models: {sorted(active)}; a full answer still says {sorted(self.world_flags)}")
        self._step("workers", lambda: self.start_workers("worker1", "worker2"))
        self.refresh_seconds = self._step("feature refresh (sharded, both workers)", lambda: self.refresh_features())
        self._step("beat", self.start_beat)
        self._step("web hosts", lambda: self.start_web("web1", "web2"))
        self.haproxy = self._step(
            "haproxy",
            lambda: HAProxy(
                hosts["lb"],
                [hosts["web1"], hosts["web2"]],
                self.directory / "haproxy",
                _base_env(),
                maxconn=world.web_workers,
            ),
        )
        self._step("balancer: both web hosts UP", lambda: self.wait_backends({"web1": "UP", "web2": "UP"}, seconds=30))
        self.progress(f"[{time.monotonic() - self.started:6.1f} s] deployment ready: {self.url}")

    def _env(self) -> dict[str, str]:
        addresses = [h.ip for h in self.hosts.values()]
        return {
            **_base_env(),
            "DJANGO_SETTINGS_MODULE": "config.settings.production",
            "SECRET_KEY": secrets.token_urlsafe(48),
            "ALLOWED_HOSTS": ",".join([API_HOST, "localhost", *addresses]),
            "SECURE_SSL_REDIRECT": "0",
            "DATABASE_URL": self.primary.url(DATABASE),
            "DATABASE_REPLICA_URLS": self.replica.url(DATABASE),
            "REDIS_CLUSTER_URLS": ",".join(self.redis.urls),
            "CELERY_BROKER_URL": self.rabbitmq.url,
            "RECO_ARTIFACT_DIR": str(self.directory / "artifacts"),  # the shared artifact store
            "RECO_VAR_DIR": str(self.directory / "var"),
            "RECO_JOB_LOCK_SECONDS": "5",  # a killed worker's shard locks lapse within 5 s (60 in production)
            "OPENBLAS_NUM_THREADS": "1",
            "OMP_NUM_THREADS": "1",
            "LOG_LEVEL": "INFO",
            "PYTHONUNBUFFERED": "1",
            "RECO_RESPONSE_CACHE_SECONDS": "600" if self.world.response_cache else "0",
        }

    def manage(self, *args: str, timeout: float = 300) -> str:
        """manage.py from the operator's box (the root namespace) against the deployment."""
        result = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{(result.stderr or result.stdout)[-4000:]}")
        return result.stdout

    def sql(self, query: str, params: Sequence = ()) -> list[tuple]:
        with self.primary.connect(DATABASE) as connection:
            return connection.execute(query, params).fetchall()

    def _watching_profiles(self) -> list[int]:
        rows = self.sql("SELECT DISTINCT profile_id FROM users_viewingevent ORDER BY profile_id LIMIT 2000")
        return [row[0] for row in rows]

    # -- processes
    def start_workers(self, *names: str) -> None:
        """A Celery worker (prefork, 1 process, every queue) in each host named; all start at once."""
        logs = {}
        for name in names:
            logs[name] = log = self.directory / f"{name}.log"
            self.workers[name] = self.hosts[name].popen(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "config",
                    "worker",
                    "--pool",
                    "prefork",
                    "--concurrency",
                    "1",
                    "--hostname",
                    f"{name}@%h",
                    "--without-gossip",
                    "--without-mingle",
                    "--loglevel",
                    "INFO",
                ],
                env=self.env,
                log=log,
            )
        for name, log in logs.items():
            process = self.workers[name]
            wait_until(
                lambda p=process, g=log: " ready." in g.read_text(errors="replace") or p.poll() is not None,
                seconds=120,
                interval=0.2,
                what=f"{name}'s Celery worker ready",
            )
            if process.poll() is not None:
                raise RuntimeError(f"{name}'s worker exited:\n{log.read_text(errors='replace')[-3000:]}")

    def start_beat(self) -> None:
        host = self.hosts["beat"]
        self.beat = host.popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "beat",
                "--loglevel",
                "INFO",
                "--schedule",
                str(self.directory / "beat-schedule"),
            ],
            env=self.env,
            log=self.directory / "beat.log",
        )

    def start_web(self, *names: str) -> None:
        """gunicorn as the README serves it in each host named; all start at once, ready when /readyz answers."""
        gunicorn = Path(sys.executable).with_name("gunicorn")
        for name in names:
            host = self.hosts[name]
            env = {
                **self.env,
                "GUNICORN_BIND": f"{host.ip}:{WEB_PORT}",
                "WEB_CONCURRENCY": str(self.world.web_workers),
                "GUNICORN_CMD_ARGS": "--no-control-socket",
                "LOG_LEVEL": "WARNING",
                "RECO_SERVING_CACHE_DIR": str(self.directory / f"{name}-cache"),
            }
            self.web[name] = host.popen(
                [str(gunicorn), "-c", "config/gunicorn.py", "config.wsgi"], env=env, log=self.directory / f"{name}.log"
            )
        for name in names:
            host, process, log = self.hosts[name], self.web[name], self.directory / f"{name}.log"

            def ready(
                host: Host = host, process: subprocess.Popen = process, log: Path = log, name: str = name
            ) -> bool:
                if process.poll() is not None:
                    raise RuntimeError(f"{name}'s gunicorn exited:\n{log.read_text(errors='replace')[-3000:]}")
                try:
                    return request(f"http://{host.ip}:{WEB_PORT}/readyz", timeout=2)[0] == 200
                except OSError:
                    return False

            wait_until(ready, seconds=180, interval=0.3, what=f"{name} ready")

    @property
    def url(self) -> str:
        return self.haproxy.url

    def recs_url(self) -> Callable[[int], str]:
        ids = self.profile_ids
        return lambda i: f"{self.url}/api/recs?profile_id={ids[i % len(ids)]}&n=10"

    @property
    def headers(self) -> dict[str, str]:
        return {"X-Api-Key": self.api_key}

    def wait_backends(self, wanted: dict[str, str], *, seconds: float) -> float:
        began = time.monotonic()
        wait_until(
            lambda: all(self.haproxy.server_states().get(k, "").startswith(v) for k, v in wanted.items()),
            seconds=seconds,
            interval=0.1,
            what=f"haproxy backends {wanted}",
        )
        return round(time.monotonic() - began, 2)

    # -- jobs
    def send_task(self, name: str, **kwargs: object) -> None:
        """`celery call` from the operator's box: routed to its queue like any send."""
        result = subprocess.run(
            [sys.executable, "-m", "celery", "-A", "config", "call", name, "--kwargs", json.dumps(kwargs)],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"celery call {name} failed:\n{result.stderr[-3000:]}")

    def latest_fan_out(self) -> tuple | None:
        """(id, status, shards_total, shards_done, shards_failed) of the newest full refresh sent with this world's
        shard size (the beat's hourly one uses the default size and is not ours)."""
        rows = self.sql(
            "SELECT id, status, shards_total, shards_done, shards_failed FROM tasks_jobrun WHERE job = %s "
            "AND params->'kwargs'->>'shard_size' = %s ORDER BY id DESC LIMIT 1",
            [FAN_OUT, str(self.world.shard_size)],
        )
        return rows[0] if rows else None

    def start_refresh(self, *, attempts: int = 3) -> int:
        """Send a full user-feature refresh; returns its parent JobRun's id once the fan-out is recorded. One sent
        while another runs (the beat's hourly refresh) is skipped by design: wait for that one, send again."""
        for _ in range(attempts):
            before = self.latest_fan_out()
            self.send_task(FAN_OUT, shard_size=self.world.shard_size)
            wait_until(
                lambda b=before: (
                    (run := self.latest_fan_out()) is not None
                    and (b is None or run[0] != b[0])
                    and (run[2] > 0 or run[1] != "running")
                ),
                seconds=60,
                interval=0.05,
                what="the refresh's fan-out",
            )
            run = self.latest_fan_out()
            if run[1] != "skipped":
                return run[0]
            wait_until(
                lambda: not self.sql("SELECT 1 FROM tasks_jobrun WHERE job = %s AND status = 'running'", [FAN_OUT]),
                seconds=300,
                interval=0.5,
                what="the running full refresh to finish",
            )
        raise RuntimeError(f"the full refresh was skipped {attempts} times")

    def wait_refresh(self, parent_id: int, *, seconds: float) -> str:
        def finished() -> bool:
            return self.sql("SELECT status FROM tasks_jobrun WHERE id = %s", [parent_id])[0][0] != "running"

        wait_until(finished, seconds=seconds, interval=0.2, what=f"refresh {parent_id} finished")
        return self.sql("SELECT status FROM tasks_jobrun WHERE id = %s", [parent_id])[0][0]

    def refresh_features(self) -> float:
        """The full refresh through the workers, then the content refresh; seconds the user refresh took."""
        began = time.monotonic()
        parent = self.start_refresh()
        status = self.wait_refresh(parent, seconds=600)
        if status != "succeeded":
            raise RuntimeError(f"the feature refresh ended {status}")
        took = round(time.monotonic() - began, 2)
        before = self.sql(
            "SELECT count(*) FROM tasks_jobrun WHERE job = 'tasks.features.refresh_content_features' "
            "AND status = 'succeeded'"
        )[0][0]
        self.send_task("tasks.features.refresh_content_features")
        wait_until(
            lambda: (
                self.sql(
                    "SELECT count(*) FROM tasks_jobrun WHERE job = "
                    "'tasks.features.refresh_content_features' AND status = 'succeeded'"
                )[0][0]
                > before
            ),
            seconds=300,
            interval=0.2,
            what="the content refresh",
        )
        return took

    def shard_runs_on(self, worker: str, *, pids: Sequence[int] | None = None) -> list[int]:
        """Shard attempts running now in `worker`'s processes (JobRun.worker is host:pid; every namespace shares
        the machine's hostname, so the pid tells the host)."""
        pids = set(namespace_pids(self.hosts[worker].netns) if pids is None else pids)
        rows = self.sql("SELECT id, worker FROM tasks_jobrun WHERE job = %s AND status = 'running'", [SHARD])
        return [
            run_id
            for run_id, where in rows
            if where.rpartition(":")[2].isdigit() and int(where.rpartition(":")[2]) in pids
        ]

    # -- faults
    def kill_host(self, name: str) -> int:
        return self.hosts[name].kill_all()

    def close(self) -> None:
        if self.network is not None:
            self.network.close()
        if self.keep_logs is not None:  # every process's log (haproxy's lists only the requests that failed)
            self.keep_logs.mkdir(parents=True, exist_ok=True)
            for log in self.directory.rglob("*.log"):
                with contextlib.suppress(OSError):
                    shutil.copy(log, self.keep_logs / "-".join(log.relative_to(self.directory).parts))
        with contextlib.suppress(Exception):
            for server in (getattr(self, "replica", None), getattr(self, "primary", None)):
                if server is not None and server.running:
                    pgkit._as_postgres(str(pgkit.BIN / "pg_ctl"), "-D", str(server.data_dir), "-m", "immediate", "stop")
        shutil.rmtree(self.directory, ignore_errors=True)
        _unregister(self)


@contextlib.contextmanager
def deployment(
    world: World, *, progress: Callable[[str], None] = print, keep_logs: Path | None = None
) -> Iterator[Deployment]:
    """`with deployment(World()) as d: d.url, d.recs_url(), d.headers, d.kill_host("web1"), d.redis, ...`;
    `keep_logs`: a folder every process's log is copied to at the end."""
    built = Deployment(world, progress=progress, keep_logs=keep_logs)
    try:
        yield built
    finally:
        built.close()


# --- the rehearsal: baseline, ceiling and one fault at a time (bench/rehearsal.py and tests/rehearsal/) ------
P99_MS = 50.0  # through the balancer at BASELINE_RATE
BASELINE_RATE = 100.0
# The CI form's rate (tests/rehearsal, bench/rehearsal.py --quick): its figures are errors and recovery, on a
# machine other jobs share; 100/s with every request through the engine saturates 2 busy cores.
CI_RATE = 30.0
REDIS_RECOVER_S = 15.0  # a killed master: full answers again within this


@dataclass(frozen=True)
class Timing:
    """Seconds of load before a fault, of the fault, and after it."""

    before: float = 3.0
    during: float = 8.0
    after: float = 6.0

    @property
    def total(self) -> float:
        return self.before + self.during + self.after


def full_answer(d: Deployment) -> Callable[[RequestRecord], bool]:
    """A 200 that took no simpler path than the world's active models allow."""
    return lambda record: record.status == 200 and set(record.flags) <= d.world_flags


def errors(records: Sequence[RequestRecord]) -> dict[str, int]:
    """What the issue counts as errors: responses >= 500 and requests with no response at all."""
    return {"server_errors": sum(r.status >= 500 for r in records), "no_response": sum(r.status == 0 for r in records)}


def _figures(d: Deployment, records: Sequence[RequestRecord], seconds: float) -> dict:
    summary = summarize(records, seconds)
    full = full_answer(d)
    degraded = sum(r.status == 200 and not full(r) for r in records)
    statuses = {str(status): count for status, count in sorted(Counter(r.status for r in records).items())}
    return {
        **summary,
        **errors(records),
        "statuses": statuses,
        "degraded_share": round(degraded / len(records), 4) if records else None,
        "flags": dict(Counter(f for r in records for f in r.flags)),
    }


def replica_reads(d: Deployment) -> int:
    """Rows the replica has returned to clients of the world's database so far (pg_stat_database)."""
    with d.replica.connect(DATABASE) as connection:
        return int(
            connection.execute(
                "SELECT tup_returned + tup_fetched FROM pg_stat_database WHERE datname = %s", [DATABASE]
            ).fetchone()[0]
        )


def keys_per_master(d: Deployment) -> dict[str, int]:
    return {node.address: int(node.cli("DBSIZE").strip() or 0) for node in d.redis.masters()}


def baseline(d: Deployment, *, rate: float = BASELINE_RATE, seconds: float = 10.0) -> dict:
    """Open-loop load through the balancer with every part up: latency, and proof that the replica and every
    master served (rows the replica returned meanwhile, keys on each master)."""
    time.sleep(3.0)  # the processes just started settle (imports, first beat sends, title features loads)
    load(d.recs_url(), rate / 2, 5.0, d.headers)  # every web worker's first requests (lazy loads, connections)
    rows_before = replica_reads(d)
    run = load(d.recs_url(), rate, seconds, d.headers)
    figures = _figures(d, run.records, seconds)
    figures.update(
        rate=rate,
        seconds=seconds,
        replica_rows_returned=replica_reads(d) - rows_before,
        keys_per_master=keys_per_master(d),
    )
    return figures


def ceiling(d: Deployment, *, rates: Sequence[float], seconds: float, progress: Callable[[str], None] = print) -> dict:
    """The highest of `rates` (tried in order, stopping at the first miss) with p99 < P99_MS and no errors."""
    best, steps = None, []
    for rate in rates:
        run = load(d.recs_url(), rate, seconds, d.headers)
        figures = _figures(d, run.records, seconds)
        ok = figures["p99_ms"] is not None and figures["p99_ms"] < P99_MS and not figures["non_200"]
        steps.append(
            {"rate": rate, "ok": ok, **{k: figures[k] for k in ("p50_ms", "p99_ms", "non_200", "throughput_rps")}}
        )
        progress(
            f"  {rate:6.0f}/s: p50 {figures['p50_ms']} p99 {figures['p99_ms']} ms, non-200 {figures['non_200']}"
            f" -> {'ok' if ok else 'over'}"
        )
        if not ok:
            break
        best = rate
    return {"ceiling_rps": best, "steps": steps}


def _fault_run(
    d: Deployment, timing: Timing, rate: float, inject: Callable[[], object], lift: Callable[[], object] | None = None
) -> tuple[LoadResult, dict]:
    actions = [(timing.before, "inject", inject)]
    if lift is not None:
        actions.append((timing.before + timing.during, "lift", lift))
    run = load(d.recs_url(), rate, timing.total, d.headers, actions=actions)
    injected = run.actions["inject"]
    during = run.between(timing.before, timing.before + timing.during)
    figures = _figures(d, during, timing.during)
    whole = errors(run.records)
    figures.update(
        rate=rate,
        run_server_errors=whole["server_errors"],
        run_no_response=whole["no_response"],
        run_requests=len(run.records),
        injected_at_s=injected,
    )
    back = recovered_at(run.records, after=injected, good=full_answer(d))
    figures["seconds_to_full"] = None if back is None else round(max(0.0, back - injected), 2)
    return run, figures


def fault_web_host_down(d: Deployment, timing: Timing, rate: float) -> dict:
    """Every process of web1 SIGKILLed under load; haproxy takes it out; started again after the fault."""
    marked: dict[str, float] = {}
    stop = threading.Event()

    def watch() -> None:  # when haproxy marks web1 down (its checks: 2 failures 250 ms apart)
        began = time.monotonic()
        while not stop.is_set() and time.monotonic() - began < timing.total + 30:
            if "killed" in marked and d.haproxy.server_states().get("web1", "").startswith("DOWN"):
                marked["down"] = time.monotonic()
                return
            time.sleep(0.05)

    def inject() -> None:
        d.kill_host("web1")
        marked["killed"] = time.monotonic()

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        run, figures = _fault_run(d, timing, rate, inject)
    finally:
        stop.set()
        watcher.join(timeout=5)
    latencies = [r.latency_ms for r in run.between(0, timing.before) if r.status == 200]
    slowest = max(latencies, default=1000.0) / 1000
    injected = run.actions_started["inject"]
    # requests that can have been in flight on any host at the kill: sent within the slowest answer before it
    figures["in_flight_bound"] = len(run.between(injected - slowest, injected + 0.001))
    figures["run_errors"] = figures["run_server_errors"] + figures["run_no_response"]
    figures["marked_down_after_s"] = round(marked["down"] - marked["killed"], 2) if "down" in marked else None
    began = time.monotonic()
    d.start_web("web1")
    d.wait_backends({"web1": "UP", "web2": "UP"}, seconds=60)
    figures["back_up_after_restart_s"] = round(time.monotonic() - began, 2)
    return figures


def fault_redis_master(d: Deployment, timing: Timing, rate: float) -> dict:
    """One Redis master SIGKILLed under load: its replica is promoted; the node restarted afterwards."""
    victim = d.redis.masters()[0]
    _run, figures = _fault_run(d, timing, rate, lambda: d.redis.kill(victim))
    figures["killed"] = victim.address
    d.redis.restart(victim)
    d.redis.wait_ok(seconds=60)
    figures["masters_after"] = [n.address for n in d.redis.masters()]
    return figures


def fault_pg_replica(d: Deployment, timing: Timing, rate: float) -> dict:
    """The PostgreSQL replica stopped (immediate) under load, started again after the fault."""
    replica = d.replica
    run, figures = _fault_run(
        d,
        timing,
        rate,
        lambda: replica.stop(mode="immediate"),
        lift=lambda: (replica.start(), wait_until(lambda: _streaming(d.primary), seconds=30)),
    )
    figures["streaming_again_at_s"] = run.actions.get("lift")
    rows_before = replica_reads(d)
    load(d.recs_url(), min(rate, 20.0), 3.0, d.headers)
    figures["replica_rows_returned_after"] = replica_reads(d) - rows_before
    return figures


def fault_worker_mid_refresh(d: Deployment, timing: Timing, rate: float) -> dict:
    """A full refresh sent; once worker1 runs one of its shards and some are done, every process of worker1 is
    SIGKILLed; the refresh must still finish (RabbitMQ redelivers the unacked shard to worker2), each shard
    counted once. Load through the balancer meanwhile; worker1 started again afterwards."""
    stop = threading.Event()
    outcome: dict[str, LoadResult] = {}
    loader = threading.Thread(
        target=lambda: outcome.update(run=load(d.recs_url(), rate, timing.total + 120, d.headers, stop=stop)),
        daemon=True,
    )
    began = time.monotonic()
    loader.start()
    try:
        pids = namespace_pids(d.hosts["worker1"].netns)  # read before: the kill follows the check at once
        parent = d.start_refresh()
        seen: dict[str, object] = {}

        def mid_shard() -> bool:
            seen["done"] = d.latest_fan_out()[3]
            seen["runs"] = d.shard_runs_on("worker1", pids=pids)
            return bool(seen["runs"]) and seen["done"] >= 1

        wait_until(mid_shard, seconds=60, interval=0.01, what="worker1 mid-shard with some shards done")
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        killed_at = time.monotonic()
        killed_runs, done_at_kill = seen["runs"], seen["done"]
        d.kill_host("worker1")  # and reap
        status = d.wait_refresh(parent, seconds=120)
        finished_at = time.monotonic()
    finally:
        stop.set()
        loader.join(timeout=timing.total + 30)
    run = outcome["run"]
    records = run.records
    parent_row = d.sql(
        "SELECT status, shards_total, shards_done, shards_failed, rows_written FROM tasks_jobrun WHERE id = %s",
        [parent],
    )[0]
    shard_rows = d.sql(
        "SELECT sum(rows_written), count(*) FILTER (WHERE status = 'done') FROM tasks_jobshard WHERE parent_id = %s",
        [parent],
    )[0]
    succeeded = d.sql(
        "SELECT count(*), count(DISTINCT params::text) FROM tasks_jobrun WHERE parent_id = %s AND status = 'succeeded'",
        [parent],
    )[0]
    lost = d.sql("SELECT id FROM tasks_jobrun WHERE parent_id = %s AND status = 'lost'", [parent])
    profiles = d.sql("SELECT count(*) FROM users_profile")[0][0]
    figures = _figures(d, records, run.seconds)
    figures.update(
        rate=rate,
        status=status,
        shards_total=parent_row[1],
        shards_done=parent_row[2],
        shards_failed=parent_row[3],
        shards_done_at_kill=done_at_kill,
        rows_written=parent_row[4],
        shard_rows=shard_rows[0],
        profiles=profiles,
        successful_attempts=succeeded[0],
        distinct_successful_shards=succeeded[1],
        killed_shard_attempts=killed_runs,
        lost_attempts=[row[0] for row in lost],
        killed_after_s=round(killed_at - began, 2),
        seconds_to_finish_after_kill=round(finished_at - killed_at, 2),
    )
    d.start_workers("worker1")
    return figures


FAULTS: dict[str, Callable[[Deployment, Timing, float], dict]] = {
    "web-host-down": fault_web_host_down,
    "redis-master-killed": fault_redis_master,
    "pg-replica-stopped": fault_pg_replica,
    "worker-killed-mid-refresh": fault_worker_mid_refresh,
}


def checks(results: dict) -> list[tuple[str, bool]]:
    """The issue's figures against what a rehearsal measured: [(figure, met)]."""
    out: list[tuple[str, bool]] = []
    if (base := results.get("baseline")) is not None:
        out.append(
            (
                f"baseline: p99 {base['p99_ms']} ms < {P99_MS:g} ms at {base['rate']:g}/s",
                base["p99_ms"] is not None and base["p99_ms"] < P99_MS,
            )
        )
        out.append(
            (
                f"baseline: 0 errors (>= 500: {base['server_errors']}, no response: {base['no_response']})",
                base["server_errors"] == 0 and base["no_response"] == 0,
            )
        )
        out.append(
            (
                f"baseline: the replica served reads ({base['replica_rows_returned']} rows)",
                base["replica_rows_returned"] > 0,
            )
        )
        out.append(
            (
                f"baseline: every master holds keys {base['keys_per_master']}",
                len(base["keys_per_master"]) == 3 and all(base["keys_per_master"].values()),
            )
        )
    faults = results.get("faults", {})
    for name, f in faults.items():
        if name == "worker-killed-mid-refresh":
            out.append((f"{name}: 0 responses >= 500 ({f['server_errors']})", f["server_errors"] == 0))
            out.append(
                (
                    f"{name}: the refresh finished ({f['status']}, {f['shards_done']}/{f['shards_total']} shards, "
                    f"{f['seconds_to_finish_after_kill']} s after the kill)",
                    f["status"] == "succeeded" and f["shards_done"] == f["shards_total"] and not f["shards_failed"],
                )
            )
            out.append(
                (
                    f"{name}: each shard counted once ({f['rows_written']} rows = {f['profiles']} profiles, "
                    f"{f['successful_attempts']} successful attempts for {f['shards_total']} shards)",
                    f["rows_written"] == f["profiles"] == f["shard_rows"]
                    and f["successful_attempts"] == f["distinct_successful_shards"] == f["shards_total"],
                )
            )
            out.append(
                (
                    f"{name}: the killed attempts marked lost (running at the kill {f['killed_shard_attempts']}, "
                    f"lost {f['lost_attempts']})",
                    bool(f["killed_shard_attempts"]) and set(f["killed_shard_attempts"]) <= set(f["lost_attempts"]),
                )
            )
            continue
        out.append((f"{name}: 0 responses >= 500 over the run ({f['run_server_errors']})", f["run_server_errors"] == 0))
        if name == "web-host-down":
            out.append(
                (
                    f"{name}: errors {f['run_errors']} <= requests in flight at the kill ({f['in_flight_bound']})",
                    f["run_errors"] <= f["in_flight_bound"],
                )
            )
            out.append(
                (
                    f"{name}: the balancer took it out ({f['marked_down_after_s']} s)",
                    f["marked_down_after_s"] is not None,
                )
            )
        else:
            out.append((f"{name}: no request without a response ({f['run_no_response']})", f["run_no_response"] == 0))
        if name == "redis-master-killed":
            out.append(
                (
                    f"{name}: full answers again within {REDIS_RECOVER_S:g} s ({f['seconds_to_full']} s)",
                    f["seconds_to_full"] is not None and f["seconds_to_full"] <= REDIS_RECOVER_S,
                )
            )
        if name == "pg-replica-stopped":
            out.append(
                (
                    f"{name}: the replica serves again after its restart ({f['replica_rows_returned_after']} rows)",
                    f["replica_rows_returned_after"] > 0,
                )
            )
    return out


def rehearse(
    d: Deployment,
    *,
    faults: Sequence[str],
    timing: Timing,
    rate: float | None,
    baseline_seconds: float,
    baseline_rate: float = BASELINE_RATE,
    ceiling_rates: Sequence[float] = (),
    ceiling_seconds: float = 8.0,
    progress: Callable[[str], None] = print,
) -> dict:
    """Baseline, ceiling (if rates are given) and each fault in turn at `rate` (None: 80 % of the ceiling, so
    that a fault is measured rather than an overload); the results (and `checks`)."""
    results: dict = {
        "world_flags": sorted(d.world_flags),
        "training": d.training_output.strip().splitlines()[-20:],
        "build_seconds": d.timings,
        "profiles_served": len(d.profile_ids),
        "initial_refresh_seconds": d.refresh_seconds,
    }
    progress(f"baseline: {baseline_seconds:g} s at {baseline_rate:g}/s through the balancer ...")
    results["baseline"] = baseline(d, rate=baseline_rate, seconds=baseline_seconds)
    _print_figures(results["baseline"], progress, d.world_flags)
    if ceiling_rates:
        progress(f"ceiling: {ceiling_seconds:g} s at each of {', '.join(f'{r:g}' for r in ceiling_rates)}/s ...")
        results["ceiling"] = ceiling(d, rates=ceiling_rates, seconds=ceiling_seconds, progress=progress)
    if rate is None:
        top = results.get("ceiling", {}).get("ceiling_rps")
        rate = round(0.8 * top, 1) if top else (min(ceiling_rates) / 2 if ceiling_rates else baseline_rate)
    results["fault_rate"] = rate
    results["faults"] = {}
    for name in faults:
        progress(
            f"fault {name} at {rate:g}/s ({timing.before:g} s before, {timing.during:g} s, {timing.after:g} s after) ..."
        )
        results["faults"][name] = FAULTS[name](d, timing, rate)
        _print_figures(results["faults"][name], progress, d.world_flags)
    results["checks"] = [{"figure": figure, "met": met} for figure, met in checks(results)]
    return results


def _print_figures(figures: dict, progress: Callable[[str], None], world_flags: frozenset[str]) -> None:
    keys = (
        "p50_ms",
        "p99_ms",
        "requests",
        "non_200",
        "server_errors",
        "no_response",
        "degraded_share",
        "seconds_to_full",
        "marked_down_after_s",
        "seconds_to_finish_after_kill",
        "status",
    )
    progress("  " + ", ".join(f"{k} {figures[k]}" for k in keys if k in figures))
    unusual = {flag: count for flag, count in figures.get("flags", {}).items() if flag not in world_flags}
    if unusual:
        progress(f"  flags: {unusual}")
