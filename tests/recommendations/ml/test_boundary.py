"""The ML code is a library that Django services wrap: importing any of it must not load Django."""

from __future__ import annotations

import importlib.util
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


def package_modules(package: str) -> list[str]:
    """Every module of a package, found without importing them."""
    path = importlib.util.find_spec(package).submodule_search_locations
    return [f"{package}.{info.name}" for info in pkgutil.iter_modules(path)]


LIBRARIES = {
    "recommendations.ml": package_modules("recommendations.ml"),
    "ranking.ml": package_modules("ranking.ml"),  # ranker, features, training data, rules, MMR, bandit
    "experiments statistics": ["experiments.ml.assignment", "experiments.ml.metrics"],
}


def test_the_packages_hold_the_modules_we_expect():
    assert len(LIBRARIES["recommendations.ml"]) >= 9
    assert {"ranking.ml.ranker", "ranking.ml.rules", "ranking.ml.diversify", "ranking.ml.bandit"} <= set(
        LIBRARIES["ranking.ml"]
    )


@pytest.mark.parametrize("library", list(LIBRARIES))
def test_library_imports_without_django(library):
    modules = LIBRARIES[library]
    script = "; ".join([*(f"import {name}" for name in modules), "import sys", "print('django' in sys.modules)"])
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},  # no DJANGO_SETTINGS_MODULE to lean on
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
