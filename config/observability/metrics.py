"""The service's Prometheus metrics (prometheus-client) and the one call per event that records them.

Under gunicorn the workers share PROMETHEUS_MULTIPROC_DIR (config/gunicorn.py sets one): every process writes
its values to memory-mapped files there and /metrics adds them up, so a scrape sees all workers whichever one
answers it. RECO_METRICS=0 turns recording off (the serving-cost benchmark measures with and without).
"""

from __future__ import annotations

import os
import time
from typing import Any

from django.conf import settings
from prometheus_client import Counter, Gauge, Histogram

MULTIPROCESS_DIR = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")
if MULTIPROCESS_DIR:
    os.makedirs(MULTIPROCESS_DIR, exist_ok=True)

_FAST = (0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 2.5)
_HTTP = (0.002, 0.005, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_AGE = (60, 300, 900, 1800, 3600, 2 * 3600, 6 * 3600, 86_400, 7 * 86_400)
_COUNT = (0, 1, 5, 10, 25, 50, 100, 200, 300, 500, 1000)

http_request_seconds = Histogram(
    "reco_http_request_duration_seconds",
    "Time from the first middleware to the response, per endpoint.",
    ["endpoint", "method", "status"],
    buckets=_HTTP,
)
stage_seconds = Histogram(
    "reco_engine_stage_seconds",
    "Time per stage of a recommendation (the stages Server-Timing reports).",
    ["stage"],
    buckets=_FAST,
)
engine_seconds = Histogram("reco_engine_seconds", "Whole recommendation time (Server-Timing's total).", buckets=_FAST)
answers = Counter("reco_recommendations_total", "Recommendations answered, by response-cache outcome.", ["cache"])
degraded_answers = Counter("reco_degraded_answers_total", "Answers carrying a degraded flag, per flag.", ["reason"])
candidates_per_source = Histogram(
    "reco_candidates", "Candidates each source proposed for one request.", ["source"], buckets=_COUNT
)
feature_age_seconds = Histogram(
    "reco_feature_age_seconds",
    "Age of the online features a request read (user: its profile's; content: the "
    "oldest of its candidates'); missing ones are degraded answers' flags.",
    ["entity"],
    buckets=_AGE,
)
model_served = Gauge(
    "reco_model_version_served",
    "1 for each model version this process serves.",
    ["kind", "version"],
    multiprocess_mode="liveall",
)
events = Counter("reco_events_total", "Events posted to /api/events, by outcome.", ["outcome"])

_children: dict[tuple[str, str], Any] = {}


def _child(metric: Any, label: str) -> Any:
    """metric.labels(label), looked up once (.labels() takes a lock and checks the names: ~1 µs a call)."""
    child = _children.get((metric._name, label))
    if child is None:
        child = _children[metric._name, label] = metric.labels(label)
    return child


_served: dict[str, Any] = {"pid": 0, "models": None, "versions": {}}  # a forked worker starts its own
_inputs_seen = [0]


def enabled() -> bool:
    return settings.RECO_METRICS


def recommendation_observe(timings_ms: dict[str, float], *, cache_state: str, degraded: list[str]) -> None:
    """One answer: its stage timings (the same dict Server-Timing prints), cache outcome and flags."""
    if not settings.RECO_METRICS:
        return
    for stage, ms in timings_ms.items():
        _child(stage_seconds, stage).observe(ms / 1000)
    engine_seconds.observe(sum(timings_ms.values()) / 1000)
    _child(answers, cache_state).inc()
    for reason in degraded:
        _child(degraded_answers, reason).inc()


def inputs_sampled() -> bool:
    """True for one answer in RECO_METRICS_INPUT_SAMPLE: what it worked from (candidates, feature age) is a
    distribution, and observing it costs ~70 µs inside a request."""
    if not settings.RECO_METRICS:
        return False
    _inputs_seen[0] += 1
    return _inputs_seen[0] % settings.RECO_METRICS_INPUT_SAMPLE == 1 % settings.RECO_METRICS_INPUT_SAMPLE


def candidates_observe(sources: tuple[str, ...], counts) -> None:  # an int array, one per source
    if settings.RECO_METRICS:
        for source, count in zip(sources, counts.tolist(), strict=True):
            _child(candidates_per_source, source).observe(count)


def feature_age_observe(entity: str, computed_at: float | None) -> None:
    """computed_at: Unix seconds of the oldest value read; None or NaN when nothing was found (not observed)."""
    if settings.RECO_METRICS and computed_at is not None and computed_at == computed_at:
        _child(feature_age_seconds, entity).observe(max(0.0, time.time() - computed_at))


def models_served(models: Any) -> None:
    """This process serves `models` (its `.versions`: {kind: version}); a changed kind's old version drops to 0."""
    pid = os.getpid()
    if not settings.RECO_METRICS or (models is _served["models"] and pid == _served["pid"]):
        return
    versions = models.versions
    before = _served["versions"] if pid == _served["pid"] else {}
    for kind, version in before.items():
        if versions.get(kind) != version:
            model_served.labels(kind, version).set(0)
    for kind, version in versions.items():
        model_served.labels(kind, version).set(1)
    _served.update(pid=pid, models=models, versions=dict(versions))


def events_counted(*, accepted: int, duplicates: int, rejected: int) -> None:
    if settings.RECO_METRICS:
        for outcome, count in (("accepted", accepted), ("duplicate", duplicates), ("rejected", rejected)):
            if count:
                events.labels(outcome).inc(count)


def http_observe(endpoint: str, method: str, status: int, seconds: float) -> None:
    if settings.RECO_METRICS:
        http_request_seconds.labels(endpoint, method, f"{status // 100}xx").observe(seconds)
