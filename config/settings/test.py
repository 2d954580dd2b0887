"""Test runs: the base settings plus speed-ups only."""

import tempfile
from pathlib import Path

from config.settings.base import *  # noqa: F403
from config.settings.env import env_str

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# Verified private copies of test artifacts stay out of the checkout (content-addressed: safe to share).
RECO_SERVING_CACHE_DIR = Path(
    env_str("RECO_SERVING_CACHE_DIR", str(Path(tempfile.gettempdir()) / "reco-test-serving-cache"))
)
# A replica named by DATABASE_REPLICA_URLS is the test database itself here (Django's TEST MIRROR): the tests
# that exercise real replication build their own primary and replica (tests/pgkit.py).
for _alias in DATABASE_REPLICA_ALIASES:  # noqa: F405
    DATABASES[_alias]["TEST"] = {"MIRROR": "default"}  # noqa: F405
