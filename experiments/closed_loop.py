"""The closed-loop simulation over simulated days (issue #16): serve, react, ingest, run the scheduled jobs.

Each day a share of the synthetic world's profiles visits (some several times); each visit is served in
process by the RecommendationEngine under its arm's Variant, the viewer reacts by experiments.ml.simulation's
behaviour model (true affinity and position), and the events go through the events API's own parser and
service (batch_parse + events_ingest, what POST /api/events runs) into the viewing history. Then the
production jobs run as their schedules would over a day: content and user features, the bandit's fold,
daily MF and content-similarity retraining through the validation gate. A shadow arm (the oracle) is served
and measured, but its events are not ingested: the ground truth must not leak into what the models learn.

Simulated time is compressed: a day's events are stamped just before the day's jobs, in real time, so the
features' day windows (trending: 7 days) see every simulated day so far.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from django.utils import timezone

from catalog.models import Title
from events.api.parsing import MAX_EVENTS, MAX_ROWS, batch_parse
from events.services import events_ingest
from experiments.ml.closed_loop import LoopFigures, Served, VisitModel
from experiments.ml.metrics import engagement_score
from experiments.ml.simulation import BehaviourModel
from features.services import content_features_refresh, user_features_refresh_recent
from features.store import title_feature_caches_reset
from recommendations.models import ApiClient
from recommendations.registry import registry
from recommendations.serving.context import UserContext
from recommendations.serving.engine import RecommendationEngine, Variant
from recommendations.serving.state import serving_state
from users.loaders.synthetic import DEVICE_HOUR_CDF, GroundTruth
from users.models import Profile

SIMULATOR_CLIENT = "closed-loop-simulator"
EXPERIMENT = "closed-loop"
DAILY_MODELS = ("mf", "content")  # the daily retrains of tasks.schedules (NCF, weekly, is no homepage source)
UNWANTED = -1e9  # the oracle's score of a title it must not show (finite: the rules' arithmetic stays finite)
VISIT_SPACING_US = 100  # microseconds between two visits' stamps: (profile, title, start) stays unique


@dataclass(frozen=True)
class LoopArm:
    name: str
    variant: Variant
    shadow: bool = False  # served and measured, its events not ingested (the oracle)


ORACLE = Variant(experiment=EXPERIMENT, arm="oracle", oracle=True)
ARMS = {
    "popularity": LoopArm("popularity", Variant(experiment=EXPERIMENT, arm="popularity", popularity_only=True)),
    "production": LoopArm("production", Variant(experiment=EXPERIMENT, arm="production")),
    "bandit": LoopArm("bandit", Variant(experiment=EXPERIMENT, arm="bandit", bandit=True)),
    "calibrated": LoopArm("calibrated", Variant(experiment=EXPERIMENT, arm="calibrated", calibration=0.5)),
    "taste": LoopArm("taste", Variant(experiment=EXPERIMENT, arm="taste", taste=True)),
    "oracle": LoopArm("oracle", ORACLE, shadow=True),
}


def taste_arm(explore: float) -> LoopArm:
    """The taste arm with another exploration spread (`taste@0.5` on bench/closed_loop.py's --arms)."""
    name = f"taste@{explore:g}"
    return LoopArm(name, Variant(experiment=EXPERIMENT, arm=name, taste=True, taste_explore=explore))


def default_arms() -> list[LoopArm]:
    return [ARMS["popularity"], ARMS["production"], ARMS["oracle"]]


@dataclass
class LoopConfig:
    days: int = 30
    page_size: int = 20
    seed: int = 42
    visits: VisitModel = field(default_factory=VisitModel)
    jobs: bool = True
    train_params: dict[str, dict] = field(default_factory=dict)  # kind -> params of its daily retrain


@dataclass
class SimulatedWorld:
    """The ground truth aligned with the database: profile ids by truth row, truth rows by title id."""

    truth: GroundTruth
    profile_rows: np.ndarray  # truth rows of the profiles present in the database
    profile_ids: np.ndarray  # their database ids
    title_row_of_id: np.ndarray  # title id -> truth row (-1: not a world title)
    minutes: np.ndarray  # runtime per truth title row
    behaviour: BehaviourModel

    @classmethod
    def from_parts(
        cls,
        truth: GroundTruth,
        profile_rows: np.ndarray,
        profile_ids: np.ndarray,
        title_rows_by_id: dict[int, int],
        behaviour: BehaviourModel,
    ) -> SimulatedWorld:
        """What ab_test already holds (no runtimes: minutes are not measured there)."""
        title_row_of_id = np.full(max(title_rows_by_id, default=0) + 1, -1, np.int64)
        title_row_of_id[list(title_rows_by_id)] = list(title_rows_by_id.values())
        return cls(
            truth,
            np.asarray(profile_rows),
            np.asarray(profile_ids),
            title_row_of_id,
            np.zeros(len(truth.title_factors)),
            behaviour,
        )

    @classmethod
    def load(cls, directory: str | Path, *, seed: int = 0) -> SimulatedWorld:
        truth = GroundTruth.load(directory)
        rows_by_external = {e: r for r, e in enumerate(truth.title_external_ids.astype(str).tolist())}
        titles = list(
            Title.objects.filter(external_id__in=list(rows_by_external)).values_list(
                "id", "external_id", "duration_minutes"
            )
        )
        if not titles:
            raise ValueError(f"{directory}: none of its titles is in this database")
        title_row_of_id = np.full(max(t[0] for t in titles) + 1, -1, np.int64)
        minutes = np.zeros(len(truth.title_factors), np.float64)
        for pk, external, runtime in titles:
            title_row_of_id[pk] = rows_by_external[external]
            minutes[rows_by_external[external]] = runtime or 0
        accounts = truth.profile_account_external_ids.astype(str)
        known = {
            (a, s): pk
            for a, s, pk in Profile.objects.filter(account__external_id__startswith="syn:").values_list(
                "account__external_id", "slot", "id"
            )
        }
        ids = np.array([known.get((a, int(s)), -1) for a, s in zip(accounts, truth.profile_slots, strict=True)])
        present = np.flatnonzero(ids >= 0)
        rng = np.random.default_rng([seed, 99])
        sample = (
            rng.integers(0, len(truth.profile_factors), 100_000),
            rng.integers(0, len(truth.title_factors), 100_000),
        )
        return cls(
            truth, present, ids[present], title_row_of_id, minutes, BehaviourModel.calibrated(truth.affinity(*sample))
        )

    def rows_of_titles(self, title_ids: np.ndarray) -> np.ndarray:
        ids = np.asarray(title_ids, np.int64)
        inside = (ids >= 0) & (ids < len(self.title_row_of_id))
        return np.where(inside, self.title_row_of_id[np.where(inside, ids, 0)], -1)


class OracleScorer:
    """True affinity of a profile for titles, minus what the profile completed in the simulation (the oracle
    arm's history is not ingested, so the engine's completed-title filter cannot know it)."""

    def __init__(self, world: SimulatedWorld) -> None:
        self.world = world
        self.row_of_profile = dict(zip(world.profile_ids.tolist(), world.profile_rows.tolist(), strict=True))
        self.completed: dict[int, set[int]] = {}

    def __call__(self, profile_id: int, title_ids: np.ndarray) -> np.ndarray:
        rows = self.world.rows_of_titles(title_ids)
        row = self.row_of_profile.get(int(profile_id))
        if row is None:
            return np.full(len(rows), UNWANTED)
        scores = self.world.truth.title_factors[np.maximum(rows, 0)] @ self.world.truth.profile_factors[row]
        done = self.completed.get(int(profile_id))
        unknown = rows < 0
        if done:
            unknown |= np.isin(rows, list(done))
        return np.where(unknown, UNWANTED, scores)


class OracleShadow:
    """The oracle arm beside an A/B simulation (ab_test): each viewer is also served the oracle's page, reacts to
    it by the same behaviour model (its own random stream), and nothing of it is sent. `engagement` per impression
    is the ceiling the arms' engagement is read against."""

    def __init__(self, world: SimulatedWorld, *, seed: int) -> None:
        self.world = world
        self.engine = RecommendationEngine(use_cache=False, oracle_scorer=OracleScorer(world))
        self.rng = np.random.default_rng([seed, 17])
        self.impressions = 0
        self.total = 0.0

    def visit(self, profile_id: int, profile_row: int, *, device_type: int, hour: int, n: int) -> None:
        page = self.engine.recommend(
            context=UserContext(profile_id=profile_id, device_type=device_type, time_of_day=hour),
            n=n,
            with_rows=False,
            variant=ORACLE,
        )
        rows = self.world.rows_of_titles(np.array([item.content_id for item in page.items], np.int64))
        rows = rows[rows >= 0]
        affinity = self.world.truth.affinity(np.full(len(rows), profile_row), rows)
        clicked, played, completed, _ = self.world.behaviour.react(affinity, np.arange(1, len(rows) + 1), self.rng)
        self.impressions += len(rows)
        self.total += float(engagement_score(clicked, played, completed).sum())

    @property
    def engagement(self) -> float:
        return self.total / self.impressions if self.impressions else float("nan")


@dataclass
class DayRun:
    figures: dict
    seconds: dict[str, float]
    request_ms: np.ndarray


def loop_run(
    world: SimulatedWorld,
    arms: list[LoopArm],
    config: LoopConfig,
    *,
    head: np.ndarray,
    on_day: Callable[[int, DayRun], None] | None = None,
) -> LoopFigures:
    """Run `config.days` days; returns every day's figures per arm. `head`: the head titles as truth rows."""
    rng = np.random.default_rng([config.seed, 16])
    oracle = OracleScorer(world)
    engine = RecommendationEngine(use_cache=False, oracle_scorer=oracle)
    n_profiles = len(world.profile_ids)
    arm_of = rng.permutation(n_profiles) % len(arms)  # a fixed, balanced assignment of profiles to arms
    rates = config.visits.rates(n_profiles, rng)
    figures = LoopFigures([arm.name for arm in arms], len(world.truth.title_factors), head)
    client_id = _simulator_client()
    last_stamp = timezone.now() - dt.timedelta(minutes=30)
    for day in range(1, config.days + 1):
        seconds: dict[str, float] = {}
        started = time.perf_counter()
        visits = config.visits.visits(rates, rng)
        served, events, request_ms, last_stamp = _serve_day(
            world, arms, config, engine, oracle, visits, arm_of, rng, last_stamp
        )
        seconds["serve"] = time.perf_counter() - started
        mark = time.perf_counter()
        _ingest(client_id, events)
        seconds["ingest"] = time.perf_counter() - mark
        visits_per_arm = np.bincount(arm_of[visits], minlength=len(arms))
        day_figures = figures.add_day(served, visits_per_arm)
        if config.jobs:
            seconds |= daily_jobs(since=last_stamp - dt.timedelta(hours=2), train_params=config.train_params)
        if on_day is not None:
            on_day(day, DayRun(day_figures, seconds, request_ms))
    return figures


def _serve_day(world, arms, config, engine, oracle, visits, arm_of, rng, last_stamp):
    """Serve every visit, draw the reactions at once, and build the events of the arms that are not shadows."""
    truth = world.truth
    base = max(timezone.now() - dt.timedelta(minutes=30), last_stamp + dt.timedelta(seconds=1))
    hours = (
        (DEVICE_HOUR_CDF[truth.profile_device[world.profile_rows[visits]] - 1] < rng.random(len(visits))[:, None])
        .sum(axis=1)
        .clip(0, 23)
    )
    pages, request_ms = [], np.empty(len(visits))
    for number, position in enumerate(visits):
        arm = arms[arm_of[position]]
        device = int(truth.profile_device[world.profile_rows[position]])
        clock = time.perf_counter()
        result = engine.recommend(
            context=UserContext(
                profile_id=int(world.profile_ids[position]), device_type=device, time_of_day=int(hours[number])
            ),
            n=config.page_size,
            with_rows=False,
            variant=arm.variant,
        )
        request_ms[number] = (time.perf_counter() - clock) * 1000
        pages.append(result)
    counts = np.array([len(page.items) for page in pages], np.int64)
    visit = np.repeat(np.arange(len(visits)), counts)
    title_ids = np.fromiter((item.content_id for page in pages for item in page.items), np.int64, counts.sum())
    ranks = np.fromiter((item.rank for page in pages for item in page.items), np.int64, counts.sum())
    rows = world.rows_of_titles(title_ids)
    profile_rows = world.profile_rows[visits[visit]]
    affinity = truth.affinity(profile_rows, np.maximum(rows, 0))
    clicked, played, completed, watched = world.behaviour.react(affinity, ranks, rng)
    clicked &= rows >= 0
    played &= clicked
    completed &= played
    served = Served(
        arm_of[visits[visit]],
        visit,
        np.maximum(rows, 0),
        clicked,
        played,
        completed,
        watched * world.minutes[np.maximum(rows, 0)],
    )
    for k in np.flatnonzero(completed & np.array([arms[a].shadow for a in served.arm], bool)):
        oracle.completed.setdefault(int(world.profile_ids[visits[visit[k]]]), set()).add(int(rows[k]))
    events = _events(pages, visits, visit, served, title_ids, ranks, watched, world, arms, base)
    return served, events, request_ms, base + dt.timedelta(microseconds=VISIT_SPACING_US * len(visits) + 30_000_000)


def _events(pages, visits, visit, served, title_ids, ranks, watched, world, arms, base) -> list[dict]:
    """/api/events payloads: each visit's impression, then its clicks, plays and completions or progress."""
    events: list[dict] = []
    starts = np.concatenate([[0], np.cumsum([len(page.items) for page in pages])])
    for number, page in enumerate(pages):
        if not page.items or arms[served.arm[starts[number]]].shadow:
            continue
        at = base + dt.timedelta(microseconds=VISIT_SPACING_US * number)
        device = int(world.truth.profile_device[world.profile_rows[visits[number]]])
        common = {
            "profile_id": page.profile_id,
            "device_type": device,
            "request_id": page.request_id,
            "experiment": page.experiment,
            "arm": page.arm,
        }
        events.append(
            {
                **common,
                "event_id": f"loop-{page.request_id}-imp",
                "type": "impression",
                "occurred_at": at.isoformat(),
                "items": [
                    {
                        "content_id": i.content_id,
                        "position": i.rank,
                        "propensity": i.propensity,
                        "policy": i.policy,
                        "row": "top_picks",
                    }
                    for i in page.items
                ],
            }
        )
        for k in range(starts[number], starts[number + 1]):
            if not served.clicked[k]:
                continue
            stamp = at + dt.timedelta(seconds=int(ranks[k]) / 10)
            item = {**common, "content_id": int(title_ids[k])}
            key = f"loop-{page.request_id}-{ranks[k]}"
            events.append(
                {
                    **item,
                    "event_id": f"{key}-click",
                    "type": "click",
                    "position": int(ranks[k]),
                    "occurred_at": stamp.isoformat(),
                }
            )
            if not served.played[k]:
                continue
            play = {**item, "started_at": (stamp + dt.timedelta(seconds=1)).isoformat()}
            events.append({**play, "event_id": f"{key}-play", "type": "play", "occurred_at": play["started_at"]})
            done = (stamp + dt.timedelta(seconds=20)).isoformat()
            if served.completed[k]:
                events.append({**play, "event_id": f"{key}-complete", "type": "complete", "occurred_at": done})
            else:
                events.append(
                    {
                        **play,
                        "event_id": f"{key}-progress",
                        "type": "progress",
                        "occurred_at": done,
                        "watch_percentage": round(float(watched[k]), 3),
                    }
                )
    return events


def _ingest(client_id: int, events: list[dict]) -> None:
    """What POST /api/events does with each batch (its parser and service), in batches within its limits."""
    chunk: list[dict] = []
    rows = 0
    for event in [*events, None]:
        weight = (len(event.get("items") or ()) or 1) if event is not None else 0
        if chunk and (event is None or len(chunk) == MAX_EVENTS or rows + weight > MAX_ROWS):
            batch = batch_parse({"events": chunk}, now=timezone.now())
            if batch.error or batch.errors:
                raise RuntimeError(f"the events parser refused simulated events: {batch.error or batch.errors[:3]}")
            result = events_ingest(client_id=client_id, events=batch.events)
            if result.errors:
                raise RuntimeError(f"events_ingest refused simulated events: {result.errors[:3]}")
            chunk, rows = [], 0
        if event is not None:
            chunk.append(event)
            rows += weight


def daily_jobs(*, since: dt.datetime, train_params: dict[str, dict] | None = None) -> dict[str, float]:
    """A day of the production schedules, in order: features, the bandit's fold, the daily retrains (each
    through the activation gate); then this process serves what is active. Returns seconds per job."""
    from experiments.exploration import title_outcomes_refresh
    from experiments.services import bandit_update_from_events
    from recommendations.training.jobs import model_train
    from recommendations.training.taste_fit import taste_train

    seconds = {}
    mark = time.perf_counter()
    content_features_refresh()
    user_features_refresh_recent(since=since)
    seconds["features"] = time.perf_counter() - mark
    mark = time.perf_counter()
    while bandit_update_from_events(settle=dt.timedelta(0)).folded:
        pass
    seconds["bandit"] = time.perf_counter() - mark
    for kind in DAILY_MODELS:
        mark = time.perf_counter()
        model_train(kind=kind, activation="if-not-worse", params=(train_params or {}).get(kind))
        seconds[f"train_{kind}"] = time.perf_counter() - mark
    mark = time.perf_counter()
    taste_train()
    title_outcomes_refresh()
    seconds["train_taste"] = time.perf_counter() - mark
    serving_refresh()
    return seconds


def serving_refresh() -> None:
    """Load what is active now, and forget the trending list and title features read before the jobs."""
    check = registry.check_seconds
    registry.check_seconds = 0
    try:
        registry.refresh_if_due()
    finally:
        registry.check_seconds = check
    serving_state.clear()
    title_feature_caches_reset()


def _simulator_client() -> int:
    client = ApiClient.objects.filter(name=SIMULATOR_CLIENT).first()
    return (client or ApiClient.issue(SIMULATOR_CLIENT, rate="1000000/min")[0]).pk
