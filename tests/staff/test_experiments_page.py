"""Experiments: per arm, online metrics with intervals plotted over the computations, and the verdict."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from experiments.models import Metric
from tests.factories.experiments import ArmFactory, ExperimentFactory, ExperimentResultFactory

EXPERIMENTS = reverse("staff:experiments")


def _experiment(name: str = "ranker-v7-vs-v6"):
    experiment = ExperimentFactory(name=name)
    control = ArmFactory(experiment=experiment, name="control", is_baseline=True, traffic_share=Decimal("0.5"))
    treatment = ArmFactory(experiment=experiment, name="new-ranker", traffic_share=Decimal("0.5"), mmr_lambda=0.6)
    now = timezone.now()
    ExperimentResultFactory(
        arm=control, metric=Metric.ENGAGEMENT, value=0.10, ci_low=0.09, ci_high=0.11, computed_at=now
    )
    ExperimentResultFactory(
        arm=treatment,
        metric=Metric.ENGAGEMENT,
        value=0.13,
        ci_low=0.12,
        ci_high=0.14,
        delta_vs_baseline=0.03,
        p_value_vs_baseline=0.001,
        significant=True,
        computed_at=now,
    )
    ExperimentResultFactory(arm=control, metric=Metric.CTR, value=0.05, computed_at=now - dt.timedelta(minutes=1))
    ExperimentResultFactory(
        arm=treatment,
        metric=Metric.CTR,
        value=0.051,
        delta_vs_baseline=0.001,
        p_value_vs_baseline=0.4,
        significant=False,
        computed_at=now - dt.timedelta(minutes=1),
    )
    return experiment


def test_arms_metrics_intervals_plots_and_verdict(editor_client):
    _experiment()

    html = editor_client.get(EXPERIMENTS).content.decode()

    assert 'data-experiment="ranker-v7-vs-v6"' in html
    assert "control <em>(baseline)</em>" in html and "MMR λ 0.6" in html
    assert '<li data-arm="new-ranker"><strong>new-ranker</strong>: higher than baseline on engagement' in html
    assert "[0.1200, 0.1400]" in html
    assert html.count('<svg class="chart"') == 2  # one plot per metric
    assert 'class="errorbar"' in html  # the intervals
    assert "no significant difference" in html  # CTR


def test_an_experiment_without_results_says_so(editor_client):
    ExperimentFactory(name="fresh")
    html = editor_client.get(EXPERIMENTS).content.decode()
    assert "No results computed yet." in html and "No verdict yet" in html


def test_the_page_takes_the_same_queries_for_one_or_five_experiments(editor_client):
    _experiment("first")
    with CaptureQueriesContext(connection) as one:
        editor_client.get(EXPERIMENTS)
    for number in range(4):
        _experiment(f"more-{number}")
    with CaptureQueriesContext(connection) as five:
        editor_client.get(EXPERIMENTS)
    assert len(five) == len(one)
