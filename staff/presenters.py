"""What the models and experiments pages draw: table rows and SVG plots, from what the selectors read."""

from __future__ import annotations

from typing import Any

from django.utils import timezone
from django.utils.safestring import mark_safe

from experiments.models import Experiment, Metric
from recommendations.models import ModelVersion
from staff import plots, selectors

METRIC_LABELS = {
    "ndcg_at_10": "NDCG@10",
    "recall_at_500": "recall@500",
    "recall_at_10": "recall@10",
    "map_at_10": "MAP@10",
    "precision_at_10": "P@10",
    "baseline_ndcg_at_10": "NDCG@10 without ranker",
    "users": "users",
    "queries": "queries",
}


def model_sections(kinds: list[selectors.KindVersions]) -> list[dict[str, Any]]:
    """Per kind: its plot, how long the active version has served, and the metric cells of each version."""
    now = timezone.now()
    return [
        {
            "kind": k,
            "plot": mark_safe(_model_plot(k)),
            "active_age": selectors.age_of(k.active.activated_at if k.active else None, now=now),
            "rows": [
                {"version": v, "metrics": [_metric(v.metrics.get(name)) for name in k.metric_names]} for v in k.versions
            ],
            "metric_labels": [METRIC_LABELS.get(name, name) for name in k.metric_names],
        }
        for k in kinds
    ]


def _metric(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "—"
    return f"{value:,}" if isinstance(value, int) else f"{value:.4f}"


def _version_label(version: ModelVersion) -> str:
    return f"{version.created_at:%m-%d %H:%M}"


def _model_plot(kind: selectors.KindVersions) -> str:
    versions = list(reversed(kind.versions))  # oldest first, left to right
    recall = selectors.recall_metric_of(kind.versions)
    series = []
    for name, label in (
        ("ndcg_at_10", "NDCG@10"),
        (recall, "candidate recall" if recall != "recall_at_10" else "recall@10"),
    ):
        if name is None:
            continue
        series.append(
            plots.Series(
                label,
                tuple(
                    plots.Point(
                        x=i,
                        y=v.metrics.get(name) if isinstance(v.metrics.get(name), int | float) else None,
                        label=f"{v.version} ({v.status}): {label} {v.metrics.get(name)}",
                        highlight=v.status == ModelVersion.Status.ACTIVE,
                    )
                    for i, v in enumerate(versions)
                ),
            )
        )
    step = max(1, len(versions) // 6)
    ticks = [(i, _version_label(v)) for i, v in enumerate(versions) if i % step == 0]
    return plots.line_chart(series, title=f"{kind.label}: offline metrics by version (ringed: active)", x_ticks=ticks)


def experiment_view(experiment: Experiment) -> dict[str, Any]:
    """Per metric: a plot of each arm over the computations stored (value and its confidence interval), the
    rows of the latest computation, and the verdicts of the arms against the baseline."""
    results = list(experiment.results.all())
    by_metric: dict[str, list] = {}
    for result in results:
        by_metric.setdefault(result.metric, []).append(result)
    labels = dict(Metric.choices)
    metrics = []
    for metric, rows in by_metric.items():
        times = sorted({r.computed_at for r in rows})
        series = []
        for arm in experiment.arms.all():
            points = tuple(
                plots.Point(
                    x=r.computed_at.timestamp(),
                    y=r.value,
                    low=r.ci_low,
                    high=r.ci_high,
                    label=f"{arm.name} {r.computed_at:%Y-%m-%d %H:%M}: {r.value} [{r.ci_low}, {r.ci_high}], n={r.n}",
                )
                for r in rows
                if r.arm_id == arm.pk
            )
            if points:
                series.append(plots.Series(arm.name + (" (baseline)" if arm.is_baseline else ""), points))
        ticks = [(t.timestamp(), f"{t:%m-%d %H:%M}") for t in times[:: max(1, len(times) // 5)]]
        latest = [r for r in rows if r.computed_at == times[-1]]
        short = labels.get(metric, metric).split(" (")[0]
        plot = plots.line_chart(series, title=f"{short}, 95 % intervals", x_ticks=ticks, width=420, height=200, dodge=8)
        metrics.append(
            {
                "metric": metric,
                "label": labels.get(metric, metric),
                "plot": mark_safe(plot),
                "latest": latest,
                "computed_at": times[-1],
            }
        )
    # The verdict rests on personalization lift when it was measured, else engagement, else the first metric.
    headline = next(
        (m for name in ("lift", "engagement") for m in metrics if m["metric"] == name), metrics[0] if metrics else None
    )
    verdicts = [
        {
            "arm": r.arm,
            "verdict": r.verdict,
            "delta": r.delta_vs_baseline,
            "p": r.p_value_vs_baseline,
            "significant": r.significant,
            "metric": headline["label"],
        }
        for r in (headline["latest"] if headline else [])
        if not r.arm.is_baseline
    ]
    return {"experiment": experiment, "arms": list(experiment.arms.all()), "metrics": metrics, "verdicts": verdicts}
