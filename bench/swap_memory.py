#!/usr/bin/env python
"""Web tier memory across a model swap: gunicorn with config/gunicorn.py on reco_bench.

    .venv/bin/python bench/swap_memory.py --workers 4       # about 3 minutes (one popularity retrain)

Measures the proportional set size of the master and its workers together (shared pages counted once):
1. after start-up: the master loaded the models before forking, the workers share them;
2. after a new popularity version is activated and every worker has picked it up (each builds its own
   serving state around it);
3. after SIGHUP: the master loads the new state once and forks fresh workers, which share it again.
Each step first sends --requests requests over random profiles, so the workers have touched what they use.
"""
from __future__ import annotations

import argparse
import http.client
import json
import re
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
from _server import add_service_arguments, service_env, start_gunicorn, wait_ready
from http_load import PORT, _get, _issue_key, _memory, _profiles

WARM_UP = re.compile(r"warm-up: .* titles and models")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_service_arguments(parser)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--requests", type=int, default=400, help="requests before each measurement")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    env = service_env(args, LOG_LEVEL="INFO", RECO_RESPONSE_CACHE_SECONDS="0")
    profiles = _profiles(env)
    _issue_key(env)
    rng = np.random.default_rng(3)
    steps: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as scratch, (Path(scratch) / "gunicorn.log").open("w") as log:
        log_file = Path(log.name)
        server = start_gunicorn(PORT, args.workers, env, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_ready(PORT, seconds=120)
            steps["started"] = _measure(server.pid, profiles, rng, args.requests)
            version = _activate_new_popularity()
            time.sleep(6)  # RECO_REGISTRY_CHECK_SECONDS (5) for every worker to notice
            steps["after_swap"] = _measure(server.pid, profiles, rng, args.requests)
            server.send_signal(signal.SIGHUP)
            _wait_for(lambda: len(WARM_UP.findall(log_file.read_text())) >= 2, "the master's second warm-up")
            time.sleep(5)  # the old workers finish and exit; the new ones answer
            steps["after_sighup"] = _measure(server.pid, profiles, rng, args.requests)
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)
    result = {"workers": args.workers, "activated_popularity": version,
              "total_pss_mib": {step: figures["total_pss_mib"] for step, figures in steps.items()}, "steps": steps}  # fmt: skip
    print(json.dumps(result["total_pss_mib"]))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


def _measure(master_pid: int, profiles: np.ndarray, rng: np.random.Generator, requests: int) -> dict:
    for profile_id in rng.choice(profiles, size=requests):
        connection = http.client.HTTPConnection("127.0.0.1", PORT, timeout=60)  # new connections spread the load
        status, _ = _get(connection, int(profile_id))
        connection.close()
        if status != 200:
            raise SystemExit(f"/api/recs answered {status}")
    return _memory(master_pid)


def _activate_new_popularity() -> str:
    """Train a popularity version on the same data and activate it (about a minute at 20M viewings)."""
    from recommendations.models import ModelKind
    from recommendations.training import model_train

    result = model_train(kind=ModelKind.POPULARITY, activation="always")
    if not result.activated:
        raise SystemExit(f"the new popularity version was not activated: {result.reason}")
    return result.version.version


def _wait_for(condition, what: str, seconds: float = 120.0) -> None:  # noqa: ANN001
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"gave up waiting for {what}")
        time.sleep(0.5)


if __name__ == "__main__":
    main()
