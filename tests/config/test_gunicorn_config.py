"""config/gunicorn.py reads its environment through the typed helpers: off means off, garbage stops it (#14)."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

CONFIG = Path(__file__).resolve().parents[2] / "config" / "gunicorn.py"


def _load(monkeypatch, **env: str) -> dict:
    for name in ("GUNICORN_PRELOAD", "WEB_CONCURRENCY", "GUNICORN_BIND", "GUNICORN_TIMEOUT"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(CONFIG))


def test_defaults_preload_two_workers_on_localhost(monkeypatch):
    config = _load(monkeypatch)
    assert (config["preload_app"], config["workers"], config["bind"], config["timeout"]) == (
        True,
        2,
        "127.0.0.1:8000",
        60,
    )


@pytest.mark.parametrize("value", ["0", "false", "off", "OFF", " False "])
def test_every_spelling_of_off_turns_preloading_off(monkeypatch, value):
    assert _load(monkeypatch, GUNICORN_PRELOAD=value)["preload_app"] is False


@pytest.mark.parametrize("value", ["1", "true", "on"])
def test_every_spelling_of_on_turns_preloading_on(monkeypatch, value):
    assert _load(monkeypatch, GUNICORN_PRELOAD=value)["preload_app"] is True


@pytest.mark.parametrize(
    "env",
    [
        {"GUNICORN_PRELOAD": "no"},
        {"GUNICORN_PRELOAD": "yes please"},
        {"WEB_CONCURRENCY": "four"},
        {"GUNICORN_TIMEOUT": "60s"},
    ],
)
def test_a_malformed_value_stops_gunicorn_instead_of_being_guessed(monkeypatch, env):
    with pytest.raises(ImproperlyConfigured):
        _load(monkeypatch, **env)


def test_workers_come_from_web_concurrency(monkeypatch):
    assert _load(monkeypatch, WEB_CONCURRENCY="4")["workers"] == 4
