"""A served world on a private primary + streaming replica, for tests/db and bench/replicas.py.

`replicated_world()` builds the pair (tests/pgkit.py), migrates and loads a small synthetic world on the primary
once (the replica follows by streaming), trains popularity, and serves it with gunicorn (2 workers: two
processes that share read-your-writes pins only through the private Redis) under the production settings with
DATABASE_REPLICA_URLS naming the replica. The replica replays REPLAY_DELAY seconds behind, within the max lag:
so it serves reads, and a read there misses the last REPLAY_DELAY seconds of writes. The response cache is off,
so every answer is read from a database.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import http.client
import itertools
import json
import os
import re
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

from tests.faultkit import LOOPBACK, ROOT, GunicornServer, RedisServer, gunicorn_server, redis_server, request
from tests.pgkit import PgPair, pg_pair

REPLAY_DELAY = 2.0  # seconds the replica replays behind the primary in these worlds
MAX_LAG = 3.0  # DATABASE_REPLICA_MAX_LAG_SECONDS: the delayed replica still serves
PIN_SECONDS = 5.0
API_DEADLINE = 0.8  # RECO_API_DB_TIMEOUT_SECONDS's default
_event_ids = itertools.count(1)

# One Django start for the whole set-up: migrate, a small synthetic world, popularity, an API key.
_SETUP = """
from django.core.management import call_command
from recommendations.models import ApiClient
call_command("migrate", verbosity=0)
call_command("generate_synthetic", titles=400, accounts={accounts}, events={events}, seed=7, verbosity=0)
call_command("train_models", kinds="popularity", verbosity=0)
print("API-KEY", ApiClient.issue("replicas", rate="1000000/min")[1])
from django.contrib.auth import get_user_model
get_user_model().objects.create_superuser("{staff_user}", "ops@example.com", "{staff_password}")
"""
STAFF_USER, STAFF_PASSWORD = "ops", "replica-test-password-1"


@dataclass
class ReplicatedWorld:
    pair: PgPair
    redis: RedisServer
    server: GunicornServer
    api_key: str
    profile_ids: list[int]

    @property
    def headers(self) -> dict[str, str]:
        return {"X-Api-Key": self.api_key}

    def recs(self, profile_id: int, *, timeout: float = 5.0) -> tuple[int, dict]:
        status, _, body = request(
            f"{self.server.url}/api/recs?profile_id={profile_id}&n=20&rows=false", headers=self.headers, timeout=timeout
        )
        return status, json.loads(body)

    def batch(self, profile_ids: list[int]) -> tuple[int, dict]:
        body = {"requests": [{"profile_id": pk, "n": 20, "rows": False} for pk in profile_ids]}
        status, _, answer = request(
            f"{self.server.url}/api/recs/batch",
            method="POST",
            body=json.dumps(body).encode(),
            headers={**self.headers, "Content-Type": "application/json"},
        )
        return status, json.loads(answer)

    def complete(self, profile_id: int, title_id: int) -> tuple[int, dict]:
        """POST /api/events: the profile finished the title (folded into its history)."""
        now = dt.datetime.now(dt.UTC)
        events = [
            {
                "event_id": f"ryw-{os.getpid()}-{next(_event_ids)}",
                "type": "complete",
                "profile_id": profile_id,
                "content_id": title_id,
                "device_type": "tv",
                "occurred_at": now.isoformat(),
                "started_at": (now - dt.timedelta(hours=1)).isoformat(),
            }
        ]
        status, _, body = request(
            f"{self.server.url}/api/events",
            method="POST",
            body=json.dumps({"events": events}).encode(),
            headers={**self.headers, "Content-Type": "application/json"},
        )
        return status, json.loads(body)

    def complete_behind_the_api(self, profile_id: int, title_id: int) -> None:
        """The same viewing written straight into the primary: nothing pins the profile."""
        with self.pair.primary.connect(self.pair.database) as connection:
            connection.execute(
                "INSERT INTO users_viewingevent (profile_id, title_id, started_at, last_watched_at, watch_seconds, "
                "watch_percentage, device_type, completed) VALUES (%s, %s, now() - interval '1 hour', now(), 3600, 1, 1, "
                "true)",
                [profile_id, title_id],
            )

    def replica_has_completed(self, profile_id: int, title_id: int) -> bool:
        with self.pair.replica.connect(self.pair.database) as connection:
            return connection.execute(
                "SELECT EXISTS (SELECT 1 FROM users_viewingevent WHERE profile_id = %s AND "
                "title_id = %s AND completed)",
                [profile_id, title_id],
            ).fetchone()[0]

    def top_title(self, profile_id: int) -> int:
        status, body = self.recs(profile_id)
        if status != 200:
            raise AssertionError(f"GET /api/recs answered {status}: {body}")
        return item_ids(body)[0]

    def ryw_round(self, profile_id: int) -> dict:
        """GET, complete the top title through POST /api/events, GET again: `seen` if the title is gone, and
        `replica_behind` if the replica had not replayed the completion yet (so only the primary had it)."""
        watched = self.top_title(profile_id)
        posted, result = self.complete(profile_id, watched)
        started = time.monotonic()
        status, body = self.recs(profile_id)
        read_ms = (time.monotonic() - started) * 1000
        return {
            "profile_id": profile_id,
            "posted": posted == 200 and result.get("accepted") == 1,
            "status": status,
            "read_ms": round(read_ms, 2),
            "seen": status == 200 and watched not in item_ids(body),
            "replica_behind": not self.replica_has_completed(profile_id, watched),
        }

    def browser_request(
        self, path: str, *, cookies: dict[str, str], form: dict[str, str] | None = None, timeout: float = 10.0
    ) -> tuple[int, str, str]:
        """GET (or POST `form`) with `cookies`, which take the response's Set-Cookie values: (status, Location,
        body)."""
        connection = http.client.HTTPConnection(LOOPBACK, self.server.port, timeout=timeout)
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items())}
        body = None
        if form is not None:
            body = urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        try:
            connection.request("POST" if form is not None else "GET", path, body=body, headers=headers)
            response = connection.getresponse()
            text = response.read().decode(errors="replace")
            for name, value in response.getheaders():
                if name.lower() == "set-cookie":
                    key, _, rest = value.partition("=")
                    cookies[key] = rest.split(";", 1)[0]
            return response.status, response.getheader("Location") or "", text
        finally:
            connection.close()

    def staff_login(self) -> dict[str, str]:
        """The admin's login form, as a browser fills it in; the session's cookies."""
        cookies: dict[str, str] = {}
        status, _, page = self.browser_request("/admin/login/?next=/staff/", cookies=cookies)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
        if status != 200 or token is None:
            raise AssertionError(f"no login form ({status})")
        status, location, _ = self.browser_request(
            "/admin/login/?next=/staff/",
            cookies=cookies,
            form={
                "username": STAFF_USER,
                "password": STAFF_PASSWORD,
                "csrfmiddlewaretoken": token.group(1),
                "next": "/staff/",
            },
        )
        if status != 302 or location != "/staff/":
            raise AssertionError(f"login answered {status} to {location!r}")
        return cookies


def item_ids(body: dict) -> list[int]:
    return [item["content_id"] for item in body["items"]]


def _manage(env: dict[str, str], *args: str, timeout: float = 120.0) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}")
    return result.stdout


@contextlib.contextmanager
def replicated_world(*, profiles: int = 120, workers: int = 2) -> Iterator[ReplicatedWorld]:
    with tempfile.TemporaryDirectory(prefix="reco-replicas-") as scratch, pg_pair() as pair, redis_server() as redis:
        env = {
            "DJANGO_SETTINGS_MODULE": "config.settings.production",
            "SECRET_KEY": secrets.token_urlsafe(48),
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "SECURE_SSL_REDIRECT": "0",
            "DATABASE_URL": pair.primary_url,
            "DATABASE_REPLICA_URLS": pair.replica_url,
            "DATABASE_PIN_SECONDS": str(PIN_SECONDS),
            "DATABASE_REPLICA_MAX_LAG_SECONDS": str(MAX_LAG),
            "DATABASE_REPLICA_CHECK_SECONDS": "0.5",
            "REDIS_URL": redis.url,
            "CELERY_BROKER_URL": "",
            "RECO_DATA_DIR": scratch,
            "RECO_ARTIFACT_DIR": str(Path(scratch) / "artifacts"),
            "RECO_SERVING_CACHE_DIR": str(Path(scratch) / "serving-cache"),
            "RECO_RESPONSE_CACHE_SECONDS": "0",
            "LOG_LEVEL": "WARNING",
        }
        setup = _SETUP.format(
            accounts=profiles // 2, events=profiles * 40, staff_user=STAFF_USER, staff_password=STAFF_PASSWORD
        )
        api_key = next(
            line.split()[1] for line in _manage(env, "shell", "-c", setup).splitlines() if line.startswith("API-KEY")
        )
        with pair.primary.connect(pair.database) as connection:
            profile_ids = [
                row[0]
                for row in connection.execute(
                    "SELECT DISTINCT profile_id FROM users_viewingevent ORDER BY 1"
                ).fetchall()
            ]
        pair.wait_replica_caught_up()
        pair.delay_replica(REPLAY_DELAY)
        with gunicorn_server(env, workers=workers) as server:
            yield ReplicatedWorld(pair, redis, server, api_key, profile_ids)
