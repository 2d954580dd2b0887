#!/usr/bin/env python
"""Content safety over a whole world: no capped profile's response shows or names a title above its cap.

    .venv/bin/python bench/kids_safety.py --capped --inject 6       # the demo world (`make demo`'s SQLite)
    .venv/bin/python bench/kids_safety.py --database-url postgres://reco:reco@127.0.0.1:5432/reco_bench \\
        --redis-url redis://127.0.0.1:6379/14 --artifact-dir /tmp/reco-bench-artifacts --limit 5000 --seconds 180

Walks the kids profiles (with --capped, every profile whose cap is below 18+ as well) in id order, or a random
sample of --limit of them, until --seconds have passed; calls RecommendationEngine in process (response cache
off, rows on) and checks each response with recommendations.content_safety: items, every row's items, row keys,
reasons and row titles, the titles they name looked up by name. The cap checked is the profile's own column
(kids profiles are held to 7+ by a database constraint), not the engine's reading of it.

--inject N first gives each walked kids profile N recent full plays of random titles above its cap, as
/api/events accepts them (the issue's case), inside a transaction rolled back at the end: the database is left
as it was. Prints how many profiles were checked, how many had titles above their cap in their history, leaks
by place, and the time per request; exits 1 on any leak.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter

import numpy as np
from _django import django_setup, world_arguments  # bench/, on sys.path as the script's folder

CHUNK = 500  # profiles whose histories are read (and injected) per query
EXAMPLES = 5  # leaks printed in full


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    world_arguments(parser)
    parser.add_argument("--capped", action="store_true", help="also every non-kids profile with a cap below 18+")
    parser.add_argument("--limit", type=int, default=0, help="a random sample of this many profiles (0: all)")
    parser.add_argument("--seconds", type=float, default=120.0, help="stop walking after this long")
    parser.add_argument("--inject", type=int, default=0, help="plays above the cap given to each kids profile first")
    parser.add_argument("--seed", type=int, default=14)
    args = parser.parse_args()

    django_setup(args)
    from django.db import transaction
    from django.db.models import Q

    from recommendations.content_safety import NameIndex, response_leaks
    from recommendations.serving.context import UserContext
    from recommendations.serving.engine import RecommendationEngine
    from recommendations.serving.state import serving_state
    from users.models import Profile, ViewingEvent

    wanted = Q(is_kids=True) | (Q(maturity_cap__lt=18) if args.capped else Q(pk__in=[]))
    profiles = np.array(
        Profile.objects.filter(wanted).order_by("id").values_list("id", "maturity_cap", "is_kids"), np.int64
    ).reshape(-1, 3)
    rng = np.random.default_rng(args.seed)
    if args.limit and args.limit < len(profiles):
        profiles = profiles[np.sort(rng.choice(len(profiles), args.limit, replace=False))]
    engine = RecommendationEngine(use_cache=False)
    models = serving_state.models()
    catalog = models.catalog
    names = NameIndex(catalog)
    print(
        f"{len(profiles):,} profiles to walk ({int(profiles[:, 2].sum()):,} kids); catalog {len(catalog):,} "
        f"titles; models {models.versions}",
        flush=True,
    )

    checked = with_above_cap = responses_with_because = 0
    leaks_by_place: Counter[str] = Counter()
    examples = []
    started = time.perf_counter()
    engine_seconds = 0.0
    with transaction.atomic():
        for start in range(0, len(profiles), CHUNK):
            if time.perf_counter() - started > args.seconds:
                break
            chunk = profiles[start : start + CHUNK]
            if args.inject:
                _inject(ViewingEvent, catalog, chunk, args.inject, rng)
            history: dict[int, list[int]] = {}
            for profile_id, title_id in ViewingEvent.objects.filter(profile_id__in=chunk[:, 0].tolist()).values_list(
                "profile_id", "title_id"
            ):
                history.setdefault(profile_id, []).append(title_id)
            for profile_id, cap, _kids in chunk.tolist():
                if time.perf_counter() - started > args.seconds:
                    break
                watched = history.get(profile_id, [])
                rows, known = catalog.positions(np.array(watched, np.int64))
                with_above_cap += bool((catalog.maturity[rows[known]] > cap).any())
                began = time.perf_counter()
                result = engine.recommend(context=UserContext(profile_id=profile_id), n=20)
                engine_seconds += time.perf_counter() - began
                leaks = response_leaks(result, maturity_cap=cap, names=names, watched_ids=watched)
                responses_with_because += any(row.key.startswith("because_you_watched:") for row in result.rows)
                leaks_by_place.update(leak.where for leak in leaks)
                examples += [(profile_id, cap, leak) for leak in leaks[: EXAMPLES - len(examples)]]
                checked += 1
        transaction.set_rollback(True)  # the injected plays go; nothing else was written

    total = sum(leaks_by_place.values())
    print(
        f"checked {checked:,} of {len(profiles):,} profiles in {time.perf_counter() - started:.1f} s "
        f"({engine_seconds / max(checked, 1) * 1000:.1f} ms per request); {with_above_cap:,} had titles above "
        f"their cap in their history{' (injected)' if args.inject else ''}; {responses_with_because:,} responses "
        f"had a 'Because You Watched' row"
    )
    print(
        f"titles above the cap in responses: {total} "
        f"({', '.join(f'{k} {v}' for k, v in sorted(leaks_by_place.items())) or 'none anywhere'})"
    )
    for profile_id, cap, leak in examples:
        print(f"  profile {profile_id} (cap {cap}): {leak}")
    sys.exit(1 if total else 0)


def _inject(viewing_event, catalog, chunk: np.ndarray, per_profile: int, rng: np.random.Generator) -> None:
    """Recent full plays of random titles above each kids profile's cap (one bulk insert per chunk)."""
    import datetime as dt

    from django.utils import timezone

    now = timezone.now()
    events = []
    for profile_id, cap, kids in chunk.tolist():
        above = np.flatnonzero(catalog.maturity > cap)
        if not kids or not len(above):
            continue
        for hours, row in enumerate(rng.choice(above, min(per_profile, len(above)), replace=False), start=1):
            started = now - dt.timedelta(hours=hours)
            events.append(
                viewing_event(
                    profile_id=profile_id,
                    title_id=int(catalog.content_ids[row]),
                    started_at=started,
                    last_watched_at=started + dt.timedelta(minutes=90),
                    watch_seconds=5400,
                    watch_percentage=1.0,
                    completed=True,
                )
            )
    viewing_event.objects.bulk_create(events, ignore_conflicts=True)


if __name__ == "__main__":
    main()
