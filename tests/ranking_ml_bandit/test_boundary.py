"""The bandit, the assignment and the experiment statistics are library code: importing them must not load Django."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bandit_assignment_and_metrics_import_without_django():
    script = ("import ranking.ml.bandit, experiments.assignment, experiments.metrics, sys; "
              "print('django' in sys.modules)")  # fmt: skip
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},  # no DJANGO_SETTINGS_MODULE to lean on
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
