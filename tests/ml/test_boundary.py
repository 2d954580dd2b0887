"""recommendations/ml is a library: importing every module of it must not load Django."""
from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

import recommendations.ml

ROOT = Path(__file__).resolve().parents[2]


def test_every_ml_module_imports_without_django():
    modules = [f"recommendations.ml.{info.name}" for info in pkgutil.iter_modules(recommendations.ml.__path__)]
    assert len(modules) >= 9
    script = "; ".join([*(f"import {name}" for name in modules), "import sys", "print('django' in sys.modules)"])
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},  # no DJANGO_SETTINGS_MODULE to lean on
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
