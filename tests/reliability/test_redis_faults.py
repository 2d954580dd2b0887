"""Redis frozen or killed under 20 requests/s: every answer a fast, flagged 200; full answers once it is back.

Issue #14's figures: every request answered 200 (degraded, flagged), p99 <= 100 ms during the fault; after Redis
returns empty, full answers again (within 60 s in bench/reliability.py; here the test refreshes the features
itself, as the feature jobs would, and expects full answers soon after).
"""

from __future__ import annotations

import pytest

from tests.faultkit import LoadResult, load, recovered_at
from tests.reliability.conftest import RATE, ServedWorld

pytestmark = pytest.mark.reliability

FAULT_P99_MS = 100.0
BEFORE, FAULT = 2.0, 6.0  # seconds of load before the fault, and of the fault
RECOVERY_SECONDS = 10.0  # a breaker may wait this long before it tries Redis again
# 60 profiles at 20/s: each is asked again every 3 s, so an answer cached while Redis was empty (degraded) is
# asked for again after the features are back, as a client refreshing its homepage would.
PROFILES = 60


def _assert_served_through_the_fault(world: ServedWorld, run: LoadResult, start: float, end: float) -> None:
    during = run.between(start, end)
    assert len(during) >= RATE * (end - start) * 0.9, "the load generator fell behind"
    failed = [r for r in run.records if r.status != 200]
    assert not failed, f"{len(failed)} of {len(run.records)} requests not answered 200, e.g. {failed[:3]}"
    silent = [r for r in run.within(start, end) if world.full(r)]
    assert not silent, f"{len(silent)} answers during the fault took the full path's flags: nothing was flagged"
    summary = run.summary(start, end)
    assert summary["p99_ms"] <= FAULT_P99_MS, f"p99 {summary['p99_ms']} ms during the fault: {summary}"


def _warm(world: ServedWorld) -> None:
    """Both workers answer and the world's answers are full before anything breaks."""
    run = load(world.recs_url(), RATE, 1.0, world.headers)
    assert all(world.full(r) for r in run.records), [r for r in run.records if not world.full(r)][:3]


def test_a_frozen_redis_gives_fast_flagged_answers_and_full_ones_once_thawed(served_world: ServedWorld):
    world = served_world
    _warm(world)
    thaw_at = BEFORE + FAULT
    run = load(
        world.recs_url(PROFILES),
        RATE,
        thaw_at + RECOVERY_SECONDS + 3,
        world.headers,
        actions=[(BEFORE, "freeze", world.redis.freeze), (thaw_at, "thaw", world.redis.thaw)],
    )

    _assert_served_through_the_fault(world, run, run.actions["freeze"], run.actions_started["thaw"])
    recovered = recovered_at(run.records, after=run.actions["thaw"], good=world.full)
    assert recovered is not None and recovered - run.actions["thaw"] <= RECOVERY_SECONDS, (
        f"answers still degraded {RECOVERY_SECONDS} s after Redis thawed: {run.summary(thaw_at, run.seconds)}"
    )


def test_a_killed_redis_gives_fast_flagged_answers_and_full_ones_once_back_and_refreshed(served_world: ServedWorld):
    world = served_world
    _warm(world)
    back_at = BEFORE + FAULT
    refresh_at = back_at + 2.0  # an empty Redis first: answers must say so, not silently use defaults
    run = load(
        world.recs_url(PROFILES),
        RATE,
        refresh_at + RECOVERY_SECONDS + 3,
        world.headers,
        actions=[
            (BEFORE, "kill", world.redis.kill),
            (back_at, "restart", world.redis.restart),
            (refresh_at, "refresh", world.refresh_features),
        ],
    )

    _assert_served_through_the_fault(world, run, run.actions["kill"], run.actions_started["restart"])
    empty = run.within(run.actions["restart"], run.actions_started["refresh"])
    assert empty and not [r for r in empty if world.full(r)], "answers on an empty Redis were not flagged degraded"
    recovered = recovered_at(run.records, after=run.actions["refresh"], good=world.full)
    assert recovered is not None and recovered - run.actions["refresh"] <= RECOVERY_SECONDS, (
        f"answers still degraded {RECOVERY_SECONDS} s after the features were back: "
        f"{run.summary(run.actions['refresh'], run.seconds)}"
    )
