#!/usr/bin/env python
"""Web tier memory and swap time across a model activation: gunicorn with config/gunicorn.py, on reco_bench.

    .venv/bin/python bench/swap_memory.py --workers 4                     # memory-mapped private copies
    .venv/bin/python bench/swap_memory.py --workers 4 --artifact-mmap 0   # arrays read into memory

Measures the proportional set size of the master and its workers together (shared pages counted once):
1. `started`: the master loaded the models (from its verified private copies) before forking; the workers
   share them;
2. an activation of a new version of --kind (the active artifact re-saved with new metadata: new checksum,
   new files, the same sizes; no training), under a light load: every worker first switches by itself,
   then the master's monitor notices the new version, loads it and re-forks the workers (no SIGHUP);
   `peak_during_swap` is the highest total PSS sampled every 0.5 s meanwhile;
3. `after_swap`: once every process (their published statuses) serves the new version and every worker
   is a fresh one, and --requests more requests have gone through.
Swap times: from the activation until the master serves the new version, and until fresh workers do.
Each measurement first sends --requests requests over random profiles, so the workers have touched what
they use. Every request of the run must answer 200.
"""

from __future__ import annotations

import argparse
import http.client
import json
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from _server import add_service_arguments, service_env, start_gunicorn, wait_ready
from http_load import PORT, _get, _issue_key, _memory, _profiles


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_service_arguments(parser)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--requests", type=int, default=400, help="requests before each measurement")
    parser.add_argument("--kind", default="mf", help="the model kind to activate a new version of (default mf)")
    parser.add_argument("--artifact-mmap", default="1", help="RECO_ARTIFACT_MMAP for the server (default 1)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    env = service_env(
        args,
        LOG_LEVEL="INFO",
        RECO_RESPONSE_CACHE_SECONDS="0",
        RECO_ARTIFACT_MMAP=args.artifact_mmap,
        RECO_PROCESS_STATUS_SECONDS="2",
    )
    profiles = _profiles(env)
    _issue_key(env)
    rng = np.random.default_rng(3)
    steps: dict[str, dict] = {}
    failures: list[int] = []
    with tempfile.TemporaryDirectory() as scratch, (Path(scratch) / "gunicorn.log").open("w") as log:
        server = start_gunicorn(PORT, args.workers, env, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_ready(PORT, seconds=180)
            _wait_for(lambda: len(_ours(server.pid)) == args.workers + 1, "every process's status")
            steps["started"] = _measure(server.pid, profiles, rng, args.requests)
            first_workers = {s["pid"] for s in _ours(server.pid) if s["role"] == "worker"}
            load = _Background(profiles, failures)
            peak = _PeakSampler(server.pid)
            load.start(), peak.start()
            version = _activate_new_version(args.kind)
            activated_at = time.monotonic()
            _wait_for(
                lambda: _serves(_ours(server.pid), args.kind, version, role="master"),
                "the master to serve the new version",
            )
            master_s = time.monotonic() - activated_at
            _wait_for(
                lambda: _refreshed(server.pid, args, version, first_workers), "fresh workers serving the new version"
            )
            workers_s = time.monotonic() - activated_at
            time.sleep(3)  # the old workers finish and exit
            load.stop(), peak.stop()
            steps["peak_during_swap"] = {"total_pss_mib": peak.peak}
            steps["after_swap"] = _measure(server.pid, profiles, rng, args.requests)
            swap = {"master_serves_new_s": round(master_s, 1), "fresh_workers_serve_new_s": round(workers_s, 1)}
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)
    if failures:
        raise SystemExit(f"{len(failures)} requests failed during the swap: {sorted(set(failures))}")
    result = {
        "workers": args.workers,
        "artifact_mmap": args.artifact_mmap,
        "kind": args.kind,
        "activated": version,
        "requests_during_swap": load.sent,
        "swap_seconds": swap,
        "total_pss_mib": {step: figures["total_pss_mib"] for step, figures in steps.items()},
        "steps": steps,
    }
    print(json.dumps({k: result[k] for k in ("workers", "artifact_mmap", "total_pss_mib", "swap_seconds")}))
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


class _Daemon:
    """A daemon thread running `_run` until `stop()`."""

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        raise NotImplementedError


class _Background(_Daemon):
    """About 20 requests/s while the swap happens; non-200 answers are collected."""

    def __init__(self, profiles: np.ndarray, failures: list[int]) -> None:
        super().__init__()
        self.profiles, self.failures, self.sent = profiles, failures, 0

    def _run(self) -> None:
        rng = np.random.default_rng(5)
        while not self._stop.wait(0.05):
            connection = http.client.HTTPConnection("127.0.0.1", PORT, timeout=60)
            try:
                status, _ = _get(connection, int(rng.choice(self.profiles)))
            except OSError:
                status = -1
            finally:
                connection.close()
            self.sent += 1
            if status != 200:
                self.failures.append(status)


class _PeakSampler(_Daemon):
    def __init__(self, master_pid: int) -> None:
        super().__init__()
        self.master_pid, self.peak = master_pid, 0.0

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            try:
                self.peak = max(self.peak, _memory(self.master_pid)["total_pss_mib"])
            except (FileNotFoundError, ProcessLookupError, KeyError):
                continue  # a worker exited between the listing and the read


def _ours(master_pid: int) -> list[dict]:
    from recommendations.serving.process_status import serving_processes

    return [s for s in serving_processes() if master_pid in (s.get("pid"), s.get("ppid"))]


def _serves(statuses: list[dict], kind: str, version: str, *, role: str | None = None) -> bool:
    chosen = [s for s in statuses if role is None or s["role"] == role]
    return bool(chosen) and all({m["kind"]: m["version"] for m in s["models"]}.get(kind) == version for s in chosen)


def _refreshed(master_pid: int, args: argparse.Namespace, version: str, first_workers: set[int]) -> bool:
    statuses = _ours(master_pid)
    workers = [s for s in statuses if s["role"] == "worker" and s["pid"] not in first_workers]
    return len(workers) >= args.workers and _serves(workers, args.kind, version)


def _activate_new_version(kind: str) -> str:
    """Register the active `kind` re-saved with new metadata (a new checksum and new files of the same size,
    without training) and activate it."""
    from recommendations.models import ModelVersion
    from recommendations.registry import artifact_dir, model_class
    from recommendations.services import model_version_activate, model_version_register

    active = ModelVersion.objects.get(kind=kind, status=ModelVersion.Status.ACTIVE)
    source = artifact_dir() / active.artifact_path
    model = model_class(kind).load(source)
    meta = model_class(kind).read_meta(source)
    with tempfile.TemporaryDirectory() as scratch:
        saved = model.save(
            Path(scratch) / "model", metadata={**meta["metadata"], "bench_resave_of": active.version, "at": time.time()}
        )
        version = model_version_register(kind=kind, saved_model_dir=saved, metrics=active.metrics, params=active.params)
    model_version_activate(version_id=version.pk)
    return version.version


def _wait_for(condition, what: str, seconds: float = 180.0) -> float:
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > seconds:
            raise SystemExit(f"gave up waiting for {what}")
        time.sleep(0.25)
    return time.monotonic() - started


if __name__ == "__main__":
    main()
