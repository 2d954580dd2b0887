#!/usr/bin/env python
"""Benchmark the request path in-process on a loaded database (default reco_bench: 100K titles, 1M profiles).

    .venv/bin/python bench/serving.py --activate      # first run: activate the newest trained versions
    .venv/bin/python bench/serving.py --requests 2000 --json bench/results/serving_synthetic_1m.json

Needs trained models in the database's registry (bench/train_models.py --kind popularity|content|mf
[|ranker]); --activate makes the newest version of each kind active. Refreshes content features (and the
trending list) and the user features of the sampled profiles into Redis, then times, over --requests
random profiles (those without history included):
  - the five candidate sources (profile read + candidates_generate), the issue's "< 15 ms p99" figure;
  - the whole engine with the response cache off (cache missed), with the per-stage breakdown;
  - cache hits (the same requests again with the cache on): `recommend` (the answer as objects) and
    `recommend_json` (the body's bytes, what GET /api/recs sends);
and the process's memory (RSS, and how much of it is shared memory-mapped model pages).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np
from _machine import calibration  # bench/, on sys.path as the script's folder

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_WINDOW = 50_000  # profile ids the sample is drawn from
DIVERSITY_PROFILES = 200


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default="postgres://reco:reco@127.0.0.1:5432/reco_bench")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/14")
    parser.add_argument("--artifact-dir", default="/tmp/reco-bench-artifacts")
    parser.add_argument("--requests", type=int, default=2_000)
    parser.add_argument("--activate", action="store_true", help="activate the newest version of each kind first")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    os.environ.update(
        DATABASE_URL=args.database_url,
        REDIS_URL=args.redis_url,
        RECO_ARTIFACT_DIR=args.artifact_dir,
        DJANGO_SETTINGS_MODULE="config.settings.base",
        LOG_LEVEL="WARNING",
    )
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.cache import cache
    from django.db import connection
    from django.utils import timezone

    from features import services as feature_services
    from features.store import FeatureStore
    from recommendations.models import ModelVersion
    from recommendations.services import model_version_activate
    from recommendations.serving.candidate_inputs import candidates_generate
    from recommendations.serving.context import UserContext, profile_state_load
    from recommendations.serving.engine import CACHE_PREFIX, RecommendationEngine
    from recommendations.serving.state import serving_state

    if args.activate:
        for kind in ModelVersion.objects.values_list("kind", flat=True).distinct():
            newest = ModelVersion.objects.filter(kind=kind).order_by("-created_at").first()
            if newest.status != ModelVersion.Status.ACTIVE:
                model_version_activate(version_id=newest.pk)
                print(f"activated {kind} {newest.version}")

    machine = calibration()  # before the load: this VM's speed drifts between days
    print(f"machine calibration: {machine}")
    rng = np.random.default_rng(args.seed)
    with connection.cursor() as cursor:
        cursor.execute("SELECT min(id), max(id) FROM users_profile")
        low, high = cursor.fetchone()
        cursor.execute("SELECT max(last_watched_at) FROM users_viewingevent")
        (newest,) = cursor.fetchone()
    # Profiles from one window of ids, so that refreshing their user features takes seconds, not minutes.
    window_start = int(rng.integers(low, max(low + 1, high - SAMPLE_WINDOW)))
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id FROM users_profile WHERE id >= %s AND id < %s", [window_start, window_start + SAMPLE_WINDOW]
        )
        existing = np.array(sorted(r[0] for r in cursor.fetchall()), np.int64)
    sample = rng.choice(existing, size=min(args.requests, len(existing)), replace=False)

    store = FeatureStore()
    started = time.perf_counter()
    feature_services.content_features_refresh(as_of=newest, store=store)
    feature_services.user_features_refresh(
        profile_id_start=window_start, profile_id_end=window_start + SAMPLE_WINDOW, as_of=newest, store=store
    )
    print(f"features refreshed in {time.perf_counter() - started:.1f} s")

    started = time.perf_counter()
    models = serving_state.models()
    print(
        f"serving models {models.versions} ready in {time.perf_counter() - started:.1f} s "
        f"({len(models.catalog):,} titles)"
    )
    now = timezone.now()
    # Warm-up: page in the memory-mapped factors and the code paths.
    for profile_id in sample[:50]:
        candidates_generate(
            profile_state_load(profile_id=int(profile_id)), models, serving_state.trending(models, store), now=now
        )

    source_ms, counts, per_source = [], [], {}
    for profile_id in sample:
        t0 = time.perf_counter()
        state = profile_state_load(profile_id=int(profile_id))
        result = candidates_generate(state, serving_state.models(), serving_state.trending(models, store), now=now)
        source_ms.append((time.perf_counter() - t0) * 1000)
        counts.append(len(result.content_ids))
        for name, ms in result.source_ms.items():
            per_source.setdefault(name, []).append(ms)

    engine = RecommendationEngine(store=store, use_cache=False)
    engine_ms, stages, degraded = [], {}, {}
    for profile_id in sample:
        t0 = time.perf_counter()
        result = engine.recommend(context=UserContext(profile_id=int(profile_id)), n=20)
        engine_ms.append((time.perf_counter() - t0) * 1000)
        for stage, ms in result.timings_ms.items():
            stages.setdefault(stage, []).append(ms)
        for reason in result.degraded:
            degraded[reason] = degraded.get(reason, 0) + 1

    diversity = _served_diversity(engine, sample[:DIVERSITY_PROFILES], models, now)

    # The response cache's entries only: a flush would drop the features just refreshed too, and every answer
    # would then be degraded (user_features_missing), so never cached.
    cache.delete_pattern(f"{CACHE_PREFIX}:*")
    cached_engine = RecommendationEngine(store=store, use_cache=True)
    for profile_id in sample:
        cached_engine.recommend(context=UserContext(profile_id=int(profile_id)), n=20)
    hit_ms, json_hit_ms, not_cached = [], [], {}
    for profile_id in sample:
        t0 = time.perf_counter()
        result = cached_engine.recommend(context=UserContext(profile_id=int(profile_id)), n=20)
        if result.cached:
            hit_ms.append((time.perf_counter() - t0) * 1000)
        else:  # a degraded answer is never cached: say why rather than stop
            for reason in result.degraded or ["none"]:
                not_cached[reason] = not_cached.get(reason, 0) + 1
    for profile_id in sample:  # what GET /api/recs sends: the cached body's bytes, no object built
        t0 = time.perf_counter()
        rendered = cached_engine.recommend_json(UserContext(profile_id=int(profile_id)), n=20)
        if rendered.cached:
            json_hit_ms.append((time.perf_counter() - t0) * 1000)

    figures = {
        "database": args.database_url.rsplit("/", 1)[1],
        "titles": len(models.catalog),
        "profiles_sampled": len(sample),
        "model_versions": models.versions,
        "ranker_backend": _ranker_backend(models),
        "candidates_per_request": _summary(np.array(counts, float), digits=0),
        "five_sources_ms": _summary(np.array(source_ms)),
        "per_source_ms_p99": {name: round(float(np.percentile(v, 99)), 3) for name, v in per_source.items()},
        "engine_cache_miss_ms": _summary(np.array(engine_ms)),
        "engine_stage_ms_p50_p99": {
            s: [round(float(np.percentile(v, 50)), 3), round(float(np.percentile(v, 99)), 3)] for s, v in stages.items()
        },
        "engine_cache_hit_ms": _summary(np.array(hit_ms)) if hit_ms else None,
        "engine_cache_hit_json_ms": _summary(np.array(json_hit_ms)) if json_hit_ms else None,
        "not_cached_by_reason": not_cached,
        "degraded_requests": degraded,
        "served_top20_diversity": diversity,
        "memory": _memory(),
        "machine": machine,
    }
    print(json.dumps(figures, indent=2))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


def _served_diversity(engine, profile_ids, models, now) -> dict[str, float]:
    """Distinct genres, share of recent titles and share outside the profile's usual genres in the served top 20."""
    from ranking.ml.diversify import diversity_report, recent_titles
    from recommendations.serving.candidate_inputs import _favourite_genres
    from recommendations.serving.context import UserContext, profile_state_load

    catalog = models.catalog
    today = int(now.timestamp() // 86_400)
    reports = []
    for profile_id in profile_ids:
        state = profile_state_load(profile_id=int(profile_id))
        if not state.has_history:
            continue
        result = engine.recommend(context=UserContext(profile_id=int(profile_id)), n=20, with_rows=False)
        rows, _ = catalog.positions(np.array([item.content_id for item in result.items]))
        history, _ = catalog.positions(state.history_title_ids)
        usual = _favourite_genres(
            catalog.genre_masks, catalog.genre_mask_of(np.array(state.onboarding_genre_ids)), np.unique(history)
        )
        reports.append(
            diversity_report(
                np.arange(len(rows)),
                catalog.genre_masks[rows],
                recent_titles(catalog, rows, today_days=today),
                usual_genres=int(usual),
            )
        )
    genres = np.array([r.distinct_genres for r in reports])
    return {
        "profiles": len(reports),
        "distinct_genres_mean": round(float(genres.mean()), 2),
        "share_with_5_or_more_genres": round(float((genres >= 5).mean()), 3),
        "share_recent_mean": round(float(np.mean([r.share_recent for r in reports])), 3),
        "share_outside_usual_mean": round(float(np.mean([r.share_outside_usual for r in reports])), 3),
    }


def _ranker_backend(models) -> str | None:
    """What scores the candidates: 'lleaves' (the compiled forest), 'lightgbm', or None without a ranker."""
    ranker = models.get("ranker")
    return None if ranker is None else getattr(ranker.model, "backend", "lightgbm")


def _summary(values: np.ndarray, digits: int = 3) -> dict[str, float]:
    return {
        name: round(float(np.percentile(values, q)), digits) for name, q in (("p50", 50), ("p95", 95), ("p99", 99))
    } | {"mean": round(float(values.mean()), digits), "max": round(float(values.max()), digits)}


def _memory() -> dict[str, float]:
    """RSS now and at peak, and how much of it is file-backed shared pages (the memory-mapped factors)."""
    status = Path("/proc/self/status").read_text().splitlines()
    fields = {line.split(":")[0]: line.split(":")[1].strip() for line in status}
    gib = lambda kb: round(int(kb.split()[0]) / 2**20, 3)  # noqa: E731
    return {
        "rss_gib": gib(fields["VmRSS"]),
        "rss_file_gib": gib(fields.get("RssFile", "0 kB")),
        "rss_anon_gib": gib(fields.get("RssAnon", "0 kB")),
        "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 3),
    }


if __name__ == "__main__":
    main()
