"""ranking/ml/rules.py and diversify.py are library code: importing them must not load Django."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_rules_and_diversify_import_without_django():
    script = "import ranking.ml.rules, ranking.ml.diversify, sys; print('django' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},  # no DJANGO_SETTINGS_MODULE to lean on
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
