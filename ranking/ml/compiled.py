"""The ranker's forest compiled to native code (lleaves, through LLVM) for the request path.

The compiled object is one more file of the ranker's artifact, with its SHA-256 in meta.json like the model's.
It is built for the baseline x86-64 CPU (no instruction a serving host may lack), so a training host's build
runs on every host of the same architecture. A loaded forest is checked against LightGBM on probe rows;
whoever loads it falls back to LightGBM on any failure (see LambdaMARTRanker.load).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np

COMPILED_FILE = "forest.lleaves.o"
BACKEND = "lleaves"
TARGET_CPU = "x86-64"  # baseline ISA; the host's own CPU name would tie the file to the training machine
TOLERANCE = 1e-6  # largest score difference from LightGBM accepted on the probe rows
PROBE_ROWS = 256


class CompiledForestError(RuntimeError):
    """The compiled forest cannot be built or served here (no lleaves, another architecture, a bad file)."""


def _lleaves() -> Any:
    try:
        import lleaves
        import llvmlite.binding as llvm
    except ImportError as error:  # an optional speed-up: LightGBM serves without it
        raise CompiledForestError(f"lleaves is not installed: {error}") from error
    return lleaves, llvm


def compile_forest(model_file: Path, target: Path) -> dict[str, Any]:
    """Compile LightGBM text model `model_file` into `target` (written under a temporary name, then renamed);
    returns what meta.json records of it. CompiledForestError if it cannot be built here."""
    lleaves, llvm = _lleaves()
    started = time.perf_counter()
    scratch = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    scratch.unlink(missing_ok=True)
    try:
        lleaves.Model(model_file=str(model_file)).compile(
            cache=str(scratch), raw_score=True, target_cpu=TARGET_CPU, target_cpu_features=""
        )
        os.replace(scratch, target)
    except Exception as error:
        raise CompiledForestError(f"compiling {model_file} failed: {error}") from error
    finally:
        scratch.unlink(missing_ok=True)
    return {
        "backend": BACKEND,
        "file": target.name,
        "target_triple": llvm.get_process_triple(),
        "target_cpu": TARGET_CPU,
        "build_seconds": round(time.perf_counter() - started, 3),
    }


class CompiledForest:
    """Scores of a compiled forest: float64 (n,) of float32 (n, n_features), one thread, GIL released."""

    def __init__(self, model: Any, n_features: int) -> None:
        self._model = model
        self.n_features = n_features

    @classmethod
    def load(cls, model_file: Path, compiled_file: Path, info: dict[str, Any]) -> CompiledForest:
        """The forest `compile_forest` built; CompiledForestError if this host cannot run it."""
        lleaves, llvm = _lleaves()
        if info.get("backend") != BACKEND:
            raise CompiledForestError(f"unknown compiled backend {info.get('backend')!r}")
        if info.get("target_triple") != llvm.get_process_triple():
            raise CompiledForestError(
                f"built for {info.get('target_triple')}, this host is {llvm.get_process_triple()}"
            )
        if not compiled_file.is_file():
            raise CompiledForestError(f"{compiled_file} is missing")
        model = lleaves.Model(model_file=str(model_file))
        model.compile(
            cache=str(compiled_file),
            raw_score=True,
            target_cpu=info.get("target_cpu", TARGET_CPU),
            target_cpu_features="",
        )
        return cls(model, model.num_feature())

    def predict(self, features: np.ndarray) -> np.ndarray:
        scores: np.ndarray = self._model.predict(features, n_jobs=1)
        return scores


def probe_rows(n_features: int, *, rows: int = PROBE_ROWS, seed: int = 0) -> np.ndarray:
    """Deterministic float32 rows with missing values and values on both sides of zero, to compare two
    implementations of one forest."""
    rng = np.random.default_rng(seed)
    probe = rng.standard_normal((rows, n_features)) * rng.choice([0.1, 1.0, 10.0, 1000.0], size=(rows, 1))
    probe[rng.random(probe.shape) < 0.1] = np.nan
    probe[rng.random(probe.shape) < 0.1] = 0.0
    rows32: np.ndarray = probe.astype(np.float32)
    return rows32


def check_against(forest: CompiledForest, reference: np.ndarray, probe: np.ndarray) -> None:
    """CompiledForestError unless the forest scores `probe` like `reference` (LightGBM's) within TOLERANCE."""
    got = forest.predict(probe)
    worst = float(np.max(np.abs(got - reference))) if len(probe) else 0.0
    if not np.isfinite(worst) or worst > TOLERANCE:
        raise CompiledForestError(f"the compiled forest differs from LightGBM by {worst:.3g} on the probe rows")
