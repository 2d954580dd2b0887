"""Under gunicorn every worker's counts reach /metrics, whichever worker answers the scrape, and a killed
worker's counts stay (PROMETHEUS_MULTIPROC_DIR, config/gunicorn.py)."""

from __future__ import annotations

import os
import signal
import time

from django.db import connection

from tests.faultkit import gunicorn_server, request
from tests.observability.helpers import samples, value

REQUESTS = 40


def _count(server) -> float:
    status, _, body = request(server.url + "/metrics")
    assert status == 200, body[:500]
    return value(samples(body.decode()), "reco_http_request_duration_seconds_count", endpoint="/healthz")


def test_every_worker_counts_and_a_killed_one_still_does(transactional_db, tmp_path):
    db = connection.settings_dict
    env = {
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path),
        "DATABASE_URL": f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}",
    }
    (tmp_path / "counter_999999.db").write_bytes(b"stale")  # an earlier run's: removed at start
    with gunicorn_server(env, workers=2) as server:
        assert not (tmp_path / "counter_999999.db").exists()
        before = _count(server)
        for _ in range(REQUESTS):
            assert request(server.url + "/healthz")[0] == 200
        assert {_count(server) - before for _ in range(6)} == {REQUESTS}

        counted = {int(name.rsplit("_", 1)[1][:-3]) for name in os.listdir(tmp_path) if name.startswith("histogram_")}
        victim = next(pid for pid in server.worker_pids() if pid in counted)
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while (victim in server.worker_pids() or len(server.worker_pids()) < 2) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert victim not in server.worker_pids()
        assert {_count(server) - before for _ in range(4)} == {REQUESTS}
