"""PostgreSQL frozen or killed (through the proxy gunicorn reaches it by) under 20 requests/s.

Issue #14's figures: a JSON 503 with Retry-After within 1 s, no gunicorn worker timeouts, full answers within
1 s of the database's return; readiness fails while it is down (liveness does not).
"""

from __future__ import annotations

import time

import pytest

from tests.faultkit import LoadResult, RequestRecord, load, recovered_at, request
from tests.reliability.conftest import RATE, READINESS_PATH, ServedWorld

pytestmark = pytest.mark.reliability

ANSWER_WITHIN_MS = 1000.0
RECOVER_WITHIN_SECONDS = 1.0
BEFORE, FAULT, AFTER = 2.0, 5.0, 4.0


def _is_json_503(record: RequestRecord) -> bool:
    return (
        record.status == 503
        and record.content_type.startswith("application/json")
        and len(record.flags) == 1
        and record.flags[0].startswith("code:")
        and (record.retry_after or "").isdigit()
        and int(record.retry_after) >= 1
    )


def _assert_fault_then_recovery(world: ServedWorld, run: LoadResult, start: float, end: float) -> None:
    during = run.between(start, end)
    assert len(during) >= RATE * (end - start) * 0.9, "the load generator fell behind"
    wrong = [r for r in during if not (r.status == 200 or _is_json_503(r))]
    assert not wrong, (
        f"{len(wrong)} of {len(during)} answers during the outage neither 200 nor a JSON 503 "
        f"with Retry-After, e.g. {wrong[:3]}"
    )
    assert any(r.status == 503 for r in during), "no request noticed the outage"
    slow = [r for r in during if r.latency_ms > ANSWER_WITHIN_MS]
    assert not slow, f"{len(slow)} of {len(during)} requests took over {ANSWER_WITHIN_MS:.0f} ms, e.g. {slow[:3]}"
    assert not [r for r in run.records if r.status >= 500 and r.status != 503], "a 5xx other than 503"

    recovered = recovered_at(run.records, after=end, good=world.full)
    assert recovered is not None and recovered - end <= RECOVER_WITHIN_SECONDS, (
        f"not full answers within {RECOVER_WITHIN_SECONDS} s of the database's return (recovered at "
        f"{recovered}, back at {end:.2f}): {run.summary(end, run.seconds)}"
    )
    assert world.server.worker_timeouts() == 0, f"gunicorn killed hung workers:\n{world.server.log_tail()}"


def _warm(world: ServedWorld) -> None:
    run = load(world.recs_url(), RATE, 1.0, world.headers)
    assert all(world.full(r) for r in run.records), [r for r in run.records if not world.full(r)][:3]


def test_a_frozen_database_gives_json_503s_within_a_second_and_full_answers_a_second_after_it_thaws(
    served_world: ServedWorld,
):
    world = served_world
    _warm(world)
    run = load(
        world.recs_url(),
        RATE,
        BEFORE + FAULT + AFTER,
        world.headers,
        actions=[(BEFORE, "freeze", world.proxy.freeze), (BEFORE + FAULT, "thaw", world.proxy.thaw)],
    )
    _assert_fault_then_recovery(world, run, run.actions["freeze"], run.actions_started["thaw"])


def test_a_killed_database_gives_json_503s_within_a_second_and_full_answers_a_second_after_it_returns(
    served_world: ServedWorld,
):
    world = served_world
    _warm(world)
    run = load(
        world.recs_url(),
        RATE,
        BEFORE + FAULT + AFTER,
        world.headers,
        actions=[(BEFORE, "kill", world.proxy.kill), (BEFORE + FAULT, "revive", world.proxy.revive)],
    )
    _assert_fault_then_recovery(world, run, run.actions["kill"], run.actions_started["revive"])


def _probe(world: ServedWorld, path: str) -> tuple[int, float, dict, bytes]:
    started = time.perf_counter()
    status, headers, body = request(world.server.url + path, timeout=5.0)
    return status, (time.perf_counter() - started) * 1000, headers, body


@pytest.mark.parametrize("fault", ["kill", "freeze"])
def test_readiness_fails_within_a_second_while_the_database_is_down_and_liveness_does_not(
    served_world: ServedWorld, fault: str
):
    world = served_world
    assert _probe(world, READINESS_PATH)[0] == 200
    getattr(world.proxy, fault)()
    try:
        for _ in range(3):  # each worker, and again once a breaker may have opened
            status, elapsed_ms, headers, _ = _probe(world, READINESS_PATH)
            assert status == 503 and elapsed_ms <= ANSWER_WITHIN_MS, (status, elapsed_ms)
            assert headers.get("content-type", "").startswith("application/json") and "retry-after" in headers
        status, elapsed_ms, _, body = _probe(world, "/healthz")
        assert status == 200 and elapsed_ms <= ANSWER_WITHIN_MS, (status, elapsed_ms, body)
    finally:
        world.proxy.revive() if fault == "kill" else world.proxy.thaw()
    deadline = time.monotonic() + RECOVER_WITHIN_SECONDS + 1.0
    while _probe(world, READINESS_PATH)[0] != 200:
        assert time.monotonic() < deadline, "readiness still failing after the database came back"
        time.sleep(0.1)
