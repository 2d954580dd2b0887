#!/usr/bin/env python
"""Offline evaluation on MovieLens 100k under the Microsoft Recommenders protocol (issue 4, item 5).

    OPENBLAS_NUM_THREADS=1 .venv/bin/python bench/ml100k_eval.py             # tune, refit, evaluate: minutes
    OPENBLAS_NUM_THREADS=1 .venv/bin/python bench/ml100k_eval.py --quick     # the last run's choices, no tuning

A thin command line over recommendations.ml.evaluation (also `manage.py evaluate --dataset PATH`, any layout).
Split: all ratings, stratified by item, 75/25, seed 42. Hyper-parameters and candidate knobs are chosen on a
validation split carved out of train (same procedure, another seed), never on test; each family's grid stops
at --tune-seconds. Then every model is refitted on train and scored on test: top-10 per user with train items
removed, every test rating relevant, users in both test and predictions. The merged-candidates row runs
serving's own candidate pipeline (recommendations.ml.candidate_pipeline) and reports recall@500. Writes a table to the terminal, --json and --png.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from recommendations.ml.evaluation import DatasetError, EvaluationConfig, format_table, run_evaluation  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--data",
        type=Path,
        default=ROOT.parent / "shared" / "data" / "ml-100k",
        help="any layout users.ml.datasets reads (default ../shared/data/ml-100k)",
    )
    parser.add_argument("--json", type=Path, default=ROOT / "bench/results/ml100k_eval.json")
    parser.add_argument("--png", type=Path, default=ROOT / "bench/results/ml100k_eval.png")
    parser.add_argument(
        "--tune-seconds",
        type=float,
        default=60.0,
        help="time box per family's grid, NCF x2.5 (default 60; 0 = no tuning)",
    )
    parser.add_argument("--quick", action="store_true", help="skip tuning and the fit-time comparison")
    parser.add_argument("--threads", type=int, default=2, help="implicit's threads (default 2)")
    parser.add_argument(
        "--torch-threads",
        type=int,
        default=1,
        help="torch intra-op threads (default 1: on this shared 2-core machine a training step "
        "took 4.0 ms on 1 thread, 6.1 ms on 2, and 10x longer on 2 under load)",
    )
    args = parser.parse_args()
    config = EvaluationConfig(
        dataset=args.data,
        json_path=args.json,
        png_path=args.png,
        tune_seconds=args.tune_seconds,
        quick=args.quick,
        threads=args.threads,
        torch_threads=args.torch_threads,
        log=lambda line: print(line, flush=True),
    )
    try:
        result = run_evaluation(config)
    except DatasetError as error:
        sys.exit(f"error: {error}")
    print(format_table(result))
    print(f"wrote {args.json} and {args.png} in {result['total_seconds']:.0f}s")


if __name__ == "__main__":
    main()
