"""gunicorn with config/gunicorn.py on a committed serving world, faults injected into the artifact store (#14):
a truncated active artifact fails no request, shows in every process's published status within a minute and
heals when restored; an activation reaches every process and the master re-forks its workers by itself."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from django.db import connection

from recommendations.ml.matrix_factorization import ITEM_FACTORS_FILE
from recommendations.models import ApiClient, ModelKind, ModelVersion
from recommendations.serving.process_status import serving_processes
from users.models import ViewingEvent

ROOT = Path(__file__).resolve().parent.parent.parent
KEY = "fault-test-key-0123456789abcdef"
WORKERS = 2


@dataclass
class Server:
    port: int
    process: subprocess.Popen
    log: Path

    def statuses(self) -> list[dict]:
        """The published statuses of this gunicorn's master and workers."""
        return [s for s in serving_processes() if self.process.pid in (s.get("pid"), s.get("ppid"))]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_for(condition: Callable[[], bool], *, seconds: float, what: str) -> float:
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < seconds, f"gave up after {seconds:.0f} s waiting for {what}"
        time.sleep(0.2)
    return time.monotonic() - started


def _all_up(server: Server) -> bool:
    statuses = server.statuses()
    roles = sorted(s["role"] for s in statuses)
    return roles == ["master"] + ["worker"] * WORKERS and all(s["models"] for s in statuses)


@pytest.fixture
def gunicorn_server(committed_serving_world, settings, tmp_path):
    ApiClient.issue("fault-test", key=KEY, rate="100000/min")
    db = connection.settings_dict
    port = _free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}",
        "RECO_ARTIFACT_DIR": str(settings.RECO_ARTIFACT_DIR),
        "RECO_SERVING_CACHE_DIR": str(tmp_path / "serving-cache"),
        "RECO_ARTIFACT_VERIFY_SECONDS": "1",
        "RECO_PROCESS_STATUS_SECONDS": "1",
        "RECO_REGISTRY_CHECK_SECONDS": "1",
        "RECO_RESPONSE_CACHE_SECONDS": "0",
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "WEB_CONCURRENCY": str(WORKERS),
        "GUNICORN_PRELOAD": "true",
        "LOG_LEVEL": "INFO",
        "OPENBLAS_NUM_THREADS": "1",
    }
    log = tmp_path / "gunicorn.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "config/gunicorn.py", "config.wsgi"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = Server(port, process, log)
    try:
        _wait_for(lambda: process.poll() is not None or _all_up(server), seconds=60, what="gunicorn's processes")
        assert process.poll() is None, log.read_text()[-3000:]
        yield server
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass
class Load:
    """`count` requests for /api/recs, one every `interval` seconds, each on a new connection (so that every
    worker gets some), in a thread."""

    port: int
    profiles: list[int]
    count: int = 200
    interval: float = 0.05
    statuses: list[int] = field(default_factory=list)
    versions: list[dict] = field(default_factory=list)

    def run(self) -> None:
        import json

        rng = np.random.default_rng(7)
        for profile_id in rng.choice(self.profiles, size=self.count):
            started = time.monotonic()
            try:
                client = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
                client.request("GET", f"/api/recs?profile_id={profile_id}&n=10", headers={"X-Api-Key": KEY})
                response = client.getresponse()
                body = response.read()
                self.statuses.append(response.status)
                if response.status == 200:
                    self.versions.append(json.loads(body)["model_versions"])
                client.close()
            except OSError as error:  # a worker that died mid-request
                self.statuses.append(-1)
                self.versions.append({"error": str(error)})
            time.sleep(max(0.0, self.interval - (time.monotonic() - started)))

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.run, daemon=True)
        thread.start()
        return thread


def _profiles() -> list[int]:
    return list(ViewingEvent.objects.values_list("profile_id", flat=True).distinct()[:300])


def test_a_truncated_active_artifact_fails_no_request_shows_within_a_minute_and_heals(gunicorn_server, settings):
    mf = ModelVersion.objects.get(kind=ModelKind.MATRIX_FACTORIZATION, status=ModelVersion.Status.ACTIVE)
    source = Path(settings.RECO_ARTIFACT_DIR) / mf.artifact_path / ITEM_FACTORS_FILE
    load = Load(gunicorn_server.port, _profiles())
    thread = load.start()
    time.sleep(1.5)
    original = source.read_bytes()
    os.truncate(source, 1024)

    def everyone_shows_it() -> bool:
        statuses = gunicorn_server.statuses()
        return len(statuses) == WORKERS + 1 and all(
            any(p["file"] == str(source) and p["where"] == "source" for p in s["problems"]) for s in statuses
        )

    noticed = _wait_for(everyone_shows_it, seconds=60, what="every process to show the truncated file")
    for status in gunicorn_server.statuses():  # shown beside the checksum each process still serves
        assert {m["kind"]: m["checksum"] for m in status["models"]}["mf"] == mf.checksum
    source.write_bytes(original)
    healed = _wait_for(
        lambda: all(not s["problems"] for s in gunicorn_server.statuses()),
        seconds=60,
        what="every process to find the file intact again",
    )
    thread.join(timeout=60)

    assert len(load.statuses) == load.count
    assert [code for code in load.statuses if code != 200] == [], load.versions[-5:]
    assert all(v.get("mf") == mf.version for v in load.versions)  # MF served throughout, from the private copy
    log = gunicorn_server.log.read_text()
    assert "artifact store file of mf" in log and "intact again" in log
    assert noticed < 60 and healed < 60
    print(f"noticed by every process in {noticed:.1f} s, healed in {healed:.1f} s")


def test_an_activation_reaches_every_process_and_the_master_reforks_its_workers(gunicorn_server):
    from recommendations.training.jobs import model_train

    before = {s["pid"] for s in gunicorn_server.statuses() if s["role"] == "worker"}
    result = model_train(kind=ModelKind.POPULARITY, activation="always")
    assert result.activated
    new = result.version.version

    def everyone_serves_it() -> bool:
        statuses = gunicorn_server.statuses()
        workers = {s["pid"] for s in statuses if s["role"] == "worker"}
        return (
            _all_up(gunicorn_server)
            and not workers & before
            and all({m["kind"]: m["version"] for m in s["models"]}.get("popularity") == new for s in statuses)
        )

    took = _wait_for(everyone_serves_it, seconds=45, what="fresh workers serving the new version")
    load = Load(gunicorn_server.port, _profiles(), count=20)
    load.run()
    assert load.statuses == [200] * 20 and all(v["popularity"] == new for v in load.versions)
    assert "reloading the workers" in gunicorn_server.log.read_text()
    print(f"fresh workers served the new version {took:.1f} s after the activation")
