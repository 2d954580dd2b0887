#!/usr/bin/env python
"""What a page shows, on a loaded world (issue #16's defects): completed titles that come back, the reasons in
Top Picks, "Because you watched", and how much the device and the hour change the page; with the latency.

    .venv/bin/python bench/page_quality.py --database-url postgres://reco:reco@127.0.0.1:5432/reco_demo \\
        --redis-url redis://127.0.0.1:6379/7 --artifact-dir /tmp/reco-demo-artifacts --profiles 128 \\
        --json bench/results/page_quality.json

Samples --profiles profiles with history (seeded) and calls RecommendationEngine in process (response cache
off): a 100-item page with rows on a TV at 21:00 (completed titles anywhere in it: items or rows; reasons of the
Top Picks row), then 20 items on a mobile at 21:00 and on a TV at 08:00 (titles in common with the TV at 21:00,
4K share). Latency is that of the first call (the full page), p50/p95/p99 over the profiles.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from collections import Counter
from pathlib import Path

import numpy as np
from _django import django_setup, world_arguments  # bench/, on sys.path as the script's folder

TOP = 20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    world_arguments(parser)
    parser.add_argument("--profiles", type=int, default=128)
    parser.add_argument("--seed", type=int, default=16)
    parser.add_argument("--json", dest="json_path", type=Path)
    args = parser.parse_args()

    django_setup(args)
    from _machine import calibration

    from recommendations.serving.context import UserContext
    from recommendations.serving.engine import RecommendationEngine
    from recommendations.serving.state import serving_state
    from users.models import DeviceType, ViewingEvent

    profile_ids = np.array(sorted(set(ViewingEvent.objects.values_list("profile_id", flat=True).distinct())), np.int64)
    rng = np.random.default_rng(args.seed)
    sample = np.sort(rng.choice(profile_ids, min(args.profiles, len(profile_ids)), replace=False))
    completed: dict[int, set[int]] = {}
    for profile_id, title_id in ViewingEvent.objects.filter(
        profile_id__in=sample.tolist(), watch_percentage__gte=0.9
    ).values_list("profile_id", "title_id"):
        completed.setdefault(profile_id, set()).add(title_id)
    history = Counter(ViewingEvent.objects.filter(profile_id__in=sample.tolist()).values_list("profile_id", flat=True))
    engine = RecommendationEngine(use_cache=False)
    models = serving_state.models()
    catalog = models.catalog
    engine.recommend(context=UserContext(profile_id=int(sample[0])), n=20)  # warm: models, rules, features

    served = leaked = 0
    leak_profiles: set[int] = set()
    top_pick_reasons: Counter[str] = Counter()
    because_profiles = because_anywhere = 0
    overlap_device, overlap_hour, share_4k_tv, share_4k_mobile, latency = [], [], [], [], []
    examples = []
    started = time.perf_counter()
    for profile_id in sample.tolist():
        began = time.perf_counter()
        page = engine.recommend(
            context=UserContext(profile_id=profile_id, device_type=DeviceType.TV, time_of_day=21), n=100
        )
        latency.append(time.perf_counter() - began)
        shown = [(i.content_id, i.rank, where) for where, _, i in _all_items(page)]
        done = completed.get(profile_id, set())
        leaks = [(c, rank, where) for c, rank, where in shown if c in done]
        served += len(shown)
        leaked += len(leaks)
        if leaks:
            leak_profiles.add(profile_id)
            examples += [(profile_id, history[profile_id], *leak) for leak in leaks[: 3 - len(examples)]]
        top_picks = next((row for row in page.rows if row.key == "top_picks"), None)
        if top_picks is not None:
            top_pick_reasons.update(
                "Because you watched X" if i.reason.startswith("Because you watched") else i.reason
                for i in top_picks.items
            )
        because_profiles += any(i.reason.startswith("Because you watched") for i in page.items[:TOP])
        because_anywhere += any(i.reason.startswith("Because you watched") for _, _, i in _all_items(page))
        tv = [i.content_id for i in page.items[:TOP]]
        mobile = _top(engine, UserContext, profile_id, DeviceType.MOBILE, 21)
        morning = _top(engine, UserContext, profile_id, DeviceType.TV, 8)
        overlap_device.append(len(set(tv) & set(mobile)))
        overlap_hour.append(len(set(tv) & set(morning)))
        share_4k_tv.append(_share_4k(catalog, tv))
        share_4k_mobile.append(_share_4k(catalog, mobile))
    seconds = time.perf_counter() - started

    ms = np.array(latency) * 1000
    report = {
        "profiles": len(sample),
        "catalog_titles": len(catalog),
        "models": models.versions,
        "completed_titles_shown": leaked,
        "items_served": served,
        "profiles_with_completed_shown": len(leak_profiles),
        "top_picks_reasons": dict(top_pick_reasons.most_common()),
        "profiles_with_because_in_top_20": because_profiles,
        "profiles_with_because_on_the_page": because_anywhere,
        "top_20_in_common_tv_vs_mobile_21h": round(float(np.mean(overlap_device)), 2),
        "top_20_in_common_21h_vs_08h_tv": round(float(np.mean(overlap_hour)), 2),
        "share_4k_tv": round(float(np.mean(share_4k_tv)), 3),
        "share_4k_mobile": round(float(np.mean(share_4k_mobile)), 3),
        "catalog_share_4k": round(float(catalog.has_4k.mean()), 3),
        "page_latency_ms": {f"p{q}": round(float(np.percentile(ms, q)), 2) for q in (50, 95, 99)},
        "requests_per_second": round(3 * len(sample) / seconds, 1),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "ranker_gain_share": _context_gain(models),
        "machine": calibration(),
    }
    for profile_id, viewings, content_id, rank, where in examples:
        print(
            f"  completed and shown: profile {profile_id} ({viewings} viewings) title {content_id} rank {rank} "
            f"in {where}"
        )
    print(json.dumps(report, indent=2))
    if args.json_path:
        args.json_path.write_text(json.dumps(report, indent=2) + "\n")


def _context_gain(models) -> dict[str, float]:
    """The active ranker's share of split gain in its context features (what it learnt from device and hour)."""
    from recommendations.models import ModelKind

    ranker = models.get(ModelKind.RANKER)
    booster = getattr(getattr(ranker, "model", None), "booster", None)
    if booster is None:
        return {}
    gain = dict(zip(booster.feature_name(), booster.feature_importance(importance_type="gain"), strict=True))
    total = sum(gain.values()) or 1.0
    names = ("device_type", "hour", "weekday", "tv_and_4k", "tv_and_hdr", "has_4k", "is_series")
    return {name: round(float(gain.get(name, 0.0)) / total, 4) for name in names}


def _all_items(page):
    yield from (("items", n, item) for n, item in enumerate(page.items))
    yield from ((row.key, n, item) for row in page.rows for n, item in enumerate(row.items))


def _top(engine, context_class, profile_id: int, device: int, hour: int) -> list[int]:
    result = engine.recommend(
        context=context_class(profile_id=profile_id, device_type=device, time_of_day=hour), n=TOP, with_rows=False
    )
    return [item.content_id for item in result.items]


def _share_4k(catalog, content_ids: list[int]) -> float:
    rows, known = catalog.positions(np.array(content_ids, np.int64))
    return float(catalog.has_4k[rows[known]].mean()) if known.any() else 0.0


if __name__ == "__main__":
    main()
