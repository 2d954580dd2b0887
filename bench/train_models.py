#!/usr/bin/env python
"""Benchmark training from the database: read the history, validate, refit, register; time and memory.

    .venv/bin/python bench/train_models.py --kind mf                  # reco_bench: 1M profiles, 50M events
    .venv/bin/python bench/train_models.py --kind ncf --database-url postgres://reco:reco@127.0.0.1:5432/reco_ml

It migrates the database first. Prints the seconds of each phase (reading, the validation split, the validation
fit, the validation metrics, the registered model's fit: for ALS the validated model continued over everything
for --refit-epochs iterations, 0 a fresh fit), the whole job, the validation metrics, the peak memory and the
machine calibration (bench/_machine.py); `--json PATH` also writes them. The version is registered as a
candidate only (activation=never), with its artifact under --artifact-dir.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kind", default="mf", help="model kind (default mf)")
    parser.add_argument("--database-url", default="postgres://reco:reco@127.0.0.1:5432/reco_bench")
    parser.add_argument("--artifact-dir", type=Path, default=Path(tempfile.gettempdir()) / "reco-bench-artifacts")
    parser.add_argument("--refit-epochs", type=int, help="ALS: iterations of the warm refit (0: a fresh fit)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    os.environ["DATABASE_URL"] = args.database_url
    os.environ["RECO_ARTIFACT_DIR"] = str(args.artifact_dir)
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # implicit uses its own threads
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")
    sys.path.insert(0, str(ROOT))
    from bench._machine import calibration

    machine = calibration()
    print(f"machine calibration: {machine}", flush=True)
    import django

    django.setup()
    from django.core.management import call_command

    from recommendations.training import jobs

    call_command("migrate", verbosity=0)  # a benchmark database loaded before the latest apps needs their tables

    started = time.perf_counter()
    params = {jobs.REFIT_EPOCHS: args.refit_epochs} if args.refit_epochs is not None else None
    result = jobs.model_train(kind=args.kind, activation="never", params=params)
    total = time.perf_counter() - started
    metrics = result.version.metrics
    figures = {
        "kind": args.kind,
        "database": args.database_url.rsplit("/", 1)[-1],
        "interactions": result.interactions,
        "read_seconds": metrics.get("read_seconds"),
        "split_seconds": metrics.get("split_seconds"),
        "validation_fit_seconds": metrics.get("validation_fit_seconds"),
        "validation_seconds": metrics.get("validation_seconds"),
        "final_fit_seconds": metrics.get("fit_seconds"),
        "job_seconds": round(total, 1),
        "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
        "validation": {k: v for k, v in metrics.items() if k.endswith("_at_10") or k == "users"},
        "params": result.version.params,
        "machine": machine,
    }
    print(json.dumps(figures, indent=2))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
