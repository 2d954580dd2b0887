"""Experiments: creating and starting them, which arm a profile is in (cached in-process), per-arm metrics.

One running experiment per profile: when several run at once, the one with the lowest id takes every profile
and the others get no traffic until it ends (no layering or overlap yet). The bandit's services live in
experiments.bandit_state; they are re-exported here so that callers import one module.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

import numpy as np
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from config.reloading import VersionedSnapshot
from experiments import selectors
from experiments.bandit_state import (  # noqa: F401 (re-exported)
    BANDIT_HOMEPAGE,
    BanditUpdate,
    LoadedBandit,
    bandit_cache,
    bandit_load,
    bandit_update_from_events,
    exploration_log,
    exploration_logs_prune,
)
from experiments.ml import metrics
from experiments.ml.assignment import SHARES_TOLERANCE, assign_arm
from experiments.models import Arm, Experiment, ExperimentResult, Metric

log = logging.getLogger(__name__)

PROPORTIONS = {Metric.CTR, Metric.PLAY_RATE, Metric.COMPLETION_RATE, Metric.LONG_TAIL}


# --- arms and their shares ------------------------------------------------------------------------
@dataclass(frozen=True)
class ArmSpec:
    """An arm to create (the ab_test command and tests build these)."""

    name: str
    traffic_share: float | Decimal
    is_baseline: bool = False
    ranker_version: str = ""
    mmr_lambda: float | None = None
    bandit_enabled: bool = False
    popularity_only: bool = False


def experiment_arms_validate(*, arms: Sequence[ArmSpec | Arm], running: bool = False) -> None:
    """ValidationError unless the arms' shares sum to 1, names are unique and at most one is the baseline;
    a running experiment also needs two arms or more, one of them the baseline."""
    errors = []
    if arms:
        total = sum(Decimal(str(arm.traffic_share)) for arm in arms)
        if abs(total - 1) > Decimal(str(SHARES_TOLERANCE)):
            errors.append(
                ValidationError(
                    f"The traffic shares of the arms must sum to 1, not {total.normalize()}.", code="shares_sum"
                )
            )
    names = [arm.name for arm in arms]
    if len(set(names)) != len(names):
        errors.append(ValidationError("Each arm needs its own name.", code="arm_names"))
    baselines = sum(bool(arm.is_baseline) for arm in arms)
    if baselines > 1:
        errors.append(ValidationError("Only one arm can be the baseline.", code="baselines"))
    if running and (len(arms) < 2 or baselines != 1):
        errors.append(
            ValidationError(
                "A running experiment needs at least two arms, one of them the baseline.", code="arms_to_run"
            )
        )
    if errors:
        raise ValidationError(errors)


@transaction.atomic
def experiment_create(
    *,
    name: str,
    arms: Sequence[ArmSpec],
    starts_at: dt.datetime | None = None,
    ends_at: dt.datetime | None = None,
    description: str = "",
    status: str = Experiment.Status.DRAFT,
    salt: str | None = None,
    created_by=None,
) -> Experiment:
    """Create an experiment and its arms (in the given order, which the assignment follows)."""
    experiment_arms_validate(arms=arms, running=status == Experiment.Status.RUNNING)
    experiment = Experiment(
        name=name,
        description=description,
        status=status,
        starts_at=starts_at or timezone.now(),
        ends_at=ends_at,
        created_by=created_by,
    )
    if salt:
        experiment.salt = salt
    experiment.full_clean()
    experiment.save()
    for spec in arms:
        arm = Arm(
            experiment=experiment,
            name=spec.name,
            traffic_share=Decimal(str(spec.traffic_share)),
            is_baseline=spec.is_baseline,
            ranker_version=spec.ranker_version,
            mmr_lambda=spec.mmr_lambda,
            bandit_enabled=spec.bandit_enabled,
            popularity_only=spec.popularity_only,
        )
        arm.full_clean(exclude=["experiment"])
        arm.save()
    transaction.on_commit(experiments_cache.expire)
    return experiment


@transaction.atomic
def experiment_status_set(*, experiment_id: int, status: str) -> Experiment:
    """Start, stop or resume an experiment; starting checks its arms. A started one never goes back to draft."""
    experiment = Experiment.objects.select_for_update().get(pk=experiment_id)
    if status == Experiment.Status.DRAFT and experiment.status != Experiment.Status.DRAFT:
        raise ValidationError(
            "An experiment that has run cannot go back to draft: its events refer to it.", code="back_to_draft"
        )
    if status == Experiment.Status.RUNNING:
        experiment_arms_validate(arms=list(experiment.arms.all()), running=True)
    experiment.status = status
    experiment.save(update_fields=["status", "updated_at"])
    transaction.on_commit(experiments_cache.expire)
    return experiment


# --- assignment ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Assignment:
    """A profile's arm: what the engine changes for it, and what its responses and impressions carry."""

    experiment: str
    arm: str
    is_baseline: bool
    ranker_version: str  # "" = the active ranker
    mmr_lambda: float | None  # None = the editors' diversity policy
    bandit_enabled: bool
    popularity_only: bool


@dataclass(frozen=True)
class RunningExperiment:
    experiment_id: int
    name: str
    salt: str
    starts_at: dt.datetime
    ends_at: dt.datetime | None
    shares: tuple[float, ...]
    arms: tuple[Assignment, ...]

    def live_at(self, moment: dt.datetime) -> bool:
        return self.starts_at <= moment and (self.ends_at is None or moment < self.ends_at)


def running_experiments_load() -> tuple[RunningExperiment, ...]:
    """The running experiments that have arms, lowest id first (two queries)."""
    loaded = []
    for experiment in selectors.experiments_running():
        arms = list(experiment.arms.all())
        if not arms:
            continue
        loaded.append(
            RunningExperiment(
                experiment_id=experiment.pk,
                name=experiment.name,
                salt=experiment.salt,
                starts_at=experiment.starts_at,
                ends_at=experiment.ends_at,
                shares=tuple(float(arm.traffic_share) for arm in arms),
                arms=tuple(
                    Assignment(
                        experiment.name,
                        arm.name,
                        arm.is_baseline,
                        arm.ranker_version,
                        arm.mmr_lambda,
                        arm.bandit_enabled,
                        arm.popularity_only,
                    )
                    for arm in arms
                ),
            )
        )
    return tuple(loaded)


class ExperimentsCache:
    """This process's running experiments, reloaded at most every `check_seconds`
    (RECO_EXPERIMENTS_CHECK_SECONDS when None, read at each check)."""

    def __init__(self, *, check_seconds: float | None = None) -> None:
        self._check_seconds = check_seconds
        self._experiments: VersionedSnapshot[None, tuple[RunningExperiment, ...]] = VersionedSnapshot(
            "running experiments",  # no version: loaded again at every check
            build=lambda _version, _previous: running_experiments_load(),
            check_seconds=lambda: self.check_seconds,
            log=log,
        )

    @property
    def check_seconds(self) -> float:
        return settings.RECO_EXPERIMENTS_CHECK_SECONDS if self._check_seconds is None else self._check_seconds

    def current(self) -> tuple[RunningExperiment, ...]:
        """The running experiments; on a database error, the last ones loaded (none if never loaded)."""
        try:
            return self._experiments.get()
        except Exception:  # never loaded: no experiment until the database answers (tried on the next call)
            log.exception("could not load the running experiments; serving none")
            return ()

    def expire(self) -> None:
        """Reload on the next call (this process only; others follow within check_seconds)."""
        self._experiments.expire()


experiments_cache = ExperimentsCache()


def assignment_for(profile_id: int, *, now: dt.datetime | None = None) -> Assignment | None:
    """The profile's arm in the experiment running now (the lowest id if several run), or None.

    Deterministic: the same profile gets the same arm on every request and in every process."""
    now = now or timezone.now()
    for experiment in experiments_cache.current():
        if experiment.live_at(now):
            return experiment.arms[assign_arm(profile_id, experiment.salt, experiment.shares)]
    return None


# --- metrics ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ArmMetric:
    metric: str
    value: float
    ci_low: float
    ci_high: float
    n: int
    successes: int | None = None  # proportions
    summary: metrics.MeanSummary | None = None  # means


def _proportion(metric: str, successes: int, trials: int) -> ArmMetric:
    low, high = metrics.wilson_interval(successes, trials)
    return ArmMetric(metric, successes / trials if trials else math.nan, low, high, trials, successes=successes)


def _mean(metric: str, n: int, total: float, squares: float) -> ArmMetric:
    summary = metrics.mean_from_moments(n, total, squares)
    return ArmMetric(metric, summary.mean, summary.ci_low, summary.ci_high, n, summary=summary)


def _arm_metrics(
    funnel: selectors.ArmTitleFunnel | None, session: selectors.Moments | None, head: np.ndarray, catalog_size: int
) -> dict[str, ArmMetric]:
    impressions = int(funnel.impressions.sum()) if funnel else 0
    clicked = int(funnel.clicked.sum()) if funnel else 0
    played = int(funnel.played.sum()) if funnel else 0
    completed = int(funnel.completed.sum()) if funnel else 0
    tail_plays = int(funnel.played[~np.isin(funnel.title_ids, head)].sum()) if funnel else 0
    discovered = int((funnel.recent_played > 0).sum()) if funnel else 0
    engagement_total = float(funnel.engagement.sum()) if funnel else 0.0
    engagement_squares = float(funnel.engagement_squares.sum()) if funnel else 0.0
    session = session or selectors.Moments(0, 0.0, 0.0)
    return {
        Metric.CTR: _proportion(Metric.CTR, clicked, impressions),
        Metric.PLAY_RATE: _proportion(Metric.PLAY_RATE, played, clicked),
        Metric.COMPLETION_RATE: _proportion(Metric.COMPLETION_RATE, completed, played),
        Metric.ENGAGEMENT: _mean(Metric.ENGAGEMENT, impressions, engagement_total, engagement_squares),
        Metric.SESSION_MINUTES: _mean(Metric.SESSION_MINUTES, session.n, session.total, session.total_squares),
        # Distinct titles are not independent trials: no interval or test. It grows with the arm's traffic,
        # so compare arms of equal shares.
        Metric.DISCOVERY: ArmMetric(
            Metric.DISCOVERY, discovered / catalog_size if catalog_size else math.nan, math.nan, math.nan, played
        ),
        Metric.LONG_TAIL: _proportion(Metric.LONG_TAIL, tail_plays, played),
    }


def _versus(treatment: ArmMetric, baseline: ArmMetric) -> tuple[float | None, float | None]:
    """(difference, p-value) against the baseline, or (None, None) where no test applies."""
    if treatment.successes is not None and baseline.successes is not None and treatment.n and baseline.n:
        test = metrics.two_proportion_ztest(treatment.successes, treatment.n, baseline.successes, baseline.n)
        return treatment.value - baseline.value, test.p_value
    if treatment.summary is not None and baseline.summary is not None and treatment.n >= 2 and baseline.n >= 2:
        test = metrics.welch_ztest(treatment.summary, baseline.summary)
        return treatment.value - baseline.value, test.p_value
    return None, None


def _finite(value: float) -> float | None:
    return None if value is None or math.isnan(value) else float(value)


def experiment_metrics_compute(*, experiment_id: int, now: dt.datetime | None = None) -> list[ExperimentResult]:
    """Compute every metric of every arm from the events and store them as the experiment's newest results
    (earlier computations are kept: they are the metrics over time)."""
    now = now or timezone.now()
    experiment = Experiment.objects.prefetch_related("arms").get(pk=experiment_id)
    arms = list(experiment.arms.all())
    start = experiment.starts_at
    end = min(experiment.ends_at or now, now)
    funnels = selectors.arm_title_funnels(experiment=experiment.name, start=start, end=end) if end > start else {}
    sessions = selectors.arm_session_minutes(experiment=experiment.name, start=start, end=end) if end > start else {}
    head = selectors.head_title_ids(end=end)
    catalog_size = selectors.catalog_size()
    per_arm = {arm.pk: _arm_metrics(funnels.get(arm.name), sessions.get(arm.name), head, catalog_size) for arm in arms}
    baseline = next((arm for arm in arms if arm.is_baseline), None)

    rows = []
    for arm in arms:
        for metric, measured in per_arm[arm.pk].items():
            delta = p_value = None
            if baseline is not None and arm != baseline:
                delta, p_value = _versus(measured, per_arm[baseline.pk][metric])
            rows.append(
                ExperimentResult(
                    experiment=experiment,
                    arm=arm,
                    metric=metric,
                    value=_finite(measured.value),
                    ci_low=_finite(measured.ci_low),
                    ci_high=_finite(measured.ci_high),
                    n=measured.n,
                    delta_vs_baseline=_finite(delta),
                    p_value_vs_baseline=_finite(p_value),
                    significant=None if p_value is None else p_value < metrics.ALPHA,
                    computed_at=now,
                )
            )
        if baseline is not None and arm != baseline:
            rows.append(_lift_row(experiment, arm, per_arm[arm.pk], per_arm[baseline.pk], now))
    with transaction.atomic():
        ExperimentResult.objects.filter(experiment=experiment, computed_at=now).delete()  # a rerun at the same instant
        return ExperimentResult.objects.bulk_create(rows)


def _lift_row(
    experiment: Experiment, arm: Arm, measured: dict[str, ArmMetric], baseline: dict[str, ArmMetric], now: dt.datetime
) -> ExperimentResult:
    """Engagement per impression relative to the baseline arm (0.1 = 10 % more), tested like engagement."""
    treatment, reference = measured[Metric.ENGAGEMENT].summary, baseline[Metric.ENGAGEMENT].summary
    lift = metrics.lift_with_ci(treatment.mean, treatment.standard_error, reference.mean, reference.standard_error)
    _, p_value = _versus(measured[Metric.ENGAGEMENT], baseline[Metric.ENGAGEMENT])
    return ExperimentResult(
        experiment=experiment,
        arm=arm,
        metric=Metric.LIFT,
        value=_finite(lift.value),
        ci_low=_finite(lift.ci_low),
        ci_high=_finite(lift.ci_high),
        n=treatment.n,
        delta_vs_baseline=_finite(lift.value),
        p_value_vs_baseline=_finite(p_value),
        significant=None if p_value is None else p_value < metrics.ALPHA,
        computed_at=now,
    )


def experiment_metrics_request(*, experiment_ids: Sequence[int]) -> None:
    """Queue a metrics computation of these experiments once the transaction commits."""
    from tasks.experiments import compute_experiment_metrics as compute_experiment_metrics_task

    for experiment_id in experiment_ids:
        transaction.on_commit(lambda pk=experiment_id: compute_experiment_metrics_task.delay(experiment_id=pk))


def experiments_to_measure(
    *, now: dt.datetime | None = None, stopped_within: dt.timedelta = dt.timedelta(days=2)
) -> QuerySet[Experiment]:
    """Running experiments, and those stopped or ended recently (one last computation after the end)."""
    recent = (now or timezone.now()) - stopped_within
    started = Experiment.objects.exclude(status=Experiment.Status.DRAFT)
    return started.filter(
        Q(status=Experiment.Status.RUNNING) | Q(updated_at__gte=recent) | Q(ends_at__gte=recent)
    ).order_by("id")
