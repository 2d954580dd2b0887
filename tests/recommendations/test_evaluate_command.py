"""`manage.py evaluate`: the offline evaluation command on a tiny MovieLens-100k-shaped directory."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from tests.recommendations.ml.test_evaluation import _other_layouts, write_tiny_ml100k


def test_quick_evaluation_writes_json_and_plot_and_prints_the_table(tmp_path):
    data_dir = write_tiny_ml100k(tmp_path / "ml-100k")
    out = StringIO()
    call_command(
        "evaluate",
        "--dataset",
        str(data_dir),
        "--quick",
        "--threads",
        "1",
        "--json",
        str(tmp_path / "eval.json"),
        "--png",
        str(tmp_path / "eval.png"),
        stdout=out,
    )
    result = json.loads((tmp_path / "eval.json").read_text())
    assert result["quick"] and len(result["rows"]) == 9
    assert (tmp_path / "eval.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    printed = out.getvalue()
    assert "merged candidates" in printed and "continue_watching" in printed and "recall@500" in printed


def test_missing_directory_is_a_command_error(tmp_path):
    with pytest.raises(CommandError, match="nowhere: is not a directory"):
        call_command(
            "evaluate",
            "--data-dir",
            str(tmp_path / "nowhere"),
            "--quick",
            "--json",
            str(tmp_path / "eval.json"),
            "--png",
            str(tmp_path / "eval.png"),
            verbosity=0,
        )
    assert not (tmp_path / "eval.json").exists()


def test_malformed_file_is_a_command_error_naming_the_line(tmp_path):
    data_dir = write_tiny_ml100k(tmp_path / "ml-100k")
    with open(data_dir / "u.data", "a") as handle:
        handle.write("7\t3\n")
    lines = len((data_dir / "u.data").read_text().splitlines())
    with pytest.raises(CommandError, match=rf"u\.data:{lines}: expected 4 fields"):
        call_command(
            "evaluate",
            "--data-dir",
            str(data_dir),
            "--quick",
            "--json",
            str(tmp_path / "eval.json"),
            "--png",
            str(tmp_path / "eval.png"),
            verbosity=0,
        )


def test_an_ml_1m_layout_is_evaluated_too(tmp_path):
    one_m = _other_layouts(write_tiny_ml100k(tmp_path / "ml-100k"), tmp_path)["ml-1m"]
    out = StringIO()
    call_command(
        "evaluate",
        "--dataset",
        str(one_m),
        "--quick",
        "--threads",
        "1",
        "--json",
        str(tmp_path / "eval.json"),
        "--png",
        str(tmp_path / "eval.png"),
        stdout=out,
    )
    result = json.loads((tmp_path / "eval.json").read_text())
    assert result["layout"] == "ml-1m" and len(result["rows"]) == 9
    assert "ml-1m: merged candidates recall@500" in out.getvalue()
