#!/usr/bin/env python
"""The closed loop over simulated days, per arm against the oracle (issue #16).

    flock /tmp/reco-heavy.lock .venv/bin/python bench/closed_loop.py --database-url postgres://reco:reco@127.0.0.1:5432/reco_h5 \
        --redis-url redis://127.0.0.1:6379/9 --titles 10000 --accounts 20000 --events 1000000 --days 30
    ... --reuse-world                    # the world already loaded by an earlier run (its models as they were left)
    ... --label-debias 0.5               # the daily MF retrain weights labels by inverse exposure propensity

Generates and loads a synthetic world (users/loaders/synthetic.py) whose history ends today, trains and activates
popularity, MF and content similarity through the gate, refreshes the features, then runs experiments.closed_loop:
each day a share of the profiles visits, is served in process by the engine under its arm, reacts by the
behaviour model, and its events go through the events API's parser and service; then the day's production jobs
run (features, bandit fold, daily MF and content retrains through the gate). The oracle arm (true affinity,
same rules) is measured but not ingested. Prints one line per day and arm, and the request latency percentiles,
throughput, job times, peak memory and the machine calibration; writes --json and --png (the curves).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
METRICS = (
    "ctr",
    "play_rate",
    "completion_rate",
    "engagement",
    "share_of_oracle",
    "minutes_per_visit",
    "long_tail_share",
    "discovery",
    "coverage",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default="postgres://reco:reco@127.0.0.1:5432/reco_h5")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/9")
    parser.add_argument("--titles", type=int, default=10_000)
    parser.add_argument("--accounts", type=int, default=20_000, help="2.5 profiles each on average")
    parser.add_argument("--events", type=int, default=1_000_000, help="the history before day 1")
    parser.add_argument("--seed", type=int, default=42, help="the world's and the loop's")
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--daily-share", type=float, default=0.1, help="profiles visiting on an average day")
    parser.add_argument(
        "--arms",
        default="popularity,production,oracle",
        help="comma-separated: popularity, production, bandit, calibrated, taste, taste@<spread>, oracle",
    )
    parser.add_argument("--label-debias", type=float, default=0.0, help="inverse-propensity power of MF labels")
    parser.add_argument("--reuse-world", action="store_true", help="keep the loaded world and its models")
    parser.add_argument("--artifact-dir", type=Path, default=Path(tempfile.gettempdir()) / "reco-closed-loop")
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--png", type=Path, help="plot the curves here")
    args = parser.parse_args()

    os.environ.update(
        DATABASE_URL=args.database_url,
        REDIS_URL=args.redis_url,
        RECO_ARTIFACT_DIR=str(args.artifact_dir),
        DJANGO_SETTINGS_MODULE="config.settings.base",
        LOG_LEVEL="WARNING",
    )
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from bench._machine import calibration
    from experiments import closed_loop
    from experiments.ml.closed_loop import VisitModel

    truth_dir = args.artifact_dir / f"world-{args.seed}"
    setup_seconds = _world(args, truth_dir)
    world = closed_loop.SimulatedWorld.load(truth_dir, seed=args.seed)
    from experiments.selectors import head_title_ids

    head = world.rows_of_titles(head_title_ids(end=dt.datetime.now(dt.UTC), days=3650))
    arms = _arms(args.arms)
    config = closed_loop.LoopConfig(
        days=args.days,
        seed=args.seed,
        visits=VisitModel(daily_share=args.daily_share),
        train_params={"mf": {"label_debias": args.label_debias}} if args.label_debias else {},
    )
    latencies, jobs = [], []
    started = time.perf_counter()

    def report(day: int, run) -> None:
        latencies.append(run.request_ms)
        jobs.append({k: round(v, 2) for k, v in run.seconds.items()})
        for arm, f in run.figures.items():
            print(
                f"day {day:2d} {arm:<11} visits {f['visits']:6d} ctr {f['ctr']:.3f} play {f['play_rate']:.3f} "
                f"compl {f['completion_rate']:.3f} eng {f['engagement']:.4f} "
                f"of-oracle {f.get('share_of_oracle', float('nan')):.2f} min/visit {f['minutes_per_visit']:5.1f} "
                f"tail {f['long_tail_share']:.3f} disc {f['discovery']:.3f} cov {f['coverage']:.3f}",
                flush=True,
            )
        print(f"day {day:2d} seconds {jobs[-1]}", flush=True)

    figures = closed_loop.loop_run(world, arms, config, head=head, on_day=report)
    loop_seconds = time.perf_counter() - started
    requests = np.concatenate(latencies) if latencies else np.zeros(1)
    serve_seconds = sum(j.get("serve", 0) for j in jobs)
    summary = {
        "world": {
            "titles": args.titles,
            "accounts": args.accounts,
            "profiles": len(world.profile_ids),
            "history_events": args.events,
            "seed": args.seed,
            "head_titles": len(head),
        },
        "loop": {
            "days": args.days,
            "daily_share": args.daily_share,
            "arms": [a.name for a in arms],
            "label_debias": args.label_debias,
        },
        "seconds": {"setup": round(setup_seconds, 1), "loop": round(loop_seconds, 1)},
        "requests": {
            "count": len(requests),
            "p50_ms": _pct(requests, 50),
            "p95_ms": _pct(requests, 95),
            "p99_ms": _pct(requests, 99),
            "per_second_serving": round(len(requests) / serve_seconds, 1) if serve_seconds else None,
        },
        "jobs_seconds_per_day": jobs,
        "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
        "machine": calibration(),
        "days": figures.days,
    }
    summary["last_7_days"] = week_means(figures.days)
    last = figures.days[-1] if figures.days else {}
    print(json.dumps({k: v for k, v in summary.items() if k not in ("days", "jobs_seconds_per_day")}, indent=2))
    print("last day:", json.dumps({arm: {m: round(v, 4) for m, v in f.items()} for arm, f in last.items()}))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(summary, indent=1, default=float) + "\n")
    if args.png:
        _plot(figures, args.png, f"{len(world.profile_ids):,} profiles, {args.titles:,} titles, seed {args.seed}")


def _world(args: argparse.Namespace, truth_dir: Path) -> float:
    """Load the world and its first models (unless --reuse-world); seconds it took."""
    from django.core.management import call_command

    from experiments.closed_loop import serving_refresh
    from features.services import content_features_refresh, user_features_refresh
    from recommendations.ml.taste import OUTCOMES_FILE
    from recommendations.serving.taste_arm import taste_directory
    from recommendations.training.jobs import model_train
    from recommendations.training.taste_fit import taste_train

    started = time.perf_counter()
    call_command("migrate", verbosity=0)
    if args.reuse_world and (truth_dir / "ground_truth.npz").exists():
        serving_refresh()
        return time.perf_counter() - started
    call_command(
        "generate_synthetic",
        "--titles",
        str(args.titles),
        "--accounts",
        str(args.accounts),
        "--events",
        str(args.events),
        "--seed",
        str(args.seed),
        "--replace",
        "--as-of",
        dt.datetime.now(dt.UTC).date().isoformat(),
        "--ground-truth-dir",
        str(truth_dir),
        verbosity=0,
    )
    from events.models import Event
    from recommendations.models import ModelVersion

    Event.objects.all().delete()  # a previous loop's events (their titles and profiles are gone)
    (taste_directory() / OUTCOMES_FILE).unlink(missing_ok=True)  # and what the taste arm learned from them
    ModelVersion.objects.filter(status=ModelVersion.Status.ACTIVE).update(status=ModelVersion.Status.RETIRED)
    for kind in ("popularity", "mf", "content"):
        print(f"setup: {kind}: {model_train(kind=kind, activation='if-not-worse').reason}", flush=True)
    print(f"setup: taste: fitted on {taste_train().viewings} viewings", flush=True)
    content_features_refresh()
    user_features_refresh(profile_id_start=0, profile_id_end=2**63 - 1)
    serving_refresh()
    return time.perf_counter() - started


def _arms(names: str) -> list:
    from experiments.closed_loop import ARMS, taste_arm

    unknown = [n for n in names.split(",") if n not in ARMS and not n.startswith("taste@")]
    if unknown:
        raise SystemExit(f"unknown arms {unknown}: choose among {sorted(ARMS)} or taste@<exploration spread>")
    return [taste_arm(float(n.split("@")[1])) if n.startswith("taste@") else ARMS[n] for n in names.split(",")]


def week_means(days: list[dict], span: int = 7) -> dict:
    """Per arm, the last `span` days pooled (rates from summed counts; discovery as of the last day) and the
    engagement lift against popularity: one day of ~150 visits per arm is too noisy to read alone."""
    recent = days[-span:]
    out = {}
    for arm in recent[0] if recent else {}:
        total = {
            k: sum(day[arm][k] for day in recent) for k in ("visits", "impressions", "clicks", "plays", "completions")
        }
        engagement = sum(day[arm]["engagement"] * day[arm]["impressions"] for day in recent) / total["impressions"]
        out[arm] = {
            "ctr": total["clicks"] / total["impressions"],
            "play_rate": total["plays"] / total["clicks"],
            "completion_rate": total["completions"] / total["plays"],
            "engagement": engagement,
            "minutes_per_visit": sum(day[arm]["minutes_per_visit"] * day[arm]["visits"] for day in recent)
            / total["visits"],
            "long_tail_share": sum(day[arm]["long_tail_share"] * day[arm]["plays"] for day in recent) / total["plays"],
            "discovery": recent[-1][arm]["discovery"],
        }
    for figures in out.values():
        if "oracle" in out:
            figures["share_of_oracle"] = figures["engagement"] / out["oracle"]["engagement"]
        if "popularity" in out:
            figures["lift_vs_popularity"] = figures["engagement"] / out["popularity"]["engagement"] - 1
    return {arm: {k: round(v, 4) for k, v in f.items()} for arm, f in out.items()}


def _pct(values: np.ndarray, q: float) -> float:
    return round(float(np.percentile(values, q)), 2)


def _plot(figures, path: Path, subtitle: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(3, 3, figsize=(14, 10))
    days = np.arange(1, len(figures.days) + 1)
    for axis, metric in zip(axes.ravel(), METRICS, strict=True):
        for arm in figures.arms:
            axis.plot(days, figures.curve(arm, metric), label=arm, marker=".")
        axis.set_title(metric.replace("_", " "))
        axis.set_xlabel("day")
        axis.grid(alpha=0.3)
    axes[0, 0].legend()
    figure.suptitle(f"Closed loop: {subtitle}")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)


if __name__ == "__main__":
    main()
