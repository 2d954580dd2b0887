"""config.reloading.VersionedSnapshot in-process (no database): what a cache read costs, and what a reader waits
while another thread rebuilds, against the blocking lock the catalog and serving state used before (#17).

    .venv/bin/python bench/reloading.py [--calls 200000] [--rebuild-seconds 1.0] [--json PATH]

- fresh: `get()` within the interval (every cache's common case); due: `check_seconds=0` with a cheap version
  read (the serving state's case: a check on every call).
- rebuild: 4 reader threads call `get()` in a loop while a 5th rebuilds for `--rebuild-seconds`; the figure
  is each read's latency, with the helper (readers serve the old snapshot) and with the old pattern (a reader
  whose check falls due waits on the lock until the rebuild ends).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
import tracemalloc
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._machine import calibration
from config.reloading import VersionedSnapshot

READERS = 4
BATCH = 1000  # calls per timed sample in the single-thread figures


def _percentiles_us(samples: list[float]) -> dict[str, float]:
    values = np.asarray(samples) * 1e6
    return {f"p{q}_us": round(float(np.percentile(values, q)), 3) for q in (50, 95, 99)} | {
        "max_us": round(float(values.max()), 1)
    }


def _per_call(get, calls: int) -> dict[str, float]:
    """p50/p95/p99 of the mean call time over batches of BATCH calls, and calls per second."""
    samples = []
    started = time.perf_counter()
    for _ in range(calls // BATCH):
        batch_started = time.perf_counter()
        for _ in range(BATCH):
            get()
        samples.append((time.perf_counter() - batch_started) / BATCH)
    elapsed = time.perf_counter() - started
    return _percentiles_us(samples) | {"calls_per_s": round(calls / elapsed)}


class _OldBlocking:
    """The catalog cache's pattern before #17: a reader whose check falls due waits for the lock."""

    def __init__(self, read_version, build, check_seconds: float) -> None:
        self._read_version, self._build, self.check_seconds = read_version, build, check_seconds
        self._snapshot = None
        self._version = None
        self._checked_at = float("-inf")
        self._lock = threading.Lock()

    def get(self):
        snapshot = self._snapshot
        if snapshot is not None and time.monotonic() - self._checked_at < self.check_seconds:
            return snapshot
        with self._lock:
            if self._snapshot is not None and time.monotonic() - self._checked_at < self.check_seconds:
                return self._snapshot
            self._checked_at = time.monotonic()
            version = self._read_version()
            if self._snapshot is None or version != self._version:
                self._snapshot, self._version = self._build(version, self._snapshot), version
            return self._snapshot


def _rebuild_waits(make, rebuild_seconds: float) -> dict[str, float]:
    """Read latencies of READERS threads over a window holding one slow rebuild."""
    state = {"version": 1, "slow": False}

    def build(version: int, _previous):
        if state["slow"]:
            time.sleep(rebuild_seconds)
        return ("snapshot", version)

    cache = make(lambda: state["version"], build)
    cache.get()
    stop = threading.Event()
    latencies: list[list[float]] = [[] for _ in range(READERS)]

    def reader(out: list[float]) -> None:
        while not stop.is_set():
            started = time.perf_counter()
            cache.get()
            out.append(time.perf_counter() - started)
            time.sleep(0.001)  # a request's other work

    threads = [threading.Thread(target=reader, args=(out,)) for out in latencies]
    for thread in threads:
        thread.start()
    time.sleep(0.2)
    state["slow"], state["version"] = True, 2
    time.sleep(rebuild_seconds + 0.3)
    stop.set()
    for thread in threads:
        thread.join()
    reads = [value for out in latencies for value in out]
    return _percentiles_us(reads) | {
        "reads": len(reads),
        "reads_over_10ms": sum(value > 0.01 for value in reads),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=200_000)
    parser.add_argument("--rebuild-seconds", type=float, default=1.0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    fresh = VersionedSnapshot("fresh", read_version=lambda: 1, build=lambda v, _p: ("s", v), check_seconds=3600)
    due = VersionedSnapshot("due", read_version=lambda: 1, build=lambda v, _p: ("s", v), check_seconds=0)
    old_due = _OldBlocking(lambda: 1, lambda v, _p: ("s", v), 0)
    for cache in (fresh, due, old_due):
        cache.get()

    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    many = [
        VersionedSnapshot(f"key {i}", build=lambda _v, _p: None, check_seconds=30) for i in range(1000)
    ]  # one per API key
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    bytes_each = sum(stat.size_diff for stat in after.compare_to(before, "filename")) / len(many)

    result = {
        "machine": calibration() | {"cpus": os.cpu_count()},
        "fresh_get": _per_call(fresh.get, args.calls),
        "due_get_check_every_call": _per_call(due.get, args.calls),
        "old_pattern_due_get": _per_call(old_due.get, args.calls),
        "rebuild_readers_helper": _rebuild_waits(
            lambda read, build: VersionedSnapshot("bench", read_version=read, build=build, check_seconds=0),
            args.rebuild_seconds,
        ),
        "rebuild_readers_old_blocking": _rebuild_waits(
            lambda read, build: _OldBlocking(read, build, 0), args.rebuild_seconds
        ),
        "memory_bytes_per_snapshot": round(bytes_each),
        "rebuild_seconds": args.rebuild_seconds,
        "reader_threads": READERS,
    }
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
