"""Settings come from the environment, fail loudly on bad values, and reach the real services."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured

from config.settings.env import env_bool, env_int, env_list, parse_database_url

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("raw", "expected"), [("1", True), ("true", True), ("ON", True), ("0", False), ("off", False)])
def test_env_bool_reads_plain_words(monkeypatch, raw, expected):
    monkeypatch.setenv("RECO_FLAG", raw)
    assert env_bool("RECO_FLAG") is expected


def test_env_bool_refuses_a_guess(monkeypatch):
    monkeypatch.setenv("RECO_FLAG", "yes please")
    with pytest.raises(ImproperlyConfigured, match="RECO_FLAG"):
        env_bool("RECO_FLAG")


def test_env_int_and_list(monkeypatch):
    monkeypatch.setenv("RECO_N", "12")
    monkeypatch.setenv("RECO_HOSTS", "a.example, b.example,")
    assert env_int("RECO_N", 3) == 12
    assert env_list("RECO_HOSTS") == ["a.example", "b.example"]
    monkeypatch.setenv("RECO_N", "twelve")
    with pytest.raises(ImproperlyConfigured):
        env_int("RECO_N", 3)


def test_database_url_parsing():
    config = parse_database_url("postgres://reco:s%40cret@db.internal:6543/reco?sslmode=require")
    assert config["ENGINE"] == "config.db"  # Django's PostgreSQL backend with deadlines and a breaker
    assert (config["USER"], config["PASSWORD"], config["HOST"], config["PORT"], config["NAME"]) == (
        "reco",
        "s@cret",
        "db.internal",
        "6543",
        "reco",
    )
    assert config["OPTIONS"] == {"sslmode": "require"}
    assert parse_database_url("sqlite:////tmp/x.sqlite3")["NAME"] == "/tmp/x.sqlite3"
    with pytest.raises(ImproperlyConfigured, match="scheme"):
        parse_database_url("mysql://x@y/z")
    with pytest.raises(ImproperlyConfigured, match="names no database"):
        parse_database_url("postgres://x@y:5432/")


def test_cache_round_trip_with_expiry():
    key = f"test:{uuid.uuid4()}"
    cache.set(key, {"answer": 42}, timeout=1)
    assert cache.get(key) == {"answer": 42}
    time.sleep(1.2)
    assert cache.get(key) is None


def test_configured_redis_is_really_used():
    if not settings.REDIS_URL:
        pytest.skip("no REDIS_URL: the embedded local-memory cache is in use")
    import redis

    client = redis.Redis.from_url(settings.REDIS_URL)
    cache.set("probe", "here", timeout=30)
    assert any(key.endswith(b":probe") for key in client.keys("*probe"))


def test_production_settings_pass_deploy_checks():
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        "SECRET_KEY": "p" * 30 + uuid.uuid4().hex,
        "ALLOWED_HOSTS": "reco.example.com",
    }
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)  # set by the browser tests' session; never in a deployment
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_settings_refuse_the_dev_secret():
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.production"}
    env.pop("SECRET_KEY", None)
    result = subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


def _python(code: str, **env: str) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k not in {"DJANGO_SETTINGS_MODULE", "DEBUG", "RECO_PROCESS"}}
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env={**environment, **env}, capture_output=True, text=True, timeout=120
    )


def test_the_wsgi_and_celery_entry_points_default_to_production_settings():
    result = _python("import config.celery, os; print(os.environ['DJANGO_SETTINGS_MODULE'])")
    assert result.stdout.strip() == "config.settings.production", result.stderr
    result = _python("import config.wsgi")  # production refuses to start without a real SECRET_KEY
    assert result.returncode != 0 and "SECRET_KEY" in result.stderr


def test_a_served_site_never_runs_with_debug():
    code = "import gunicorn, config.wsgi"
    result = _python(code, DJANGO_SETTINGS_MODULE="config.settings.dev", DEBUG="1")
    assert result.returncode != 0 and "DEBUG is on" in result.stderr
    assert _python(code, DJANGO_SETTINGS_MODULE="config.settings.dev").returncode == 0


def test_the_dev_settings_leave_debug_off_unless_asked():
    code = "import django; django.setup(); from django.conf import settings; print(settings.DEBUG)"
    assert _python(code, DJANGO_SETTINGS_MODULE="config.settings.dev").stdout.strip() == "False"
