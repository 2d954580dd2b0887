#!/usr/bin/env python
"""Issue #15's replica figures on a private primary + streaming replica behind gunicorn (tests/db/replicated.py).

    .venv/bin/python bench/replicas.py --json bench/results/replicas.json      # ~1 min on 2 cores

- read-your-writes: --rounds times (100 by default) a fresh profile's homepage, a completion of its top title
  through POST /api/events, and its homepage again while the replica replays 2 s behind. Figure: the title is
  gone every time (100 of 100), and the replica had not replayed the completion at that moment (so the reads
  that saw it were the primary's).
- latency: sequential GET /api/recs of a profile from the replica, then just after its write (the primary).
- replay lag with no artificial delay, events posted one after another: from each POST's answer until the
  replica has the viewing.
- faults: the replica stopped, then frozen (SIGSTOP): every answer 200, the slowest within the API deadline;
  the replica behind by 60 s: seconds until reads leave it.
Exits 1 if a figure is missed.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from _machine import calibration  # noqa: E402 - bench/, on sys.path as the script's folder

from tests.db.replicated import API_DEADLINE, REPLAY_DELAY, ReplicatedWorld, item_ids, replicated_world  # noqa: E402
from tests.faultkit import percentiles, wait_until  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=100, help="read-your-writes rounds (default 100)")
    parser.add_argument("--json", type=Path, help="write the results here (e.g. bench/results/replicas.json)")
    args = parser.parse_args()
    started = time.monotonic()
    results: dict = {"machine": calibration(), "replay_delay_seconds": REPLAY_DELAY}
    with replicated_world(profiles=2 * args.rounds + 120) as world:
        profiles = iter(world.profile_ids)
        for profile_id in [next(profiles) for _ in range(10)]:  # every worker has its replica monitor running
            world.recs(profile_id)
        time.sleep(1.0)
        results["build_seconds"] = round(time.monotonic() - started, 1)
        results["read_your_writes"] = read_your_writes(world, [next(profiles) for _ in range(args.rounds)])
        results["latency_ms"] = latency(world, [next(profiles) for _ in range(40)])
        results["replay_lag_ms"] = replay_lag(world, [next(profiles) for _ in range(40)])
        results["faults"] = {name: fault(world, name, next(profiles)) for name in ("stopped", "frozen")}
        results["faults"]["lagging"] = lagging(world, next(profiles))
    results["seconds"] = round(time.monotonic() - started, 1)
    missed = report(results, args.rounds)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 1 if missed else 0


def read_your_writes(world: ReplicatedWorld, profile_ids: list[int]) -> dict:
    rounds = [world.ryw_round(profile_id) for profile_id in profile_ids]
    return {
        "rounds": len(rounds),
        "seen": sum(r["seen"] for r in rounds),
        "replica_behind": sum(r["replica_behind"] for r in rounds),
        "posted": sum(r["posted"] for r in rounds),
        "read_after_write_ms": percentiles([r["read_ms"] for r in rounds]),
        "misses": [r for r in rounds if not r["seen"]][:5],
    }


def latency(world: ReplicatedWorld, profile_ids: list[int]) -> dict:
    """Each profile asked once to warm up, then timed from the replica, then, just after a write, from the primary."""
    replica, primary = [], []
    for profile_id in profile_ids:
        watched = world.top_title(profile_id)
        replica.append(_timed_recs(world, profile_id))
        world.complete(profile_id, watched)  # pinned for DATABASE_PIN_SECONDS
        primary.append(_timed_recs(world, profile_id))
    return {"replica": percentiles(replica), "pinned_primary": percentiles(primary)}


def _timed_recs(world: ReplicatedWorld, profile_id: int) -> float:
    started = time.monotonic()
    status, _ = world.recs(profile_id)
    assert status == 200, status
    return (time.monotonic() - started) * 1000


def replay_lag(world: ReplicatedWorld, profile_ids: list[int]) -> dict:
    """From each POST's answer until the replica has its viewing, polled on one open connection every 1 ms."""
    world.pair.delay_replica(0)
    world.pair.wait_replica_caught_up(seconds=REPLAY_DELAY + 20)
    sql = "SELECT EXISTS (SELECT 1 FROM users_viewingevent WHERE profile_id = %s AND title_id = %s AND completed)"
    lags = []
    try:
        with world.pair.replica.connect(world.pair.database) as replica:
            for profile_id in profile_ids:
                watched = world.top_title(profile_id)
                world.complete(profile_id, watched)
                answered = time.monotonic()
                wait_until(
                    lambda p=profile_id, w=watched: replica.execute(sql, [p, w]).fetchone()[0],
                    seconds=10,
                    interval=0.001,
                    what="the replica replaying a posted event",
                )
                lags.append((time.monotonic() - answered) * 1000)
    finally:
        world.pair.delay_replica(REPLAY_DELAY)
    return {**percentiles(lags), "max": round(max(lags), 2), "mean": round(statistics.fmean(lags), 2)}


def fault(world: ReplicatedWorld, name: str, profile_id: int) -> dict:
    watched = world.top_title(profile_id)
    world.complete_behind_the_api(profile_id, watched)
    (world.pair.stop_replica if name == "stopped" else world.pair.replica.freeze)()
    answers = []
    try:
        for i in range(40):
            started = time.monotonic()
            status, body = world.recs(world.profile_ids[i % 10] if i % 2 else profile_id)
            fresh = None if i % 2 else status == 200 and watched not in item_ids(body)
            answers.append((status, (time.monotonic() - started) * 1000, fresh))
    finally:
        world.pair.start_replica() if name == "stopped" else world.pair.replica.thaw()
        world.pair.wait_replica_caught_up(seconds=REPLAY_DELAY + 20)
    return {
        "requests": len(answers),
        "ok": sum(status == 200 for status, _, _ in answers),
        "from_primary": sum(bool(fresh) for _, _, fresh in answers if fresh is not None),
        "first_ms": round(answers[0][1], 2),
        "max_ms": round(max(ms for _, ms, _ in answers), 2),
        "latency_ms": percentiles([ms for _, ms, _ in answers]),
    }


def lagging(world: ReplicatedWorld, profile_id: int) -> dict:
    watched = world.top_title(profile_id)
    world.pair.delay_replica(60)
    try:
        time.sleep(0.3)
        world.complete_behind_the_api(profile_id, watched)
        written = time.monotonic()
        statuses = []

        def left_the_replica() -> bool:
            status, body = world.recs(profile_id)
            statuses.append(status)
            return status == 200 and watched not in item_ids(body)

        wait_until(left_the_replica, seconds=20, interval=0.1, what="reads leaving the lagging replica")
        return {
            "seconds_to_primary": round(time.monotonic() - written, 2),
            "requests": len(statuses),
            "ok": statuses.count(200),
            "replica_behind": not world.replica_has_completed(profile_id, watched),
        }
    finally:
        world.pair.delay_replica(REPLAY_DELAY)
        world.pair.wait_replica_caught_up(seconds=REPLAY_DELAY + 20)


def report(results: dict, rounds: int) -> list[str]:
    ryw, faults = results["read_your_writes"], results["faults"]
    print(f"machine: {results['machine']}")
    print(
        f"read-your-writes: {ryw['seen']} of {ryw['rounds']} (replica behind in {ryw['replica_behind']}), "
        f"read after write {ryw['read_after_write_ms']} ms"
    )
    print(f"latency ms: replica {results['latency_ms']['replica']}, pinned {results['latency_ms']['pinned_primary']}")
    print(f"replay lag ms (no delay, events back to back): {results['replay_lag_ms']}")
    for name, figures in faults.items():
        print(f"replica {name}: {figures}")
    missed = []
    if ryw["seen"] != rounds or ryw["replica_behind"] != rounds:
        missed.append("read-your-writes")
    for name in ("stopped", "frozen"):
        figures = faults[name]
        if (
            figures["ok"] != figures["requests"]
            or figures["max_ms"] >= API_DEADLINE * 1000
            or figures["from_primary"] != 20
        ):
            missed.append(f"replica {name}")
    if faults["lagging"]["ok"] != faults["lagging"]["requests"] or not faults["lagging"]["replica_behind"]:
        missed.append("replica lagging")
    print(f"{results['seconds']} s; missed: {', '.join(missed) or 'none'}")
    return missed


if __name__ == "__main__":
    sys.exit(main())
