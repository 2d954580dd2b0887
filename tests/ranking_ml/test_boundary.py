"""ranking/ml is a library: importing the ranker's modules must not load Django."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MODULES = ("ranking.ml.features", "ranking.ml.ranker", "ranking.ml.training_data")


def test_ranker_modules_import_without_django():
    script = "; ".join([*(f"import {name}" for name in MODULES), "import sys", "print('django' in sys.modules)"])
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
