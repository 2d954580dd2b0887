"""How fast this box is right now: the timing benchmarks record it beside their figures.

This 2-core VM's speed drifts between sessions (the same request path measured 2-4x apart on different
days), so a latency figure is only comparable with another taken at a similar calibration.
"""

from __future__ import annotations

import time

import numpy as np

REPEATS = 50


def _median_ms(step, repeats: int = REPEATS) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        step()
        times.append(time.perf_counter() - started)
    return round(float(np.median(times)) * 1000, 3)


def _python_loop() -> None:
    total = 0
    for number in range(100_000):
        total += number


def calibration() -> dict[str, float]:
    """Median milliseconds of two fixed workloads: a pure-Python loop of 100K additions and one
    100,000 × 64 float32 matrix-vector product (the collaborative source's core, memory-bound)."""
    rng = np.random.default_rng(0)
    factors = rng.random((100_000, 64), dtype=np.float32)
    vector = rng.random(64, dtype=np.float32)
    out = np.empty(len(factors), np.float32)
    return {
        "python_loop_100k_ms": _median_ms(_python_loop),
        "matvec_100k_x_64_ms": _median_ms(lambda: np.matmul(factors, vector, out=out)),
    }
