"""DATABASE_REPLICA_URLS in the settings: one alias per replica with the primary's timeouts, the router, and
Django's TEST MIRROR under the test settings."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from config.db.router import ReplicaRouter

ROOT = Path(__file__).resolve().parent.parent.parent
_PRINT = (
    "import json; from django.conf import settings as s; print(json.dumps({'aliases': s.DATABASE_REPLICA_ALIASES, "
    "'routers': s.DATABASE_ROUTERS, 'databases': {k: {'NAME': v['NAME'], 'PORT': v['PORT'], "
    "'OPTIONS': v.get('OPTIONS', {}), 'TEST': v.get('TEST', {})} for k, v in s.DATABASES.items()}}))"
)


def _settings(module: str, **env: str) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("DATABASE_")}
    full_env.update(DJANGO_SETTINGS_MODULE=module, SECRET_KEY="s" * 60, RECO_PROCESS="web", **env)
    code = f"import django; django.setup(); {_PRINT}"
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=full_env, capture_output=True, text=True, timeout=60, check=False
    )


def test_each_replica_url_is_an_alias_with_the_primarys_timeouts_and_a_test_mirror():
    result = _settings(
        "config.settings.test",
        DATABASE_URL="postgres://reco@db1:5432/reco",
        DATABASE_REPLICA_URLS="postgres://reco@db2:5433/reco, postgres://reco@db3:5434/reco",
    )
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout.strip().splitlines()[-1])

    assert found["aliases"] == ["replica1", "replica2"]
    assert found["routers"] == ["config.db.router.ReplicaRouter"]
    replica = found["databases"]["replica2"]
    assert (replica["PORT"], replica["TEST"]["MIRROR"]) == ("5434", "default")
    assert replica["OPTIONS"] == found["databases"]["default"]["OPTIONS"]
    assert "statement_timeout" in replica["OPTIONS"]["options"] and replica["OPTIONS"]["connect_timeout"] == 2


def test_no_replicas_no_router():
    result = _settings("config.settings.production", DATABASE_URL="postgres://reco@db1:5432/reco")
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert (found["aliases"], found["routers"], list(found["databases"])) == ([], [], ["default"])


def test_replicas_need_a_postgresql_primary():
    alone = _settings("config.settings.production", DATABASE_REPLICA_URLS="postgres://reco@db2:5432/reco")
    on_sqlite = _settings(
        "config.settings.production",
        DATABASE_URL="sqlite:////tmp/reco.sqlite3",
        DATABASE_REPLICA_URLS="postgres://reco@db2:5432/reco",
    )
    assert alone.returncode != 0 and "needs DATABASE_URL" in alone.stderr
    assert on_sqlite.returncode != 0 and "PostgreSQL replicas of a PostgreSQL DATABASE_URL" in on_sqlite.stderr


def test_migrations_never_run_on_a_replica(settings):
    settings.DATABASE_REPLICA_ALIASES = ["replica1"]
    router = ReplicaRouter()
    assert router.allow_migrate("replica1", "users") is False
    assert router.allow_migrate("default", "users") is None
