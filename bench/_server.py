"""What the HTTP benchmarks share: the database they run on, starting gunicorn as production does, waiting
for it to answer."""

from __future__ import annotations

import argparse
import http.client
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def add_service_arguments(parser: argparse.ArgumentParser) -> None:
    """--database-url, --redis-url and --artifact-dir, defaulting to what bench/load_data.py and
    bench/train_models.py build (reco_bench), and --serving-cache-dir (the web processes' private copies)."""
    parser.add_argument("--database-url", default="postgres://reco:reco@127.0.0.1:5432/reco_bench")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/14")
    parser.add_argument("--artifact-dir", default="/tmp/reco-bench-artifacts")
    parser.add_argument("--serving-cache-dir", default="/tmp/reco-bench-serving-cache")


def service_env(args: argparse.Namespace, **extra: str) -> dict[str, str]:
    """This process's environment pointed at the services in `args`, one BLAS thread, plus `extra`."""
    return {
        **os.environ,
        "DATABASE_URL": args.database_url,
        "REDIS_URL": args.redis_url,
        "RECO_ARTIFACT_DIR": args.artifact_dir,
        "RECO_SERVING_CACHE_DIR": args.serving_cache_dir,
        "DJANGO_SETTINGS_MODULE": "config.settings.base",
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        **extra,
    }


def start_gunicorn(port: int, workers: int, env: dict[str, str], *options: str, **popen: object) -> subprocess.Popen:
    """gunicorn with config/gunicorn.py (the production settings) on 127.0.0.1:port."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "--config",
            "config/gunicorn.py",
            "config.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
            *options,
        ],
        cwd=ROOT,
        env=env,
        **popen,
    )


def wait_ready(port: int, *, seconds: float = 60.0) -> None:
    """Return once GET /healthz answers 200 on 127.0.0.1:port; SystemExit after `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/healthz")
            if connection.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.5)
    raise SystemExit("gunicorn did not come up")
