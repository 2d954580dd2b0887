"""Schemathesis over every operation of /api/schema/ against gunicorn, with every check it has.

Issue #14's figure (bench/reliability.py, >= 10,000 cases): no response >= 500 and no schema violation, which
includes status codes and content types the schema does not document. Here a small case budget (about a
minute on 2 cores) with a fixed seed, so a failure reproduces.
"""

from __future__ import annotations

import pytest

from tests.faultkit import schemathesis_run
from tests.reliability.conftest import ServedWorld

pytestmark = pytest.mark.reliability

CASES_PER_OPERATION = 150


def test_schemathesis_finds_no_server_error_and_no_schema_violation(served_world: ServedWorld, tmp_path):
    result = schemathesis_run(
        served_world.server.url,
        api_key=served_world.api_key,
        report_dir=tmp_path,
        max_examples=CASES_PER_OPERATION,
        seed=14,
        timeout=150,
    )
    assert result.operations >= 3, f"the schema lists too few operations:\n{result.output_tail}"
    assert result.cases >= 100, f"too few cases ran:\n{result.output_tail}"
    assert result.failures == {}, f"schemathesis failed ({result.cases} cases):\n{result.output_tail}"
    assert result.exit_code == 0, result.output_tail
