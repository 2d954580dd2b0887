"""Read replicas on a private primary + streaming replica, served by gunicorn (tests/db/replicated.py).

The replica replays REPLAY_DELAY seconds behind, so which database answered shows in the answer: a title the
profile just completed is still recommended from the replica and gone from the primary. The full 100-of-100
read-your-writes figure is bench/replicas.py; here the same loop runs 20 times.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.db.replicated import API_DEADLINE, REPLAY_DELAY, ReplicatedWorld, item_ids, replicated_world
from tests.faultkit import wait_until

RYW_ROUNDS = 20
_profiles = iter(range(10**6))  # each test takes profiles no other test has touched


@pytest.fixture(scope="module")
def world() -> Iterator[ReplicatedWorld]:
    with replicated_world() as served:
        for profile_id in served.profile_ids[:10]:  # every worker has started its replica monitor
            assert served.recs(profile_id)[0] == 200
        time.sleep(1.0)
        yield served


def fresh_profile(world: ReplicatedWorld) -> int:
    return world.profile_ids[10 + next(_profiles)]


def test_the_request_path_reads_the_replica(world):
    profile_id = fresh_profile(world)
    watched = world.top_title(profile_id)
    world.complete_behind_the_api(profile_id, watched)  # on the primary, and nothing pins the profile

    status, body = world.recs(profile_id)
    assert status == 200 and watched in item_ids(body)  # answered from the replica, which has not replayed it yet
    world.pair.wait_replica_caught_up(seconds=REPLAY_DELAY + 10)
    status, body = world.recs(profile_id)
    assert status == 200 and watched not in item_ids(body)


def test_a_profile_reads_its_own_writes_while_the_replica_is_behind(world):
    rounds = [world.ryw_round(fresh_profile(world)) for _ in range(RYW_ROUNDS)]

    assert all(r["posted"] for r in rounds)  # the write went to the primary (the replica is read-only)
    assert sum(r["seen"] for r in rounds) == RYW_ROUNDS, rounds
    assert all(r["replica_behind"] for r in rounds), "the replica had caught up: the test proved nothing"


def test_a_batch_reads_each_profile_where_its_own_pin_says(world):
    pinned, unpinned = fresh_profile(world), fresh_profile(world)
    watched = {pinned: world.top_title(pinned), unpinned: world.top_title(unpinned)}
    assert world.complete(pinned, watched[pinned])[0] == 200
    world.complete_behind_the_api(unpinned, watched[unpinned])

    status, body = world.batch([pinned, unpinned])
    behind = [not world.replica_has_completed(pk, watched[pk]) for pk in (pinned, unpinned)]

    assert status == 200 and behind == [True, True]
    from_primary, from_replica = body["results"]
    assert watched[pinned] not in item_ids(from_primary)
    assert watched[unpinned] in item_ids(from_replica)


def test_a_replica_lagging_past_the_limit_is_skipped(world):
    profile_id = fresh_profile(world)
    watched = world.top_title(profile_id)
    world.pair.delay_replica(60)
    try:
        time.sleep(0.3)  # the reload reached the replica's startup process
        world.complete_behind_the_api(profile_id, watched)
        answers: list[int] = []

        def from_the_primary() -> bool:
            status, body = world.recs(profile_id)
            answers.append(status)
            return status == 200 and watched not in item_ids(body)

        wait_until(from_the_primary, seconds=15, interval=0.2, what="reads leaving the lagging replica")
        assert not world.replica_has_completed(profile_id, watched)  # so that answer came from the primary
        assert set(answers) == {200}
    finally:
        world.pair.delay_replica(REPLAY_DELAY)
        world.pair.wait_replica_caught_up(seconds=REPLAY_DELAY + 20)


@pytest.mark.parametrize("fault", ["stopped", "frozen"])
def test_a_replica_down_or_hung_costs_no_error(world, fault):
    profile_id = fresh_profile(world)
    watched = world.top_title(profile_id)
    world.complete_behind_the_api(profile_id, watched)
    (world.pair.stop_replica if fault == "stopped" else world.pair.replica.freeze)()
    try:
        answers = []
        for i in range(20):
            started = time.monotonic()
            status, body = world.recs(world.profile_ids[i % 10] if i % 2 else profile_id)
            answers.append((status, time.monotonic() - started, body if i % 2 == 0 else None))
        assert [status for status, _, _ in answers] == [200] * 20
        assert max(seconds for _, seconds, _ in answers) < API_DEADLINE, answers
        assert all(watched not in item_ids(body) for _, _, body in answers if body)  # the primary's answers
    finally:
        if fault == "stopped":
            world.pair.start_replica()
        else:
            world.pair.replica.thaw()
        world.pair.wait_replica_caught_up(seconds=REPLAY_DELAY + 20)


def test_without_the_pin_store_every_read_goes_to_the_primary(world):
    profile_id = fresh_profile(world)
    watched = world.top_title(profile_id)
    world.complete_behind_the_api(profile_id, watched)  # stale on the replica for REPLAY_DELAY seconds
    world.redis.freeze()
    try:
        status, body = world.recs(profile_id)
        behind = not world.replica_has_completed(profile_id, watched)
    finally:
        world.redis.thaw()
    assert status == 200 and "feature_store_unavailable" in body["degraded"]
    assert watched not in item_ids(body) and behind  # from the primary: pins unknown, nobody reads the replica


def test_a_staff_login_counts_at_once_while_the_replica_is_behind(world):
    cookies = world.staff_login()  # the session row is on the primary only for the next REPLAY_DELAY seconds
    status, location, page = world.browser_request("/staff/", cookies=cookies)

    assert (status, location) == (200, "")
    assert "sessionid" in cookies and "Log in" not in page


def test_a_promoted_replica_that_no_longer_follows_is_skipped(world):
    """Last in this module: the pair has no replica afterwards."""
    world.pair.promote_replica()
    profile_id = fresh_profile(world)
    watched = world.top_title(profile_id)
    world.complete_behind_the_api(profile_id, watched)  # the promoted server will never have it

    def from_the_primary() -> bool:
        status, body = world.recs(profile_id)
        return status == 200 and watched not in item_ids(body)

    wait_until(from_the_primary, seconds=10, interval=0.2, what="reads leaving the promoted replica")
    assert not world.replica_has_completed(profile_id, watched)
    time.sleep(1.5)  # several monitor rounds later, still the primary
    assert from_the_primary()
