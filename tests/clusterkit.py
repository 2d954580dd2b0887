"""A private Redis Cluster for the cluster tests and bench/ scripts: 3 masters + 3 replicas on free ports.

`redis_cluster()` starts six `redis-server --cluster-enabled yes` processes (no persistence, node timeout
1 s, `cluster-require-full-coverage no` as production runs them: a failed master then refuses only its own
slots), joins them with `redis-cli --cluster create --cluster-replicas 1` and waits for `cluster_state:ok`
on every node. A master can be killed (SIGKILL: its replica is promoted within a few seconds), frozen and
thawed (SIGSTOP/SIGCONT: a hung node), and counted (`commandstats()`, after `reset_stats()`).

Everything runs on 127.0.0.1 and touches only what it started; every wait has a deadline; the processes are
stopped when the context exits and, as a last resort, at interpreter exit (tests.faultkit's bookkeeping).
"""

from __future__ import annotations

import contextlib
import random
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from redis.crc import key_slot

from tests.faultkit import LOOPBACK, _register, _unregister, wait_until

NODE_TIMEOUT_MS = 1000
BUS_PORT_OFFSET = 10_000  # a node's cluster bus listens on its port + 10000, so ports stay <= 55535


def cluster_port() -> int:
    """A port <= 55535 that is free on 127.0.0.1, with its bus port (+10000) free too."""
    for _ in range(200):
        port = random.randint(20_000, 55_535)
        try:
            with socket.socket() as first, socket.socket() as second:
                first.bind((LOOPBACK, port))
                second.bind((LOOPBACK, port + BUS_PORT_OFFSET))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port pair for a cluster node")


@dataclass
class ClusterNodeProcess:
    port: int
    process: subprocess.Popen
    frozen: bool = False

    @property
    def name(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    @property
    def alive(self) -> bool:
        return self.process.poll() is None


class RedisClusterProcesses:
    """Six private cluster nodes; see `redis_cluster()`."""

    def __init__(self, *, masters: int = 3, startup_seconds: float = 20.0) -> None:
        self._directory = tempfile.TemporaryDirectory(prefix="reco-redis-cluster-")
        self.nodes: list[ClusterNodeProcess] = []
        _register(self, self.close)
        for _ in range(masters * 2):
            self.nodes.append(self._start_node(cluster_port()))
        deadline = time.monotonic() + startup_seconds
        for node in self.nodes:
            wait_until(
                lambda n=node: self._cli(n.port, "PING", check=False).strip() == "PONG",
                seconds=max(0.1, deadline - time.monotonic()),
                interval=0.02,
                what=f"node {node.port} up",
            )
        subprocess.run(
            [
                "redis-cli",
                "--cluster",
                "create",
                *[n.name for n in self.nodes],
                "--cluster-replicas",
                "1",
                "--cluster-yes",
            ],
            check=True,
            capture_output=True,
            timeout=max(1.0, deadline - time.monotonic()),
        )
        self.wait_ok(seconds=max(0.1, deadline - time.monotonic()))

    @property
    def urls(self) -> list[str]:
        return [f"redis://{node.name}" for node in self.nodes]

    def _start_node(self, port: int) -> ClusterNodeProcess:
        directory = Path(self._directory.name) / str(port)
        directory.mkdir(exist_ok=True)
        process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(port),
                "--bind",
                LOOPBACK,
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                str(directory / "nodes.conf"),
                "--cluster-node-timeout",
                str(NODE_TIMEOUT_MS),
                "--cluster-require-full-coverage",
                "no",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(directory),
                "--logfile",
                "",
                "--loglevel",
                "warning",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        return ClusterNodeProcess(port, process)

    def _cli(self, port: int, *command: str, check: bool = True) -> str:
        result = subprocess.run(
            ["redis-cli", "-h", LOOPBACK, "-p", str(port), *command],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
        if check and result.returncode != 0:
            raise RuntimeError(f"redis-cli -p {port} {' '.join(command)}: {result.stderr.strip()}")
        return result.stdout

    def info(self, node: ClusterNodeProcess, section: str) -> dict[str, str]:
        lines = self._cli(node.port, "INFO", section).splitlines()
        return dict(line.split(":", 1) for line in lines if ":" in line and not line.startswith("#"))

    def cluster_info(self, node: ClusterNodeProcess) -> dict[str, str]:
        lines = self._cli(node.port, "CLUSTER", "INFO", check=False).splitlines()
        return dict(line.strip().split(":", 1) for line in lines if ":" in line)

    def wait_ok(self, *, seconds: float) -> None:
        """Until every live, unfrozen node says cluster_state:ok and the masters own all 16384 slots."""

        def ok() -> bool:
            live = [n for n in self.nodes if n.alive and not n.frozen]
            infos = [self.cluster_info(n) for n in live]
            return all(i.get("cluster_state") == "ok" and i.get("cluster_slots_ok") == "16384" for i in infos)

        wait_until(ok, seconds=seconds, interval=0.05, what="cluster_state:ok")

    def masters(self) -> list[ClusterNodeProcess]:
        """The live nodes that are masters now (by their own INFO replication)."""
        return [
            n for n in self.nodes if n.alive and not n.frozen and self.info(n, "replication").get("role") == "master"
        ]

    def slot_map(self) -> list[tuple[int, int, ClusterNodeProcess]]:
        """[(first slot, last slot, master)] as a live master's CLUSTER SLOTS says now."""
        words = self._cli(self.masters()[0].port, "CLUSTER", "SLOTS").split()
        # redis-cli prints CLUSTER SLOTS flattened: start, end, master ip, master port, master id, replicas...
        ranges, index = [], 0
        while index + 3 < len(words):
            if words[index].isdigit() and words[index + 1].isdigit() and words[index + 2] == LOOPBACK:
                start, end, port = int(words[index]), int(words[index + 1]), int(words[index + 3])
                ranges.append((start, end, next(n for n in self.nodes if n.port == port)))
                index += 4
            else:
                index += 1
        return ranges

    def node_for_key(
        self, key: str, slot_map: list[tuple[int, int, ClusterNodeProcess]] | None = None
    ) -> ClusterNodeProcess:
        """The master serving `key`'s slot (in `slot_map`, else in the cluster's map now)."""
        slot = key_slot(key.encode())
        for start, end, node in slot_map if slot_map is not None else self.slot_map():
            if start <= slot <= end:
                return node
        raise LookupError(f"no master serves slot {slot}")

    def kill(self, node: ClusterNodeProcess) -> None:
        """SIGKILL: its connections reset and its port refuses; a replica takes over its slots."""
        if node.alive:
            node.process.kill()
            node.process.wait(timeout=10)
        node.frozen = False

    def freeze(self, node: ClusterNodeProcess) -> None:
        node.process.send_signal(signal.SIGSTOP)
        node.frozen = True

    def thaw(self, node: ClusterNodeProcess) -> None:
        node.process.send_signal(signal.SIGCONT)
        node.frozen = False

    def restart(self, node: ClusterNodeProcess) -> None:
        """Start a killed node again on its port with its nodes.conf: it rejoins (as a replica after a failover)."""
        self.kill(node)
        started = self._start_node(node.port)
        node.process, node.frozen = started.process, False
        wait_until(
            lambda: self._cli(node.port, "PING", check=False).strip() == "PONG",
            seconds=10,
            interval=0.02,
            what=f"node {node.port} restarted",
        )

    def reset_stats(self) -> None:
        """CONFIG RESETSTAT on every live node (our private nodes only)."""
        for node in self.nodes:
            if node.alive and not node.frozen:
                self._cli(node.port, "CONFIG", "RESETSTAT")

    def commandstats(self) -> dict[str, dict[str, int]]:
        """{node name: {command: calls}} since the last reset, for every live node (our own INFO/CLUSTER/CONFIG calls
        and replication traffic omitted)."""
        counts: dict[str, dict[str, int]] = {}
        for node in self.nodes:
            if not node.alive or node.frozen:
                continue
            calls = {}
            for key, value in self.info(node, "commandstats").items():
                command = key.removeprefix("cmdstat_")
                if command.split("|")[0] in {"info", "cluster", "config", "ping", "replconf", "psync", "command"}:
                    continue
                calls[command] = int(value.split("calls=")[1].split(",")[0])
            counts[node.name] = calls
        return counts

    def close(self) -> None:
        for node in self.nodes:  # SIGKILL: nothing to persist, and a master's SIGTERM waits for its replicas
            self.kill(node)
        self._directory.cleanup()
        _unregister(self)


@contextlib.contextmanager
def redis_cluster() -> Iterator[RedisClusterProcesses]:
    """`with redis_cluster() as cluster: cluster.urls, .masters(), .kill(node), .commandstats()`."""
    cluster = RedisClusterProcesses()
    try:
        yield cluster
    finally:
        cluster.close()
