"""A known set of events sent in concurrent batches over real HTTP all comes back, each exactly once."""

from __future__ import annotations

import json
import urllib.request
from concurrent.futures import ThreadPoolExecutor

from events.models import Event
from recommendations.api.auth import client_cache
from tests.events.helpers import moment
from tests.factories.catalog import TitleFactory
from tests.factories.events import ApiClientFactory
from tests.factories.users import ProfileFactory
from users.models import ViewingEvent

KEY = "zero-loss-key-0123456789abcdef"
EVENTS = 5_000
BATCH = 250
THREADS = 6


def known_events(profile_ids: list[int], title_ids: list[int]) -> list[dict]:
    """EVENTS events: every tenth an impression of 5 items, the rest clicks, plays and progress."""
    started = moment(120)
    events = []
    for i in range(EVENTS):
        base = {
            "event_id": f"zl-{i}",
            "profile_id": profile_ids[i % len(profile_ids)],
            "occurred_at": moment(1),
            "device_type": "web",
        }
        if i % 10 == 0:
            items = [{"content_id": title_ids[(i + k) % len(title_ids)], "position": k + 1} for k in range(5)]
            events.append({**base, "type": "impression", "items": items})
        elif i % 10 < 5:
            events.append({**base, "type": "click", "content_id": title_ids[i % len(title_ids)]})
        else:
            events.append(
                {
                    **base,
                    "type": "progress",
                    "content_id": title_ids[i % len(title_ids)],
                    "started_at": started,
                    "watch_percentage": (i % 100) / 100,
                }
            )
    return events


def send(url: str, batch: list[dict]) -> dict:
    request = urllib.request.Request(
        url,
        data=json.dumps({"events": batch}).encode(),
        method="POST",
        headers={"Content-Type": "application/json", "X-Api-Key": KEY},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        assert response.status == 200
        return json.loads(response.read())


def test_concurrent_batches_lose_nothing_and_store_nothing_twice(live_server, transactional_db):
    client_cache.clear()
    app = ApiClientFactory(key=KEY, rate="100000/min")
    profile_ids = [p.pk for p in ProfileFactory.create_batch(20)]
    title_ids = [t.pk for t in TitleFactory.create_batch(40)]
    events = known_events(profile_ids, title_ids)
    batches = [events[start : start + BATCH] for start in range(0, EVENTS, BATCH)]
    retried = batches[::4]  # a quarter of the batches sent twice, racing their first sending
    url = f"{live_server.url}/api/events"

    with ThreadPoolExecutor(THREADS) as pool:
        answers = list(pool.map(lambda batch: send(url, batch), batches + retried))

    expected_ids = {
        (e["event_id"], item["position"]) for e in events if e["type"] == "impression" for item in e["items"]
    } | {(e["event_id"], 0) for e in events if e["type"] != "impression"}
    stored_ids = list(Event.objects.filter(client=app).values_list("client_event_id", "item_position"))
    assert len(stored_ids) == len(set(stored_ids)) == len(expected_ids)
    assert set(stored_ids) == expected_ids
    assert sum(a["accepted"] for a in answers) == len(expected_ids)
    retried_rows = sum(sum(len(e.get("items", [None])) for e in batch) for batch in retried)
    assert sum(a["duplicates"] for a in answers) == retried_rows
    assert all(a["rejected"] == 0 for a in answers)
    # One viewing per (profile, title) the progress events name, at the furthest point any of them reached.
    furthest: dict[tuple[int, int], float] = {}
    for e in events:
        if e["type"] == "progress":
            key = (e["profile_id"], e["content_id"])
            furthest[key] = max(furthest.get(key, 0.0), e["watch_percentage"])
    viewings = ViewingEvent.objects.values_list("profile_id", "title_id", "watch_percentage")
    assert {(profile_id, title_id): pct for profile_id, title_id, pct in viewings} == furthest
    assert len(viewings) == len(furthest)
    client_cache.clear()
