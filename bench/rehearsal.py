#!/usr/bin/env python
"""Issue #15's rehearsal: Reco as a multi-host deployment on this one machine, with one fault at a time.

    .venv/bin/python bench/rehearsal.py --json bench/results/rehearsal.json       # the full rehearsal, ~6 min
    .venv/bin/python bench/rehearsal.py --quick                                   # the CI-sized form, ~3 min
    .venv/bin/python bench/rehearsal.py --cleanup                                 # remove a killed run's leftovers

Needs root (it makes network namespaces) and the Debian packages haproxy, redis-server, rabbitmq-server and
PostgreSQL 15 (.ci/rehearsal.sh installs haproxy). tests/hostkit.py builds the deployment, the same code
tests/rehearsal/test_multi_host.py runs: network namespaces `rh5-*` on a bridge (10.231.55.0/24), haproxy in
front of two gunicorn web hosts (production settings), a Redis Cluster of 3 masters + 3 replicas over three
hosts, a PostgreSQL primary and its streaming replica, a private RabbitMQ, two Celery worker hosts and a beat.
It loads a synthetic world (generate_synthetic --titles/--accounts/--events), trains popularity, MF and
content, refreshes the features through the workers (the sharded refresh) and serves open-loop load through
the balancer over the world's profiles:

- baseline: --baseline-seconds at 100 requests/s. Figures: p99 < 50 ms, 0 errors, the replica returned rows,
  every master holds keys;
- ceiling: --ceiling-seconds at each of --ceiling-rates in turn, stopping at the first with p99 >= 50 ms or a
  non-200: the highest that held (every node shares the 2 cores, the load generator too);
- faults at --rate requests/s (default 80 % of the ceiling), one at a time, each --before s into a run, lasting --seconds s, then
  --after s: web-host-down (every process of web1 SIGKILLed, started again afterwards), redis-master-killed
  (SIGKILL of one master: its replica takes over), pg-replica-stopped (pg_ctl stop -m immediate, started
  again after --seconds), worker-killed-mid-refresh (every process of worker1 SIGKILLed while it runs a shard
  of a full refresh). Figures: 0 responses >= 500 in every fault; the web host: errors (>= 500 and no
  response) no more than the requests in flight at the kill; the Redis master: full answers within 15 s; the
  worker: the refresh finishes, every shard counted once, the killed attempts LOST.

Printed per part: p50/p99 (ms, from each request's scheduled send), errors, degraded share, seconds to
recover; with the machine calibration (bench/_machine.py). Every wait is bounded and everything it started
goes at exit (also on Ctrl-C). Exits 1 if any figure is missed.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from _machine import calibration  # noqa: E402 - bench/, on sys.path as the script's folder

from tests import hostkit  # noqa: E402


def _progress(line: str) -> None:
    print(line, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--cleanup",
        action="store_true",
        help=f"remove the namespaces, link and directories of a killed run ({hostkit.PREFIX}-*) and exit",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"the CI-sized form: the small world, short faults, everything at {hostkit.CI_RATE:g}/s, no ceiling",
    )
    parser.add_argument("--titles", type=int, default=1_000)
    parser.add_argument("--accounts", type=int, default=4_000, help="about 2.5 profiles each")
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--shard-size", type=int, default=200, help="profiles per shard of the full refresh")
    parser.add_argument("--web-workers", type=int, default=2, help="gunicorn workers per web host")
    parser.add_argument(
        "--cache",
        action="store_true",
        help="leave the response cache on (off by default, as bench/http_load.py: every request runs the engine)",
    )
    parser.add_argument(
        "--faults",
        nargs="+",
        choices=list(hostkit.FAULTS),
        default=list(hostkit.FAULTS),
        metavar="NAME",
        help=f"any of {' '.join(hostkit.FAULTS)} (default all)",
    )
    parser.add_argument(
        "--rate",
        type=float,
        help="requests/s during the faults (default 80 %% of the ceiling "
        "measured, so that each fault is measured rather than an overload)",
    )
    parser.add_argument("--baseline-seconds", type=float, default=30.0)
    parser.add_argument("--baseline-rate", type=float, default=hostkit.BASELINE_RATE)
    parser.add_argument("--before", type=float, default=5.0)
    parser.add_argument("--seconds", type=float, default=20.0, help="how long each fault lasts")
    parser.add_argument("--after", type=float, default=10.0)
    parser.add_argument("--ceiling-rates", type=float, nargs="*", default=[25, 50, 75, 100, 150, 200, 300])
    parser.add_argument("--ceiling-seconds", type=float, default=10.0)
    parser.add_argument("--json", type=Path, help="write the results here (e.g. bench/results/rehearsal.json)")
    parser.add_argument("--keep-logs", type=Path, help="copy every process's log (haproxy's: failed requests) here")
    args = parser.parse_args()

    if args.cleanup:
        removed = hostkit.cleanup_leftovers()
        print("\n".join(removed) if removed else "nothing left over")
        return
    permitted, why = hostkit.netns_permitted()
    if not permitted:
        sys.exit(f"rehearsal: {why}")
    if args.quick:
        world = hostkit.World(response_cache=args.cache)
        timing = hostkit.Timing()
        args.baseline_seconds, args.ceiling_rates, args.rate, args.baseline_rate = (
            10.0,
            [],
            hostkit.CI_RATE,
            hostkit.CI_RATE,
        )
    else:
        world = hostkit.World(
            titles=args.titles,
            accounts=args.accounts,
            events=args.events,
            shard_size=args.shard_size,
            web_workers=args.web_workers,
            response_cache=args.cache,
        )
        timing = hostkit.Timing(args.before, args.seconds, args.after)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # runs the context's cleanup like Ctrl-C does
    signal.signal(signal.SIGINT, signal.default_int_handler)  # also when started in the background (ignored there)

    print("machine calibration ...", flush=True)
    results: dict = {
        "machine": calibration(),
        "world": vars(world),
        "timing": vars(timing),
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "arguments": {k: str(v) for k, v in vars(args).items()},
    }
    print(f"  {results['machine']}", flush=True)
    with hostkit.deployment(world, progress=_progress, keep_logs=args.keep_logs) as deployment:
        results.update(
            hostkit.rehearse(
                deployment,
                faults=args.faults,
                timing=timing,
                rate=args.rate,
                baseline_seconds=args.baseline_seconds,
                baseline_rate=args.baseline_rate,
                ceiling_rates=args.ceiling_rates,
                ceiling_seconds=args.ceiling_seconds,
                progress=_progress,
            )
        )
    missed = _report(results)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2, default=str) + "\n")
        print(f"wrote {args.json}")
    sys.exit(1 if missed else 0)


def _report(results: dict) -> list[str]:
    print(f"\nmachine calibration: {results['machine']}")
    if "ceiling" in results:
        print(f"ceiling (p99 < {hostkit.P99_MS:g} ms, no errors): {results['ceiling']['ceiling_rps']} requests/s")
    print(f"{'part':28} {'p50':>8} {'p99':>8} {'reqs':>6} {'>=500':>6} {'no resp':>7} {'degraded':>9} {'recover s':>9}")
    parts = {"baseline": results["baseline"], **results["faults"]}
    for name, f in parts.items():
        recover = f.get("seconds_to_full", f.get("seconds_to_finish_after_kill", "-"))
        if name == "web-host-down":
            recover = f.get("marked_down_after_s")
        print(
            f"{name:28} {f['p50_ms']!s:>8} {f['p99_ms']!s:>8} {f['requests']:>6} {f['server_errors']:>6} "
            f"{f['no_response']:>7} {f['degraded_share']!s:>9} {recover!s:>9}"
        )
    missed = []
    for check in results["checks"]:
        print(f"  [{'ok' if check['met'] else 'MISSED'}] {check['figure']}")
        if not check["met"]:
            missed.append(check["figure"])
    return missed


if __name__ == "__main__":
    main()
