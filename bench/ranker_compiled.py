#!/usr/bin/env python
"""The ranking stage's forest: LightGBM's own predict against the compilers (lleaves, treelite + tl2cgen).

    .venv/bin/python bench/ranker_compiled.py --trees 400 --json bench/results/ranker_compiled.json

Fits a LambdaMART ranker of the serving shape (the 70 ranker features, DEFAULT_PARAMS' 15 leaves, exactly
--trees trees) on a planted signal, then for each backend: the build time (compile to a loadable file), the
load time, one request's prediction (--rows candidates, one thread) p50/p95/p99 and throughput over
--repeats calls, the largest score difference from LightGBM, the file size and the process's RSS growth.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _machine import calibration

ROOT = Path(__file__).resolve().parent.parent


def rss_mib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def timed(predict, features: np.ndarray, repeats: int) -> dict:
    predict(features)  # warm
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        predict(features)
        times.append(time.perf_counter() - started)
    ms = np.array(times) * 1000
    return {
        "p50_ms": round(float(np.percentile(ms, 50)), 4),
        "p95_ms": round(float(np.percentile(ms, 95)), 4),
        "p99_ms": round(float(np.percentile(ms, 99)), 4),
        "requests_per_s": round(repeats / float(np.sum(times)), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trees", type=int, default=400)
    parser.add_argument("--rows", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=2_000)
    parser.add_argument("--backends", default="lightgbm,lleaves,tl2cgen")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from ranking.ml.features import RANKER_FEATURE_NAMES
    from ranking.ml.ranker import MODEL_FILE, LambdaMARTRanker

    machine = calibration()
    print(f"machine calibration: {machine}")
    rng = np.random.default_rng(0)
    queries, per_query = 400, 100
    n = queries * per_query
    features = rng.normal(size=(n, len(RANKER_FEATURE_NAMES))).astype(np.float32)
    features[rng.random(features.shape) < 0.05] = np.nan
    signal = np.nan_to_num(features[:, :8]).sum(axis=1) + rng.normal(scale=1.0, size=n)
    labels = np.digitize(signal, [1.5, 3.0]).astype(np.int32)
    ranker = LambdaMARTRanker({"min_data_in_leaf": 20}, num_boost_round=args.trees, early_stopping_rounds=args.trees)
    ranker.fit(features, labels, np.full(queries, per_query))
    request = features[: args.rows].copy()
    expected = ranker.predict(request)
    scratch = Path(tempfile.mkdtemp(prefix="reco-ranker-bench-"))
    model_file = ranker.save(scratch / "ranker") / MODEL_FILE
    results: dict = {
        "trees": ranker.booster.num_trees(),
        "rows": args.rows,
        "features": len(RANKER_FEATURE_NAMES),
        "repeats": args.repeats,
        "machine": machine,
        "backends": {},
    }
    for backend in args.backends.split(","):
        before = rss_mib()
        started = time.perf_counter()
        if backend == "lightgbm":
            loaded = LambdaMARTRanker.load(model_file.parent)
            build_s, path = 0.0, model_file

            def predict(x, loaded=loaded):
                return loaded.booster.predict(x, num_threads=1)
        elif backend == "lleaves":
            import lleaves

            path = scratch / "forest.lleaves.o"
            lleaves.Model(model_file=str(model_file)).compile(
                cache=str(path), target_cpu="x86-64", target_cpu_features=""
            )
            build_s = time.perf_counter() - started
            started = time.perf_counter()
            loaded = lleaves.Model(model_file=str(model_file))
            loaded.compile(cache=str(path), target_cpu="x86-64", target_cpu_features="")

            def predict(x, loaded=loaded):
                return loaded.predict(x, n_jobs=1)
        elif backend == "tl2cgen":
            import tl2cgen
            import treelite

            path = scratch / "forest.so"
            model = treelite.frontend.load_lightgbm_model(str(model_file))
            tl2cgen.export_lib(model, toolchain="gcc", libpath=str(path), params={"parallel_comp": 8}, nthread=2)
            build_s = time.perf_counter() - started
            started = time.perf_counter()
            loaded = tl2cgen.Predictor(str(path), nthread=1)

            def predict(x, loaded=loaded):
                matrix = np.ascontiguousarray(x, dtype=loaded.threshold_type)  # numpy 2: DMatrix may not copy
                return loaded.predict(tl2cgen.DMatrix(matrix)).reshape(-1)
        else:
            raise SystemExit(f"unknown backend {backend}")
        load_s = time.perf_counter() - started
        got = np.asarray(predict(request), np.float64)
        figures = {
            "build_s": round(build_s, 2),
            "load_s": round(load_s, 3),
            "file_bytes": path.stat().st_size,
            "max_abs_diff": float(np.max(np.abs(got - expected))),
            **timed(predict, request, args.repeats),
            "rss_growth_mib": round(rss_mib() - before, 1),
        }
        results["backends"][backend] = figures
        print(backend, figures, flush=True)
    results["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
