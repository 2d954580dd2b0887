"""Per-arm metrics from hand-made events: every figure below is counted by hand in the docstring's table."""

from __future__ import annotations

import datetime as dt
import math

import pytest
from django.utils import timezone

from events.models import EventType
from experiments.ml.metrics import two_proportion_ztest
from experiments.models import ExperimentResult, Metric
from experiments.services import experiment_metrics_compute, experiments_to_measure
from tests.factories.catalog import TitleFactory
from tests.factories.events import EventFactory
from tests.factories.experiments import ArmFactory, ExperimentFactory
from tests.factories.users import ProfileFactory, ViewingEventFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(api_client_app):
    """Five 100-minute titles; t1 is the most viewed (the head: the top 20 % of 5 titles is 1).

    arm      request title  events after the impression           clicked played completed engagement
    control  r1      t1     click, play, progress 0.8             1       1      1         1.0
    control  r1      t2     click                                 1       0      0         0.1
    control  r2      t1     —                                     0       0      0         0
    control  r2      t3     —                                     0       0      0         0
    treat    r3      t2     play (no click event), progress 0.5   1       1      0         0.4
    treat    r3      t4     complete                              1       1      1         1.0
    treat    r4      t5     click                                 1       0      0         0.1
    treat    r5      t4     —                                     0       0      0         0
    Visits: r1 80 min, r2 0 | r3 50 + 100 min, r4 0, r5 0.
    """
    now = timezone.now()
    experiment = ExperimentFactory(name="exp", starts_at=now - dt.timedelta(days=2))
    control = ArmFactory(experiment=experiment, name="control", is_baseline=True)
    treat = ArmFactory(experiment=experiment, name="treat")
    t1, t2, t3, t4, t5 = TitleFactory.create_batch(5, duration_minutes=100)
    for _ in range(3):
        ViewingEventFactory(title=t1, started_at=now - dt.timedelta(days=3))
    ViewingEventFactory(title=t2, started_at=now - dt.timedelta(days=3))
    profile = ProfileFactory()
    at = now - dt.timedelta(hours=5)

    def event(kind, request, title, arm="", **fields):
        return EventFactory(
            client=api_client_app,
            profile=profile,
            type=kind,
            request_id=request,
            title=title,
            occurred_at=at,
            experiment="exp" if arm else "",
            arm=arm,
            **fields,
        )

    for request, titles, arm in (
        ("r1", (t1, t2), "control"),
        ("r2", (t1, t3), "control"),
        ("r3", (t2, t4), "treat"),
        ("r4", (t5,), "treat"),
        ("r5", (t4,), "treat"),
    ):
        for title in titles:
            event(EventType.IMPRESSION, request, title, arm, policy="ranker")
    event(EventType.IMPRESSION, "r1", t1, "control")  # shown twice in one response: one impression
    # Outcomes carry the request id only: they are attributed through the impression.
    event(EventType.CLICK, "r1", t1)
    event(EventType.PLAY, "r1", t1, watch_percentage=0.0)
    event(EventType.PROGRESS, "r1", t1, watch_percentage=0.8)
    event(EventType.CLICK, "r1", t2)
    event(EventType.PLAY, "r3", t2)
    event(EventType.PROGRESS, "r3", t2, watch_percentage=0.5)
    event(EventType.COMPLETE, "r3", t4, watch_percentage=1.0)
    event(EventType.CLICK, "r4", t5)
    # Noise that must not count: a click on a title the response did not show, another experiment, before start.
    event(EventType.CLICK, "r1", t5)
    EventFactory(
        client=api_client_app,
        profile=profile,
        type=EventType.IMPRESSION,
        request_id="x1",
        title=t3,
        occurred_at=at,
        experiment="other",
        arm="control",
    )
    EventFactory(
        client=api_client_app,
        profile=profile,
        type=EventType.IMPRESSION,
        request_id="old",
        title=t3,
        occurred_at=now - dt.timedelta(days=3),
        experiment="exp",
        arm="control",
    )
    return experiment, control, treat


def results(experiment) -> dict[tuple[str, str], ExperimentResult]:
    return {
        (r.arm.name, r.metric): r for r in ExperimentResult.objects.filter(experiment=experiment).select_related("arm")
    }


def test_metrics_per_arm_match_the_hand_counts(world):
    experiment, _, _ = world

    experiment_metrics_compute(experiment_id=experiment.pk)

    got = results(experiment)
    assert len(got) == 2 * 7 + 1
    expected = {
        Metric.CTR: (0.5, 4, 0.75, 4),
        Metric.PLAY_RATE: (0.5, 2, 2 / 3, 3),
        Metric.COMPLETION_RATE: (1.0, 1, 0.5, 2),
        Metric.ENGAGEMENT: (1.1 / 4, 4, 1.5 / 4, 4),
        Metric.SESSION_MINUTES: (40.0, 2, 50.0, 3),
        Metric.DISCOVERY: (1 / 5, 1, 2 / 5, 2),
        Metric.LONG_TAIL: (0.0, 1, 1.0, 2),
    }
    for metric, (control_value, control_n, treat_value, treat_n) in expected.items():
        assert (got["control", metric].value, got["control", metric].n) == (pytest.approx(control_value), control_n), (
            metric
        )
        assert (got["treat", metric].value, got["treat", metric].n) == (pytest.approx(treat_value), treat_n), metric
    assert got["treat", Metric.LIFT].value == pytest.approx(1.5 / 1.1 - 1)


def test_intervals_and_tests_against_the_baseline(world):
    experiment, _, _ = world
    experiment_metrics_compute(experiment_id=experiment.pk)
    got = results(experiment)

    ctr = got["treat", Metric.CTR]
    assert ctr.ci_low < 0.75 < ctr.ci_high
    assert ctr.delta_vs_baseline == pytest.approx(0.25)
    assert ctr.p_value_vs_baseline == pytest.approx(two_proportion_ztest(3, 4, 2, 4).p_value)
    assert ctr.significant is False and ctr.verdict == "no significant difference"
    baseline = got["control", Metric.CTR]
    assert baseline.p_value_vs_baseline is None and baseline.verdict == "baseline"
    assert got["treat", Metric.DISCOVERY].ci_low is None  # no interval for a count of distinct titles
    lift = got["treat", Metric.LIFT]
    assert lift.ci_low < lift.value < lift.ci_high


def test_recomputing_keeps_the_history_and_the_latest_set_is_served(world):
    import datetime as dt

    from experiments.selectors import experiment_results

    experiment, _, _ = world
    now = timezone.now()
    first = {r.pk for r in experiment_metrics_compute(experiment_id=experiment.pk, now=now)}
    second = experiment_metrics_compute(experiment_id=experiment.pk, now=now + dt.timedelta(hours=1))
    assert len(second) == 15 and not first & {r.pk for r in second}
    assert ExperimentResult.objects.filter(experiment=experiment).count() == 30  # metrics over time
    assert {r.pk for r in experiment_results(experiment_id=experiment.pk)} == {r.pk for r in second}
    again = experiment_metrics_compute(experiment_id=experiment.pk, now=now + dt.timedelta(hours=1))
    assert ExperimentResult.objects.filter(experiment=experiment).count() == 30 and len(again) == 15


def test_an_arm_without_events_gets_empty_values_not_errors(api_client_app):
    experiment = ExperimentFactory()
    ArmFactory(experiment=experiment, name="a", is_baseline=True)
    ArmFactory(experiment=experiment, name="b")

    rows = experiment_metrics_compute(experiment_id=experiment.pk)

    ctr = next(r for r in rows if r.metric == Metric.CTR and r.arm.name == "b")
    assert (ctr.value, ctr.n, ctr.p_value_vs_baseline) == (None, 0, None)
    assert not any(r.value is not None and math.isnan(r.value) for r in rows)


def test_running_and_recently_ended_experiments_are_measured():
    running = ExperimentFactory()
    ExperimentFactory(status="draft")
    ended = ExperimentFactory(status="stopped")
    old = ExperimentFactory(
        status="stopped",
        starts_at=timezone.now() - dt.timedelta(days=30),
        ends_at=timezone.now() - dt.timedelta(days=20),
    )
    type(old).objects.filter(pk=old.pk).update(updated_at=timezone.now() - dt.timedelta(days=20))
    assert set(experiments_to_measure()) == {running, ended}


def test_command_prints_and_stores_the_metrics(world, tmp_path):
    from io import StringIO

    from django.core.management import call_command

    experiment, _, _ = world
    out = StringIO()
    call_command("experiment_metrics", "exp", "--json", str(tmp_path / "exp.json"), stdout=out)

    printed = out.getvalue()
    assert "ctr" in printed and "no significant difference" in printed and "1 experiment(s) measured" in printed
    assert ExperimentResult.objects.filter(experiment=experiment).count() == 15
    assert '"verdict": "baseline"' in (tmp_path / "exp.json").read_text()


def test_command_refuses_an_unknown_experiment():
    from django.core.management import call_command
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="No experiment named nope"):
        call_command("experiment_metrics", "nope")
