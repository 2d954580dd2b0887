#!/usr/bin/env python
"""Bytes per profile and per title in the online feature store, measured with Redis MEMORY USAGE.

    .venv/bin/python bench/redis_memory.py --json bench/results/redis_memory.json   # ~1-2 min

Loads a small synthetic world into --database-url (created and migrated if missing; --replace'd), runs a full
content and user refresh into the Redis of --redis-url under its own --namespace, and reports MEMORY USAGE
(SAMPLES 0: every element counted) of a sample of profile and title keys, the title matrix, and the change in
the server's used_memory over the refresh divided by the rows written. Its keys are deleted afterwards
(SCAN of the namespace only; nothing else on that Redis is touched).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default="postgres://reco:reco@127.0.0.1:5432/reco_h6")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--namespace", default="fs-memory-bench")
    parser.add_argument("--titles", type=int, default=5_000)
    parser.add_argument("--accounts", type=int, default=8_000, help="about 2.5 profiles each")
    parser.add_argument("--events", type=int, default=400_000)
    parser.add_argument("--sample", type=int, default=2_000, help="keys measured one by one")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    os.environ.update(
        DATABASE_URL=args.database_url, REDIS_URL=args.redis_url, DJANGO_SETTINGS_MODULE="config.settings.base"
    )
    sys.path.insert(0, str(ROOT))
    _database_create(args.database_url)
    import django

    django.setup()
    from django.core.management import call_command

    from features.services import content_features_refresh, user_features_refresh
    from features.store import FeatureStore
    from users.models import Profile

    call_command("migrate", verbosity=0)
    started = time.perf_counter()
    call_command(
        "generate_synthetic",
        "--titles",
        str(args.titles),
        "--accounts",
        str(args.accounts),
        "--events",
        str(args.events),
        "--seed",
        "11",
        "--replace",
        "--ground-truth-dir",
        "/tmp/reco-redis-memory-truth",
        verbosity=0,
    )
    load_seconds = time.perf_counter() - started
    store = FeatureStore(namespace=args.namespace)
    client = store.backend.client
    _delete_namespace(client, args.namespace)
    before = client.info("memory")["used_memory"]
    as_of = dt.datetime.now(dt.UTC)
    titles = content_features_refresh(as_of=as_of, store=store)
    after_titles = client.info("memory")["used_memory"]
    low = Profile.objects.order_by("id").values_list("id", flat=True).first()
    high = Profile.objects.order_by("-id").values_list("id", flat=True).first()
    profiles = user_features_refresh(profile_id_start=low, profile_id_end=high + 1, as_of=as_of, store=store)
    after_profiles = client.info("memory")["used_memory"]

    user_keys = list(client.scan_iter(f"{args.namespace}:*:user:*", count=10_000))
    title_keys = [
        key
        for key in client.scan_iter(f"{args.namespace}:*:content:*", count=10_000)
        if b":matrix:" not in key and not key.endswith(b":version")
    ]
    matrix_keys = list(client.scan_iter(f"{args.namespace}:*:matrix:*", count=1_000))
    rng = np.random.default_rng(3)

    def usage(keys: list[bytes]) -> dict:
        if not keys:
            return {"keys": 0}
        picked = [keys[i] for i in rng.choice(len(keys), size=min(args.sample, len(keys)), replace=False)]
        sizes = np.array([client.memory_usage(key, samples=0) for key in picked], np.float64)
        values = np.array([len(client.get(key) or b"") for key in picked[:200]], np.float64)
        return {
            "keys": len(keys),
            "measured": len(picked),
            "memory_usage_bytes_mean": round(float(sizes.mean()), 1),
            "memory_usage_bytes_p95": float(np.percentile(sizes, 95)),
            "value_bytes_mean": round(float(values.mean()), 1),
        }

    result = {
        "database": args.database_url.rsplit("/", 1)[-1],
        "redis": args.redis_url,
        "world": {
            "titles": args.titles,
            "accounts": args.accounts,
            "events": args.events,
            "load_seconds": round(load_seconds, 1),
        },
        "rows_written": {"titles": titles, "profiles": profiles},
        "profile_key": usage(user_keys),
        "title_key": usage(title_keys),
        "title_matrix_bytes": [client.memory_usage(key, samples=0) for key in matrix_keys],
        "used_memory_delta_per_profile_bytes": round((after_profiles - after_titles) / max(profiles, 1), 1),
        "used_memory_delta_per_title_bytes": round((after_titles - before) / max(titles, 1), 1),
        "redis_version": client.info("server")["redis_version"],
    }
    _delete_namespace(client, args.namespace)
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


def _database_create(url: str) -> None:
    name = url.rsplit("/", 1)[-1]
    admin = url.rsplit("/", 1)[0] + "/postgres"
    exists = subprocess.run(
        ["psql", admin, "-tAc", f"SELECT 1 FROM pg_database WHERE datname = '{name}'"],
        capture_output=True,
        text=True,
        timeout=30,
    ).stdout.strip()
    if exists != "1":
        subprocess.run(["psql", admin, "-c", f'CREATE DATABASE "{name}"'], check=True, timeout=60)


def _delete_namespace(client, namespace: str) -> None:
    batch = []
    for key in client.scan_iter(f"{namespace}:*", count=10_000):
        batch.append(key)
        if len(batch) >= 5_000:
            client.delete(*batch)
            batch.clear()
    if batch:
        client.delete(*batch)


if __name__ == "__main__":
    main()
