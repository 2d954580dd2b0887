"""The set-up the benchmarks that run Django in-process share: where the world is, and django.setup() on it."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def world_arguments(parser: argparse.ArgumentParser) -> None:
    """--database-url, --redis-url and --artifact-dir; empty means the embedded demo's."""
    parser.add_argument("--database-url", default="", help="default: the embedded SQLite database the demo uses")
    parser.add_argument("--redis-url", default="", help="the feature store's Redis (default: none, the embedded store)")
    parser.add_argument("--artifact-dir", default="", help="default: the settings' (the demo's)")


def django_setup(args: argparse.Namespace) -> None:
    """Base settings on the world the arguments name (the embedded defaults where they are empty), quiet logs."""
    os.environ.update(DJANGO_SETTINGS_MODULE="config.settings.base", LOG_LEVEL="WARNING")
    for name, value in (
        ("DATABASE_URL", args.database_url),
        ("REDIS_URL", args.redis_url),
        ("RECO_ARTIFACT_DIR", args.artifact_dir),
    ):
        if value:
            os.environ[name] = value
        else:
            os.environ.pop(name, None)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
