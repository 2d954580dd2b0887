"""The pure feature code (definitions, compute, codec) never loads Django."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
PURE_MODULES = ["features.ml.definitions", "features.ml.compute", "features.ml.codec"]


def test_pure_feature_modules_do_not_import_django():
    script = "import sys\n" + "".join(f"import {m}\n" for m in PURE_MODULES) + "print('django' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True, env=dict(os.environ)
    )
    assert result.stdout.strip() == "False"
