#!/usr/bin/env python
"""Issue #14's reliability figures: every fault scenario in full against the web tier as the README serves it.

    .venv/bin/python bench/reliability.py --json bench/results/reliability.json      # every scenario, ~20 min
    .venv/bin/python bench/reliability.py --world small --seconds 3 --recovery-seconds 5 \\
        --schemathesis-cases 500                                                       # a quick proof, ~3 min
    .venv/bin/python bench/reliability.py --soak --json bench/results/reliability_soak.json   # 30 min at 50/s
    .venv/bin/python bench/reliability.py --soak --soak-minutes 4 --soak-chunk-seconds 20     # a short soak

It starts everything it breaks itself (tests/faultkit.py), on 127.0.0.1 only: a redis-server for the caches and
online features, a second one as the Celery broker, a TCP proxy in front of PostgreSQL that the web tier
reaches the database through, `gunicorn -c config/gunicorn.py config.wsgi` (production settings) and a Celery
worker with an embedded beat that runs only the "Redis came back empty" check (the other schedules would
compete for the cores mid-measurement). The world lives in a database of its own (reco_reliability_<world>,
created and built on first use): `--world demo` is `demo_setup`'s (3,000 titles, ~2,500 profiles, 150K
viewings, five models), `--world small` the tests' (600 titles, ~700 profiles, popularity/MF/content).

Scenarios (open-loop load at --rate requests/s over the world's profiles; --before s, the fault for --seconds s,
then up to --recovery-seconds s):
- redis-freeze, redis-kill: SIGSTOP / SIGKILL of the feature Redis (killed: restarted empty, the worker's
  beat finds it empty and refreshes). Figures: every answer 200, none unflagged during the fault, p99 <= 100 ms
  during it, full answers within 60 s of its return.
- db-freeze, db-kill: the proxy stops moving bytes / closes everything and refuses. Figures: every non-200 a
  JSON 503 with Retry-After, every answer within 1 s, no gunicorn WORKER TIMEOUT, full within 1 s of return.
- artifact-truncate, artifact-flip: `truncate -s 1024` / 64 KiB XORed in the middle of the active MF
  item_factors.npy, held until every process shows it (at most 60 s), then restored. Figures: 0 failed
  requests, shown within 60 s, healed within 60 s of the restore, top-5 lists unchanged.
- schemathesis: every operation, every check, rounds of fresh seeds until >= --schemathesis-cases cases.
  Figures: no 5xx, no failure of any check.
Printed per scenario: p50/p95/p99 (ms, from each request's scheduled send, so queueing counts), throughput,
non-200 and >= 500 counts, time to recover, worker RSS; with the machine calibration (bench/_machine.py).
--soak: --soak-minutes at --soak-rate, with the product's feature refreshes on their schedules (title features and
recently active profiles every 5 min, every profile hourly: the steady state, where title features otherwise expire
after 5 min), p99 and worker RSS per --soak-chunk-seconds; figures: p99 of the last
5 minutes within 20 % of the first 5, worker RSS growth under 5 % (windows shrink for a shorter soak).
Exits 1 if any figure is missed.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import secrets
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from _machine import calibration  # noqa: E402 - bench/, on sys.path as the script's folder

from tests.faultkit import (  # noqa: E402
    GunicornServer,
    LoadResult,
    RedisServer,
    RequestRecord,
    TcpProxy,
    celery_worker,
    gunicorn_server,
    load,
    recovered_at,
    redis_server,
    request,
    schemathesis_run,
    summarize,
    tcp_proxy,
    wait_until,
)

# redis-kill last of the load scenarios: what it leaves behind while the features are rebuilt (degraded answers
# in the response cache) would otherwise be measured by the scenarios after it.
SCENARIOS = ["redis-freeze", "db-freeze", "db-kill", "artifact-truncate", "artifact-flip", "redis-kill", "schemathesis"]
REDIS_P99_MS, REDIS_RECOVER_S = 100.0, 60.0
DB_ANSWER_MS, DB_RECOVER_S = 1000.0, 1.0
ARTIFACT_SHOWN_S, ARTIFACT_HEALED_S = 60.0, 60.0
SOAK_P99_DRIFT, SOAK_RSS_GROWTH = 0.20, 0.05
FLIP_BYTES = 64 * 1024
WORLD_FLAGS = {"demo": set(), "small": {"no_ranker"}}  # the small world trains no ranker


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--world", choices=["demo", "small"], default="demo")
    parser.add_argument("--database-url", help="default postgres://reco:reco@127.0.0.1:5432/reco_reliability_<world>")
    parser.add_argument("--artifact-dir", help="default /tmp/reco-reliability-<world>/artifacts")
    parser.add_argument(
        "--scenarios",
        nargs="+",
        choices=SCENARIOS,
        default=SCENARIOS,
        metavar="NAME",
        help=f"any of {' '.join(SCENARIOS)} (default all)",
    )
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (WEB_CONCURRENCY)")
    parser.add_argument("--rate", type=float, default=20.0, help="requests/s during the fault scenarios")
    parser.add_argument("--before", type=float, default=5.0, help="seconds of load before each fault")
    parser.add_argument("--seconds", type=float, default=30.0, help="seconds each fault lasts")
    parser.add_argument(
        "--recovery-seconds",
        type=float,
        default=70.0,
        help="seconds of load after a fault is lifted (Redis: enough to see the 60 s figure)",
    )
    parser.add_argument("--schemathesis-cases", type=int, default=10_000)
    parser.add_argument("--soak", action="store_true", help="run the soak instead of the scenarios")
    parser.add_argument("--soak-minutes", type=float, default=30.0)
    parser.add_argument("--soak-rate", type=float, default=50.0)
    parser.add_argument("--soak-chunk-seconds", type=float, default=60.0, help="one p99 / RSS sample per chunk")
    parser.add_argument("--json", type=Path, help="write the results here (e.g. bench/results/reliability.json)")
    args = parser.parse_args()
    args.database_url = args.database_url or f"postgres://reco:reco@127.0.0.1:5432/reco_reliability_{args.world}"
    args.artifact_dir = Path(args.artifact_dir or f"/tmp/reco-reliability-{args.world}/artifacts")

    print("machine calibration ...", flush=True)
    results: dict = {
        "machine": calibration(),
        "world": args.world,
        "rate": args.rate,
        "fault_seconds": args.seconds,
        "workers": args.workers,
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "arguments": {k: str(v) for k, v in vars(args).items()},
        "shortened": sys.argv[1:] != []
        and any(
            a.startswith(("--seconds", "--recovery", "--schemathesis-cases", "--soak-minutes", "--before"))
            for a in sys.argv[1:]
        ),
    }
    print(f"  {results['machine']}", flush=True)
    database = urlsplit(args.database_url)
    with (
        redis_server() as redis,
        redis_server() as broker,
        tcp_proxy(database.hostname, database.port or 5432) as proxy,
    ):
        world = _world_prepare(args, redis)
        print(
            f"world {args.world}: {len(world.profile_ids)} profiles with history; starting the worker and gunicorn",
            flush=True,
        )
        proxied = database._replace(netloc=f"{database.username}:{database.password}@127.0.0.1:{proxy.port}").geturl()
        env = _env(args, redis_url=redis.url, broker_url=broker.url)
        with (
            celery_worker({**env, "DATABASE_URL": args.database_url}, beat=True) as worker,
            gunicorn_server({**env, "DATABASE_URL": proxied}, workers=args.workers, keep_log=True) as server,
        ):
            context = Context(args, world, server, redis, proxy, worker_log=worker.log_text)
            _warm_up(context)
            if args.soak:
                results["soak"] = soak(context)
            else:
                results["scenarios"] = {}
                for name in args.scenarios:
                    print(f"\n== {name}", flush=True)
                    results["scenarios"][name] = figures = RUNNERS[name](context)
                    figures["settled_after_s"] = _settle(context)  # the next scenario starts from full answers
                    figures["feature_redis_keys"] = _redis_keys(redis)
                    _print_scenario(name, figures)
            results["gunicorn_log"] = str(server.log_path)
    missed = _report(results)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2, default=str) + "\n")
        print(f"wrote {args.json}")
    sys.exit(1 if missed else 0)


# --- the world and the processes ----------------------------------------------------------------------
@dataclass
class World:
    api_key: str
    profile_ids: list[int]
    flags: set[str]  # what a full answer of this world still says (the small world has no ranker)


@dataclass
class Context:
    args: argparse.Namespace
    world: World
    server: GunicornServer
    redis: RedisServer
    proxy: TcpProxy
    worker_log: Callable[[], str]

    def url(self) -> Callable[[int], str]:
        cycle = itertools.cycle(self.world.profile_ids)
        return lambda i: f"{self.server.url}/api/recs?profile_id={next(cycle)}&n=10"

    @property
    def headers(self) -> dict[str, str]:
        return {"X-Api-Key": self.world.api_key}

    def full(self, record: RequestRecord) -> bool:
        return record.status == 200 and set(record.flags) <= self.world.flags


SECRET_KEY = secrets.token_urlsafe(48)


def _env(args: argparse.Namespace, *, redis_url: str, broker_url: str) -> dict[str, str]:
    return {
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        "SECRET_KEY": SECRET_KEY,
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SECURE_SSL_REDIRECT": "0",
        "REDIS_URL": redis_url,
        "CELERY_BROKER_URL": broker_url,
        "CELERY_RESULT_BACKEND": broker_url,
        "RECO_ARTIFACT_DIR": str(args.artifact_dir),
        "RECO_SERVING_CACHE_DIR": str(args.artifact_dir.parent / "serving-cache"),
        "LOG_LEVEL": "INFO",
    }


def _world_prepare(args: argparse.Namespace, redis: RedisServer) -> World:
    """Create and build the world's database on first use; features into this run's Redis; a fresh API key;
    the beat's schedules reduced to the empty-store check."""
    _database_create(args.database_url)
    os.environ.update(_env(args, redis_url=redis.url, broker_url="memory://"))
    os.environ["DATABASE_URL"] = args.database_url
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connections
    from django_celery_beat.models import PeriodicTask

    from catalog.models import Title
    from events.models import Event
    from features import selectors as feature_selectors
    from features import services as feature_services
    from recommendations.models import ApiClient, ModelVersion
    from users.models import ViewingEvent

    call_command("migrate", verbosity=0)
    if not Title.objects.exists():
        print(f"building the {args.world} world in {urlsplit(args.database_url).path[1:]} (once) ...", flush=True)
        if args.world == "demo":
            call_command("demo_setup", verbosity=1)
        else:
            from recommendations.models import ModelKind
            from recommendations.training.jobs import model_train

            call_command(
                "generate_synthetic",
                "--titles",
                "600",
                "--accounts",
                "300",
                "--events",
                "30000",
                "--seed",
                "5",
                "--ground-truth-dir",
                str(args.artifact_dir.parent / "truth"),
                verbosity=1,
            )
            for kind in (ModelKind.POPULARITY, ModelKind.MATRIX_FACTORIZATION, ModelKind.CONTENT):
                model_train(kind=kind, activation="always")
    active = set(ModelVersion.objects.filter(status=ModelVersion.Status.ACTIVE).values_list("kind", flat=True))
    if not {"popularity", "mf", "content"} <= active:
        raise SystemExit(f"the world has no active popularity, MF and content models (active: {sorted(active)})")
    low, high = feature_selectors.profile_id_bounds()
    feature_services.user_features_refresh(profile_id_start=low, profile_id_end=high + 1)
    feature_services.content_features_refresh()
    feature_services.online_store_rebuild_claim()  # populated: the beat's check has nothing to rebuild at start
    Event.objects.filter(client__name="bench-reliability").delete()  # a previous run's (PROTECT on the client)
    ApiClient.objects.filter(name="bench-reliability").delete()
    _, key = ApiClient.issue("bench-reliability", rate="100000000/min")
    call_command("sync_schedules", verbosity=0)
    # The fault scenarios run only the empty-store check (other jobs would compete for the cores mid-fault); a soak
    # is the steady state, so it also runs the feature refreshes the product schedules (title features live 5 min).
    kept = {"tasks.features.ensure_online_features"} | (SOAK_SCHEDULES if args.soak else set())
    PeriodicTask.objects.exclude(task__in=kept).update(enabled=False)
    PeriodicTask.objects.filter(task__in=kept).update(enabled=True)
    profiles = sorted(set(ViewingEvent.objects.values_list("profile_id", flat=True).distinct()[:5000]))
    flags = WORLD_FLAGS["small"] if "ranker" not in active else set()
    connections.close_all()
    return World(key, profiles, flags)


def _database_create(url: str) -> None:
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin = parts._replace(path="/postgres").geturl().replace("postgres://", "postgresql://", 1)
    with psycopg.connect(admin, autocommit=True, connect_timeout=5) as connection:
        if not connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            connection.execute(f'CREATE DATABASE "{name}"')


def _warm_up(context: Context) -> None:
    """Every worker touches the models and catalog before anything is measured; the answers must be full."""
    run = load(context.url(), context.args.rate, 5.0, context.headers)
    not_full = [r for r in run.records if not context.full(r)]
    if not_full:
        raise SystemExit(f"the world does not serve full answers before any fault: {not_full[:3]}")
    print(f"warm-up: {summarize(run.records, run.seconds)}", flush=True)


def _settle(context: Context, seconds: float = 120.0) -> float | None:
    """Seconds until 20 answers in a row are full again (e.g. the beat rebuilding an emptied Redis), or None."""
    started, streak = time.monotonic(), 0
    url = context.url()
    for i in itertools.count():
        if streak >= 20:
            return round(time.monotonic() - started, 1)
        if time.monotonic() - started > seconds:
            print(f"  not settled: answers still not full after {seconds:.0f} s", flush=True)
            return None
        try:
            status, _, body = request(url(i), headers=context.headers)
            flags = set(json.loads(body).get("degraded", ())) if status == 200 else {"error"}
        except (OSError, ValueError):
            status, flags = 0, {"error"}
        streak = streak + 1 if status == 200 and flags <= context.world.flags else 0
        time.sleep(0.05)
    return None


def _full_share_per_second(context: Context, run: LoadResult) -> list[float]:
    """For each second of the run, the share of the requests sent in it that got a full answer."""
    shares = []
    for second in range(math.ceil(run.seconds)):
        sent = run.between(second, second + 1)
        shares.append(round(sum(context.full(r) for r in sent) / len(sent), 2) if sent else None)
    return shares


def _redis_keys(redis: RedisServer) -> int | None:
    import redis as redis_client

    try:
        return int(redis_client.Redis.from_url(redis.url, socket_timeout=2).dbsize())
    except redis_client.RedisError:
        return None


def _flag_counts(records: list[RequestRecord]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for record in records:
        for flag in record.flags or (("full",) if record.status == 200 else (f"status:{record.status}",)):
            counts[flag] = counts.get(flag, 0) + 1
    return dict(sorted(counts.items()))


# --- fault scenarios ------------------------------------------------------------------------------------
def _fault_run(context: Context, inject: Callable[[], object], lift: Callable[[], object], after: float) -> LoadResult:
    args = context.args
    total = args.before + args.seconds + after
    print(
        f"  {total:.0f} s at {args.rate:g}/s: the fault from {args.before:g} s to {args.before + args.seconds:g} s",
        flush=True,
    )
    return load(
        context.url(),
        args.rate,
        total,
        context.headers,
        actions=[(args.before, "inject", inject), (args.before + args.seconds, "lift", lift)],
    )


def _figures(context: Context, run: LoadResult, timeouts_before: int) -> dict:
    start, end = run.actions["inject"], run.actions_started["lift"]
    recovered = recovered_at(run.records, after=end, good=context.full)
    return {
        "whole_run": run.summary(),
        "during_fault": run.summary(start, end),
        "after_fault": run.summary(end, run.seconds),
        "flags_during_fault": _flag_counts(run.between(start, end)),
        "flags_after_fault": _flag_counts(run.between(end, run.seconds)),
        "full_share_per_second": _full_share_per_second(context, run),
        "time_to_recover_s": None if recovered is None else round(recovered - end, 2),
        "worker_timeouts": context.server.worker_timeouts() - timeouts_before,
        "worker_rss_mib": context.server.worker_rss_mib(),
        "fault_window_s": [round(start, 2), round(end, 2)],
    }


def scenario_redis(context: Context, *, kill: bool) -> dict:
    redis = context.redis
    inject, lift = (redis.kill, redis.restart) if kill else (redis.freeze, redis.thaw)
    timeouts = context.server.worker_timeouts()
    run = _fault_run(context, inject, lift, context.args.recovery_seconds)
    figures = _figures(context, run, timeouts)
    start, end = figures["fault_window_s"]
    unflagged = [r for r in run.within(start, end) if context.full(r)]
    figures["unflagged_during_fault"] = len(unflagged)
    figures["checks"] = {
        "every answer 200": figures["whole_run"]["non_200"] == 0,
        "every answer during the fault flagged": not unflagged,
        f"p99 during the fault <= {REDIS_P99_MS:.0f} ms": (figures["during_fault"]["p99_ms"] or 0) <= REDIS_P99_MS,
        f"full answers within {REDIS_RECOVER_S:.0f} s of its return": figures["time_to_recover_s"] is not None
        and figures["time_to_recover_s"] <= REDIS_RECOVER_S,
    }
    return figures


def _json_503(record: RequestRecord) -> bool:
    return (
        record.status == 503
        and record.content_type.startswith("application/json")
        and bool(record.flags)
        and record.flags[0].startswith("code:")
        and (record.retry_after or "").isdigit()
    )


def scenario_database(context: Context, *, kill: bool) -> dict:
    proxy = context.proxy
    inject, lift = (proxy.kill, proxy.revive) if kill else (proxy.freeze, proxy.thaw)
    timeouts = context.server.worker_timeouts()
    run = _fault_run(context, inject, lift, min(context.args.recovery_seconds, 10.0))
    figures = _figures(context, run, timeouts)
    during = run.between(*figures["fault_window_s"])
    figures["not_json_503_during_fault"] = sum(not (r.status == 200 or _json_503(r)) for r in during)
    figures["over_1s_during_fault"] = sum(r.latency_ms > DB_ANSWER_MS for r in during)
    figures["checks"] = {
        "every failure a JSON 503 with Retry-After": figures["not_json_503_during_fault"] == 0,
        "503s seen": any(r.status == 503 for r in during),
        f"every answer within {DB_ANSWER_MS / 1000:.0f} s": figures["over_1s_during_fault"] == 0,
        "no 5xx but 503": not [r for r in run.records if r.status >= 500 and r.status != 503],
        "no worker timeouts": figures["worker_timeouts"] == 0,
        f"full answers within {DB_RECOVER_S:.0f} s of its return": figures["time_to_recover_s"] is not None
        and figures["time_to_recover_s"] <= DB_RECOVER_S,
    }
    return figures


def _active_mf_file(context: Context) -> tuple[Path, str]:
    from recommendations.ml.matrix_factorization import ITEM_FACTORS_FILE
    from recommendations.models import ModelKind, ModelVersion

    mf = ModelVersion.objects.get(kind=ModelKind.MATRIX_FACTORIZATION, status=ModelVersion.Status.ACTIVE)
    return context.args.artifact_dir / mf.artifact_path / ITEM_FACTORS_FILE, mf.checksum


def _statuses(context: Context) -> list[dict]:
    """The statuses this gunicorn's master and workers publish (recommendations/serving/process_status.py)."""
    try:
        from recommendations.serving.process_status import serving_processes
    except ImportError:
        return []
    master = context.server.process.pid
    return [s for s in serving_processes() if master in (s.get("pid"), s.get("ppid"))]


def _top5(context: Context, profiles: list[int]) -> list[list[int]]:
    tops = []
    for profile_id in profiles:
        status, _, body = request(f"{context.server.url}/api/recs?profile_id={profile_id}&n=5", headers=context.headers)
        tops.append([item["content_id"] for item in json.loads(body)["items"]] if status == 200 else [])
    return tops


def scenario_artifact(context: Context, *, flip: bool) -> dict:
    """The active MF factors damaged on disk under load, held until every process shows it, then restored."""
    args = context.args
    path, checksum = _active_mf_file(context)
    original = path.read_bytes()
    sample = context.world.profile_ids[:10]
    before_top5 = _top5(context, sample)
    stop = threading.Event()
    outcome: dict = {}
    loader = threading.Thread(
        target=lambda: outcome.setdefault(
            "run",
            load(
                context.url(),
                args.rate,
                args.before + 2 * ARTIFACT_SHOWN_S + ARTIFACT_HEALED_S + 30,
                context.headers,
                stop=stop,
            ),
        ),
        daemon=True,
    )
    log_before = len(context.server.log_text())
    loader.start()
    time.sleep(args.before)
    damaged_at = time.monotonic()
    if flip:
        middle = len(original) // 2
        damaged = bytearray(original)
        damaged[middle : middle + FLIP_BYTES] = bytes(b ^ 0xFF for b in original[middle : middle + FLIP_BYTES])
        path.write_bytes(bytes(damaged))
    else:
        os.truncate(path, 1024)
    print(f"  {'flipped 64 KiB of' if flip else 'truncated'} {path}", flush=True)
    try:
        shown_s = _wait_seconds(lambda: _everyone_shows(context, path), ARTIFACT_SHOWN_S)
        time.sleep(max(0.0, args.seconds - (time.monotonic() - damaged_at)))
        during_top5 = _top5(context, sample)
        served = {m["kind"]: m.get("checksum") for s in _statuses(context) for m in s.get("models", [])}
    finally:
        path.write_bytes(original)
    restored_at = time.monotonic()
    print("  restored", flush=True)
    healed_s = _wait_seconds(
        lambda: bool(_statuses(context)) and all(not s.get("problems") for s in _statuses(context)), ARTIFACT_HEALED_S
    )
    time.sleep(min(args.recovery_seconds, 5.0))
    stop.set()
    loader.join(timeout=60)
    run: LoadResult = outcome["run"]
    log = context.server.log_text()[log_before:]
    fault_end = args.before + (restored_at - damaged_at)
    figures = {
        "file": str(path),
        "whole_run": run.summary(),
        "during_fault": run.summary(args.before, fault_end),
        "failed_requests": sum(r.status != 200 for r in run.records),
        "shown_within_s": shown_s,
        "healed_within_s": healed_s,
        "logged": str(path) in log or "artifact store file" in log,
        "top5_changed_of_10": sum(a != b for a, b in zip(before_top5, during_top5, strict=True)),
        "served_checksum_is_the_verified_one": served.get("mf") == checksum,
        "worker_rss_mib": context.server.worker_rss_mib(),
    }
    figures["checks"] = {
        "0 failed requests": figures["failed_requests"] == 0,
        f"shown within {ARTIFACT_SHOWN_S:.0f} s": shown_s is not None,
        "logged": figures["logged"],
        f"healed within {ARTIFACT_HEALED_S:.0f} s of the restore": healed_s is not None,
        "top-5 lists unchanged": figures["top5_changed_of_10"] == 0,
    }
    return figures


def _everyone_shows(context: Context, path: Path) -> bool:
    statuses = _statuses(context)
    return len(statuses) > context.args.workers and all(
        any(problem.get("file") == str(path) for problem in s.get("problems", [])) for s in statuses
    )


def _wait_seconds(condition: Callable[[], bool], seconds: float) -> float | None:
    started = time.monotonic()
    try:
        wait_until(condition, seconds=seconds, interval=0.25)
    except TimeoutError:
        return None
    return round(time.monotonic() - started, 1)


def scenario_schemathesis(context: Context) -> dict:
    """Rounds of fresh seeds until the case budget is spent (each round: every operation, every check)."""
    target, cases, rounds, failures, errors = context.args.schemathesis_cases, 0, [], {}, []
    failure_output: list[str] = []
    log_before = len(context.server.log_text())
    for seed in range(1, 21):  # bounded: 20 rounds at most
        if cases >= target:
            break
        per_operation = max(20, min(5000, math.ceil((target - cases) / 3)))
        print(f"  round {seed}: {per_operation} cases per operation ({cases} of {target} so far)", flush=True)
        result = schemathesis_run(
            context.server.url,
            api_key=context.world.api_key,
            max_examples=per_operation,
            seed=seed,
            timeout=3600,
            report_dir=Path(context.server.log_path).parent / f"schemathesis-{context.server.port}",
        )
        cases += result.cases
        rounds.append({"seed": seed, "cases": result.cases, "seconds": result.seconds, "exit_code": result.exit_code})
        for name, failure in result.failures.items():
            merged = failures.setdefault(name, {"count": 0, "operations": set()})
            merged["count"] += failure["count"]
            merged["operations"].update(failure["operations"])
        errors += result.errors
        if result.failures:  # what schemathesis printed about them: the failing requests, with curl to replay
            failure_output.append(result.output_tail[max(0, result.output_tail.find("FAILURES")) :][:8000])
        if result.cases == 0:
            print(result.output_tail, flush=True)
            break
    log = context.server.log_text()[log_before:]
    figures = {
        "cases": cases,
        "rounds": rounds,
        "errors": errors[:20],
        "failures": {
            name: {"count": f["count"], "operations": sorted(f["operations"])} for name, f in failures.items()
        },
        "server_errors": sum(f["count"] for name, f in failures.items() if "server error" in name.lower()),
        "internal_server_errors_logged": log.count("Internal Server Error"),
        "failure_output": failure_output,
    }
    figures["checks"] = {
        f">= {target} cases": cases >= target,
        "no 5xx": figures["server_errors"] == 0 and figures["internal_server_errors_logged"] == 0,
        "no failure of any check": not failures and not errors,
    }
    return figures


SOAK_SCHEDULES = {
    "tasks.features.refresh_content_features",
    "tasks.features.refresh_recent_user_features",
    "tasks.features.refresh_user_features",
}

RUNNERS: dict[str, Callable[[Context], dict]] = {
    "redis-freeze": lambda c: scenario_redis(c, kill=False),
    "redis-kill": lambda c: scenario_redis(c, kill=True),
    "db-freeze": lambda c: scenario_database(c, kill=False),
    "db-kill": lambda c: scenario_database(c, kill=True),
    "artifact-truncate": lambda c: scenario_artifact(c, flip=False),
    "artifact-flip": lambda c: scenario_artifact(c, flip=True),
    "schemathesis": scenario_schemathesis,
}


# --- soak -----------------------------------------------------------------------------------------------
def soak(context: Context) -> dict:
    args = context.args
    chunks = max(2, math.ceil(args.soak_minutes * 60 / args.soak_chunk_seconds))
    window = max(1, min(math.ceil(300 / args.soak_chunk_seconds), chunks // 2))  # 5 minutes, or half a short soak
    print(
        f"soak: {chunks} x {args.soak_chunk_seconds:g} s at {args.soak_rate:g}/s; first/last {window} chunks compared",
        flush=True,
    )
    samples, records = [], []
    for index in range(chunks):
        run = load(context.url(), args.soak_rate, args.soak_chunk_seconds, context.headers)
        records.append(run.records)
        rss = context.server.worker_rss_mib()
        sample = {
            "minute": round((index + 1) * args.soak_chunk_seconds / 60, 2),
            **run.summary(),
            "worker_rss_mib": rss,
            "worker_rss_total_mib": round(sum(rss.values()), 1),
        }
        samples.append(sample)
        print(
            f"  {sample['minute']:6.2f} min  p50 {sample['p50_ms']} p99 {sample['p99_ms']} ms  "
            f"non-200 {sample['non_200']}  worker RSS {sample['worker_rss_total_mib']} MiB {sorted(rss.values())}",
            flush=True,
        )
    first = summarize([r for chunk in records[:window] for r in chunk])
    last = summarize([r for chunk in records[-window:] for r in chunk])
    rss_first, rss_last = samples[0]["worker_rss_total_mib"], samples[-1]["worker_rss_total_mib"]
    pids = [sorted(s["worker_rss_mib"]) for s in samples]
    figures = {
        "whole_run": summarize([r for chunk in records for r in chunk], args.soak_chunk_seconds * chunks),
        "samples": samples,
        "window_chunks": window,
        "p99_first_ms": first["p99_ms"],
        "p99_last_ms": last["p99_ms"],
        "rss_first_mib": rss_first,
        "rss_last_mib": rss_last,
        "rss_growth": round((rss_last - rss_first) / rss_first, 4) if rss_first else None,
        "workers_replaced": pids[0] != pids[-1],
        "non_200": sum(s["non_200"] for s in samples),
    }
    figures["checks"] = {
        f"p99 of the last window within {SOAK_P99_DRIFT:.0%} of the first": last["p99_ms"]
        <= first["p99_ms"] * (1 + SOAK_P99_DRIFT),
        f"worker RSS growth under {SOAK_RSS_GROWTH:.0%}": figures["rss_growth"] is not None
        and figures["rss_growth"] < SOAK_RSS_GROWTH,
        "same workers throughout": not figures["workers_replaced"],
        "every answer 200": figures["non_200"] == 0,
    }
    return figures


# --- output -----------------------------------------------------------------------------------------------
def _print_scenario(name: str, figures: dict) -> None:
    part = figures.get("during_fault") or figures.get("whole_run")
    if part:
        print(
            f"  during the fault: p50 {part['p50_ms']} p95 {part['p95_ms']} p99 {part['p99_ms']} ms, "
            f"{part['throughput_rps']}/s, non-200 {part['non_200']}, >=500 {part['server_errors']}, "
            f"no response {part['no_response']}",
            flush=True,
        )
    extras = {
        k: figures[k]
        for k in (
            "flags_during_fault",
            "time_to_recover_s",
            "settled_after_s",
            "feature_redis_keys",
            "worker_timeouts",
            "failed_requests",
            "shown_within_s",
            "healed_within_s",
            "top5_changed_of_10",
            "cases",
            "server_errors",
            "failures",
            "worker_rss_mib",
        )
        if k in figures
    }
    print(f"  {extras}", flush=True)
    for check, ok in figures["checks"].items():
        print(f"  [{'ok' if ok else 'MISSED'}] {check}", flush=True)


def _report(results: dict) -> list[str]:
    print(f"\nmachine calibration: {results['machine']}")
    missed = []
    parts = results.get("scenarios", {}) | ({"soak": results["soak"]} if "soak" in results else {})
    print(
        f"{'scenario':18} {'p50':>8} {'p95':>8} {'p99':>8} {'rps':>6} {'non200':>7} {'>=500':>6} {'recover':>8}  figures"
    )
    for name, figures in parts.items():
        part = figures.get("during_fault") or figures.get("whole_run") or {}
        recover = figures.get("time_to_recover_s", figures.get("healed_within_s"))
        ok = [check for check, passed in figures["checks"].items() if not passed]
        missed += [f"{name}: {check}" for check in ok]
        print(
            f"{name:18} {part.get('p50_ms', '-')!s:>8} {part.get('p95_ms', '-')!s:>8} {part.get('p99_ms', '-')!s:>8} "
            f"{part.get('throughput_rps', '-')!s:>6} {part.get('non_200', '-')!s:>7} {part.get('server_errors', '-')!s:>6} "
            f"{recover!s:>8}  {'all met' if not ok else 'MISSED: ' + '; '.join(ok)}"
        )
    results["missed"] = missed
    return missed


if __name__ == "__main__":
    main()
