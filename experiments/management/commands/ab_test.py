"""Simulate an A/B test end to end: real assignment, real /api/recs, simulated viewers, real /api/events."""

from __future__ import annotations

import datetime as dt
import json
import secrets
from pathlib import Path

import numpy as np
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.test import Client
from django.utils import timezone
from tqdm import tqdm

from catalog.models import Title
from events.api.parsing import MAX_EVENTS, MAX_ROWS
from experiments.closed_loop import OracleShadow, SimulatedWorld
from experiments.management.commands.experiment_metrics import _as_dict, _table
from experiments.ml.simulation import BehaviourModel
from experiments.models import Experiment, Metric
from experiments.services import ArmSpec, experiment_create, experiment_metrics_compute, experiment_status_set
from recommendations.api.serializers import DEVICE_API_NAMES
from recommendations.models import API_KEY_PREFIX_LENGTH, ApiClient, api_key_digest
from users.loaders.synthetic import GroundTruth
from users.models import Profile

BASELINE = "baseline"
EVENTS_PER_POST = 800  # under the events API's 1,000-event limit
PAGE_SIZE = 20
SIMULATOR_CLIENT = "ab-test-simulator"


class Command(BaseCommand):
    help = (
        "Run a seeded A/B simulation through the real serving path: synthetic viewers with known tastes (the "
        "synthetic generator's ground truth) are assigned to the control or treatment arm of a new running "
        "experiment, fetch their homepage from /api/recs, react by a behaviour model (true affinity and "
        "position → clicks, plays, completions) and send those events to /api/events. Prints each arm's online "
        "metrics with 95 %% intervals and a verdict, and writes a plot. The control named 'baseline' is "
        "non-personalised popularity; the treatment is the full pipeline (optionally a given ranker version, "
        "or with bandit exploration)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--control", default=BASELINE, help="control arm name ('baseline': popularity only)")
        parser.add_argument("--treatment", default="new_ranking_model", help="treatment arm name")
        parser.add_argument("--users", type=int, default=10_000, help="simulated viewers, one visit each")
        parser.add_argument("--seed", type=int, default=42, help="seeds the sample, the arms' salt and behaviour")
        parser.add_argument(
            "--ground-truth-dir",
            type=Path,
            help="the synthetic world's ground truth (default: the newest under RECO_DATA_DIR)",
        )
        parser.add_argument("--treatment-ranker", default="", help="ranker version for the treatment (default active)")
        parser.add_argument("--treatment-bandit", action="store_true", help="bandit exploration in the treatment")
        parser.add_argument(
            "--no-oracle", action="store_true", help="skip the oracle (each viewer's page by true affinity, in shadow)"
        )
        parser.add_argument("--plot", type=Path, help="PNG path (default var/data/ab_test/<experiment>.png)")
        parser.add_argument("--json", dest="json_path", type=Path, help="also write the results here")

    def handle(
        self,
        *args,
        control: str,
        treatment: str,
        users: int,
        seed: int,
        ground_truth_dir: Path | None,
        treatment_ranker: str,
        treatment_bandit: bool,
        plot: Path | None,
        json_path: Path | None,
        no_oracle: bool = False,
        **options,
    ) -> None:
        if control == treatment:
            raise CommandError("--control and --treatment need different names")
        if users < 2:
            raise CommandError("--users must be at least 2")
        if Experiment.objects.filter(status=Experiment.Status.RUNNING).exists():
            raise CommandError(
                "another experiment is running; stop it first (admin: Experiments), so that every "
                "simulated viewer is assigned to this one"
            )
        truth = _ground_truth(ground_truth_dir)
        rng = np.random.default_rng(seed)
        profile_rows, profile_ids = _sample_profiles(truth, users, rng)
        viewers = len(profile_ids)
        if viewers < users:
            self.stdout.write(
                self.style.WARNING(
                    f"{viewers:,} viewers, not the {users:,} asked for: the world has "
                    f"only {viewers:,} of its profiles in this database"
                )
            )
        title_ids = _title_ids(truth)
        behaviour = BehaviourModel.calibrated(_affinity_sample(truth, rng))
        oracle = (
            None
            if no_oracle
            else OracleShadow(
                SimulatedWorld.from_parts(truth, profile_rows, profile_ids, title_ids, behaviour), seed=seed
            )
        )

        headers = {"HTTP_X_API_KEY": _api_key()}
        name = f"ab-{control}-vs-{treatment}-{timezone.now():%Y%m%dT%H%M%S}"
        experiment = experiment_create(
            name=name,
            status=Experiment.Status.RUNNING,
            salt=f"ab-test-{seed}",
            starts_at=timezone.now() - dt.timedelta(hours=1),  # the simulated visits are dated up to 45 min back
            description=f"ab_test simulation: {viewers:,} viewers, seed {seed}",
            arms=[
                ArmSpec(control, 0.5, is_baseline=True, popularity_only=control == BASELINE),
                ArmSpec(treatment, 0.5, ranker_version=treatment_ranker, bandit_enabled=treatment_bandit),
            ],
        )
        client = Client()
        events, served = [], {control: 0, treatment: 0}
        try:
            for number, (row, profile_id) in enumerate(
                tqdm(list(zip(profile_rows, profile_ids, strict=True)), desc="viewers", unit="viewer")
            ):
                device = int(truth.profile_device[row])
                hour = int(rng.integers(0, 24))
                response = client.get(
                    "/api/recs",
                    {
                        "profile_id": int(profile_id),
                        "n": PAGE_SIZE,
                        "rows": "false",
                        "device_type": DEVICE_API_NAMES[device],
                        "time_of_day": hour,
                    },
                    **headers,
                )
                if response.status_code != 200:
                    raise CommandError(f"/api/recs answered {response.status_code}: {response.content[:300]!r}")
                body = response.json()
                served[body["arm"]] = served.get(body["arm"], 0) + 1
                events += _viewer_events(body, number, row, device, truth, title_ids, behaviour, rng)
                if oracle is not None:
                    oracle.visit(int(profile_id), int(row), device_type=device, hour=hour, n=PAGE_SIZE)
                if len(events) >= EVENTS_PER_POST:
                    _post(client, headers, events)
                    events = []
            if events:
                _post(client, headers, events)
        finally:
            experiment = experiment_status_set(experiment_id=experiment.pk, status=Experiment.Status.STOPPED)
        results = experiment_metrics_compute(experiment_id=experiment.pk)
        self.stdout.write(f"ran {viewers:,} viewers; served: {served}")
        self.stdout.write(_table(experiment, results))
        self.stdout.write(self.style.SUCCESS(_verdict(results, control, treatment)))
        if oracle is not None:
            self.stdout.write(_oracle_line(results, oracle.engagement, (control, treatment)))
        plot = plot or Path(settings.RECO_DATA_DIR) / "ab_test" / f"{name}.png"
        if _plot(results, control, treatment, plot):
            self.stdout.write(f"plot: {plot}")
        if json_path:
            json_path.parent.mkdir(parents=True, exist_ok=True)
            report = {
                "experiment": name,
                "users": viewers,
                "users_asked": users,
                "seed": seed,
                "served": served,
                "results": [_as_dict(r) for r in results],
                "verdict": _verdict(results, control, treatment),
            }
            if oracle is not None:
                report["oracle_engagement"] = oracle.engagement
            json_path.write_text(json.dumps(report, indent=2, default=str) + "\n")


def _ground_truth(directory: Path | None) -> GroundTruth:
    if directory is None:
        found = sorted(
            (Path(settings.RECO_DATA_DIR) / "synthetic").glob("*/ground_truth.npz"),
            key=lambda path: path.stat().st_mtime,
        )
        if not found:
            raise CommandError("no synthetic ground truth found: run generate_synthetic (or pass --ground-truth-dir)")
        directory = found[-1].parent
    try:
        return GroundTruth.load(directory)
    except (OSError, ValueError, KeyError) as error:
        raise CommandError(f"{directory}: cannot read the ground truth ({error})") from None


def _sample_profiles(truth: GroundTruth, users: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Ground-truth rows and the database ids of `users` profiles (fewer if the world is smaller)."""
    rows = rng.permutation(len(truth.profile_slots))[: users * 2]
    accounts = truth.profile_account_external_ids[rows].astype(str)
    known = {
        (a, s): pk
        for a, s, pk in Profile.objects.filter(account__external_id__in=set(accounts.tolist())).values_list(
            "account__external_id", "slot", "id"
        )
    }
    ids = np.array([known.get((a, int(s)), -1) for a, s in zip(accounts, truth.profile_slots[rows], strict=True)])
    present = ids >= 0
    if present.sum() < 2:
        raise CommandError("the ground truth's profiles are not in this database: load the same synthetic world")
    return rows[present][:users], ids[present][:users]


def _title_ids(truth: GroundTruth) -> dict[int, int]:
    """Database title id → ground-truth row."""
    rows = {external: row for row, external in enumerate(truth.title_external_ids.astype(str).tolist())}
    return {
        pk: rows[ext] for pk, ext in Title.objects.filter(external_id__in=list(rows)).values_list("id", "external_id")
    }


def _affinity_sample(truth: GroundTruth, rng: np.random.Generator, size: int = 100_000) -> np.ndarray:
    profiles = rng.integers(0, len(truth.profile_factors), size)
    titles = rng.integers(0, len(truth.title_factors), size)
    return truth.affinity(profiles, titles)


def _api_key() -> str:
    """A fresh key for the simulator's client app (kept: earlier runs' events refer to it)."""
    key = secrets.token_urlsafe(24)
    updated = ApiClient.objects.filter(name=SIMULATOR_CLIENT).update(
        key_prefix=key[:API_KEY_PREFIX_LENGTH], key_digest=api_key_digest(key), is_active=True
    )
    if not updated:
        ApiClient.issue(SIMULATOR_CLIENT, key=key, rate="1000000/min")
    return key


def _viewer_events(body, number, row, device, truth, title_ids, behaviour, rng) -> list[dict]:
    """The impression of the page and what the viewer did with it, as /api/events payloads."""
    items = [item for item in body["items"] if item["content_id"] in title_ids]
    if not items:
        return []
    now = timezone.now() - dt.timedelta(minutes=45)  # the visit began a while ago; its last event is in the past
    profile_id, request_id = body["profile_id"], body["request_id"]
    common = {
        "profile_id": profile_id,
        "device_type": device,
        "request_id": request_id,
        "experiment": body["experiment"],
        "arm": body["arm"],
    }
    events = [
        {
            **common,
            "event_id": f"sim-{request_id}-imp",
            "type": "impression",
            "occurred_at": now.isoformat(),
            "items": [
                {
                    "content_id": i["content_id"],
                    "position": i["rank"],
                    "propensity": i["propensity"],
                    "policy": i["policy"],
                    "row": "top_picks",
                }
                for i in items
            ],
        }
    ]
    affinity = truth.affinity(np.full(len(items), row), np.array([title_ids[i["content_id"]] for i in items]))
    clicked, played, completed, watched = behaviour.react(affinity, np.array([i["rank"] for i in items]), rng)
    for k in np.flatnonzero(clicked):
        item, at = items[k], now + dt.timedelta(seconds=int(k) + 1)
        base = {**common, "content_id": item["content_id"], "occurred_at": at.isoformat()}
        events.append({**base, "event_id": f"sim-{request_id}-{k}-click", "type": "click", "position": item["rank"]})
        if played[k]:
            started = at + dt.timedelta(seconds=5)
            play = {**base, "started_at": started.isoformat(), "occurred_at": started.isoformat()}
            events.append({**play, "event_id": f"sim-{request_id}-{k}-play", "type": "play"})
            done_at = (started + dt.timedelta(minutes=30)).isoformat()
            if completed[k]:
                events.append(
                    {**play, "occurred_at": done_at, "event_id": f"sim-{request_id}-{k}-complete", "type": "complete"}
                )
            else:
                events.append(
                    {
                        **play,
                        "occurred_at": done_at,
                        "event_id": f"sim-{request_id}-{k}-progress",
                        "type": "progress",
                        "watch_percentage": round(float(watched[k]), 3),
                    }
                )
    return events


def _post(client: Client, headers: dict, events: list[dict]) -> None:
    """Send `events` in as many calls as the API's per-call limits (events and rows) need."""
    chunk: list[dict] = []
    rows = 0
    for event in events:
        weight = len(event.get("items") or ()) or 1
        if chunk and (len(chunk) == MAX_EVENTS or rows + weight > MAX_ROWS):
            _post_chunk(client, headers, chunk)
            chunk, rows = [], 0
        chunk.append(event)
        rows += weight
    if chunk:
        _post_chunk(client, headers, chunk)


def _post_chunk(client: Client, headers: dict, events: list[dict]) -> None:
    response = client.post("/api/events", {"events": events}, content_type="application/json", **headers)
    body = response.json()
    if response.status_code != 200 or body.get("rejected"):
        raise CommandError(f"/api/events refused events: {response.status_code} {json.dumps(body)[:500]}")


def _metric(results, arm: str, metric: str):
    return next((r for r in results if r.arm.name == arm and r.metric == metric), None)


def _verdict(results, control: str, treatment: str) -> str:
    """One sentence: the engagement figures, the test, and a winner only when the difference is significant."""
    base, new = _metric(results, control, Metric.ENGAGEMENT), _metric(results, treatment, Metric.ENGAGEMENT)
    if base is None or new is None or not base.value:
        return "verdict: not enough data"
    lift = new.value / base.value - 1
    p = new.p_value_vs_baseline
    if p is None:
        return f"verdict: engagement {lift:+.1%} (no test)"
    figures = (
        f"verdict: engagement per impression {new.value:.4f} ({treatment}) vs {base.value:.4f} ({control}): "
        f"{lift:+.1%}, p = {p:.2g}"
    )
    if p >= 0.05:
        return f"{figures}; not significant at p < 0.05: no winner"
    winner = treatment if lift > 0 else control
    return f"{figures}; significant at p < {0.01 if p < 0.01 else 0.05}: {winner} wins"


def _oracle_line(results, oracle: float, arms: tuple[str, ...]) -> str:
    """Each arm's engagement per impression as a share of the oracle's (the same viewers, served in shadow)."""
    shares = []
    for arm in arms:
        result = _metric(results, arm, Metric.ENGAGEMENT)
        if result is not None and result.value is not None and oracle:
            shares.append(f"{arm} {result.value / oracle:.1%}")
    return f"oracle (true affinity, same rules, same viewers): engagement {oracle:.4f}; of it: " + ", ".join(shares)


def _plot(results, control: str, treatment: str, path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    metrics = [Metric.CTR, Metric.PLAY_RATE, Metric.COMPLETION_RATE, Metric.ENGAGEMENT]
    figure, axes = plt.subplots(1, len(metrics), figsize=(4 * len(metrics), 3.6))
    for axis, metric in zip(axes, metrics, strict=True):
        for offset, arm in enumerate((control, treatment)):
            result = _metric(results, arm, metric)
            if result is None or result.value is None:
                continue
            low = result.value - (result.ci_low if result.ci_low is not None else result.value)
            high = (result.ci_high if result.ci_high is not None else result.value) - result.value
            axis.bar(offset, result.value, yerr=[[low], [high]], capsize=6, color=("#9aa5b1", "#2f6fde")[offset])
        axis.set_xticks([0, 1], [control, treatment])
        axis.set_title(Metric(metric).label.split(" (")[0])
    figure.suptitle("A/B simulation: each arm with its 95 % interval")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return True
