"""Compute and print the per-arm metrics of experiments (what the hourly job stores and the admin shows)."""

from __future__ import annotations

import json
import math
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from experiments.models import Experiment, ExperimentResult, Metric
from experiments.services import experiment_metrics_compute, experiments_to_measure


class Command(BaseCommand):
    help = (
        "Recompute the metrics of the named experiments (default: the running ones and those ended in the last two "
        "days) from the events, store them as the job does, and print one table per experiment: value, 95 % "
        "interval, n, and the p-value against the baseline arm."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("names", nargs="*", help="experiment names (default: running and recently ended)")
        parser.add_argument("--json", dest="json_path", type=Path, help="also write the results to this file")

    def handle(self, *args, names: list[str], json_path: Path | None, **options) -> None:
        experiments = list(Experiment.objects.filter(name__in=names)) if names else list(experiments_to_measure())
        missing = set(names) - {experiment.name for experiment in experiments}
        if missing:
            raise CommandError(f"No experiment named {', '.join(sorted(missing))}.")
        report = {}
        for experiment in experiments:
            results = experiment_metrics_compute(experiment_id=experiment.pk)
            report[experiment.name] = [_as_dict(result) for result in results]
            self.stdout.write(_table(experiment, results))
        if json_path is not None:
            json_path.write_text(json.dumps(report, indent=2, default=str) + "\n")
        self.stdout.write(self.style.SUCCESS(f"{len(experiments)} experiment(s) measured."))


def _as_dict(result: ExperimentResult) -> dict:
    fields = ("metric", "value", "ci_low", "ci_high", "n", "delta_vs_baseline", "p_value_vs_baseline", "significant")
    return {"arm": result.arm.name, **{name: getattr(result, name) for name in fields}, "verdict": result.verdict}


def _shown(value: float | None, digits: int = 4) -> str:
    return "—" if value is None or math.isnan(value) else f"{value:.{digits}f}"


def _table(experiment: Experiment, results: list[ExperimentResult]) -> str:
    lines = [
        f"\n{experiment.name} ({experiment.get_status_display().lower()})",
        f"{'metric':<17}{'arm':<16}{'value':>10}{'95 % interval':>22}{'n':>10}{'p vs base':>11}  verdict",
    ]
    for result in sorted(results, key=lambda r: (list(Metric.values).index(r.metric), r.arm_id)):
        interval = f"[{_shown(result.ci_low)}, {_shown(result.ci_high)}]" if result.ci_low is not None else "—"
        lines.append(
            f"{result.metric:<17}{result.arm.name:<16}{_shown(result.value):>10}{interval:>22}{result.n:>10,}"
            f"{_shown(result.p_value_vs_baseline, 3):>11}  {result.verdict}"
        )
    return "\n".join(lines)
