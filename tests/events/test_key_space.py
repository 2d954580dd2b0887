"""Impression items have a key space of their own: (client, event id, item position), every other event item 0.

Before issue #14 an impression's items were stored under the event ids "<event_id>:<position>", so a click whose
id was "X:1" was dropped as a duplicate of impression X's first item.
"""

from __future__ import annotations

import importlib

import pytest
from django.db import connection

from events.models import Event, EventType
from tests.events.helpers import event, impression, post
from tests.factories.events import EventFactory

migration = importlib.import_module("events.migrations.0002_impression_item_key")
key_migration = importlib.import_module("events.migrations.0003_event_keys_and_monthly_partitions")


def keys(client) -> list[tuple[str, int, str]]:
    rows = Event.objects.filter(client=client).order_by("client_event_id", "item_position")
    return list(rows.values_list("client_event_id", "item_position", "type"))


@pytest.mark.parametrize("storage", ["postgresql", "portable"])
def test_a_click_named_like_an_impression_item_is_stored_and_retries_still_dedupe(
    api, app_client, profiles, titles, monkeypatch, storage
):
    if storage == "portable":  # the embedded default's path (SQLite), run here on PostgreSQL
        monkeypatch.setattr(connection, "vendor", "portable")
    shown = impression(profiles[0].pk, [titles[0].pk, titles[1].pk], event_id="X")
    click = event("click", profiles[0].pk, content_id=titles[0].pk, position=1, event_id="X:1")
    play = event("play", profiles[0].pk, content_id=titles[0].pk, started_at=click["occurred_at"], event_id="X:2")

    first = post(api, [shown, click, play]).json()
    retried = post(api, [play, click, shown]).json()

    assert (first["accepted"], first["duplicates"], first["rejected"]) == (4, 0, 0)
    assert (retried["accepted"], retried["duplicates"], retried["rejected"]) == (0, 4, 0)
    assert keys(app_client) == [
        ("X", 1, EventType.IMPRESSION),
        ("X", 2, EventType.IMPRESSION),
        ("X:1", 0, EventType.CLICK),
        ("X:2", 0, EventType.PLAY),
    ]
    assert Event.objects.get(client=app_client, client_event_id="X", item_position=2).title_id == titles[1].pk


def test_an_impression_repeated_within_a_batch_is_stored_once(api, app_client, profiles, titles):
    shown = impression(profiles[0].pk, [titles[0].pk, titles[1].pk])
    body = post(api, [shown, {**shown, "items": [{"content_id": titles[2].pk, "position": 2}]}]).json()
    assert (body["accepted"], body["duplicates"]) == (2, 1)
    assert Event.objects.get(client=app_client, item_position=2).title_id == titles[1].pk  # the first one


def test_the_migration_moves_stored_items_into_their_key_space_so_a_retry_stays_a_duplicate(
    api, app_client, profiles, titles
):
    """Rows stored before the change, with "<event_id>:<position>" ids, are converted by one UPDATE."""
    shown = impression(profiles[0].pk, [titles[0].pk, titles[1].pk], event_id="home:42")  # an id with a colon
    old_style = [
        EventFactory(
            client=app_client,
            client_event_id=f"home:42:{position}",
            type=EventType.IMPRESSION,
            position=position,
            profile=profiles[0],
            title=titles[position - 1],
        )
        for position in (1, 2)
    ]
    click = EventFactory(client=app_client, client_event_id="c:1", type=EventType.CLICK, position=1)
    odd = EventFactory(client=app_client, client_event_id="no-suffix", type=EventType.IMPRESSION, position=3)

    with connection.cursor() as cursor:
        cursor.execute(migration.STRIP_ITEM_SUFFIX)
        assert cursor.rowcount == len(old_style)
        cursor.execute(key_migration.COPY_KEYS)  # and events 0003 gives the stored rows their keys

    assert keys(app_client) == [
        ("c:1", 0, EventType.CLICK),
        ("home:42", 1, EventType.IMPRESSION),
        ("home:42", 2, EventType.IMPRESSION),
        ("no-suffix", 3, EventType.IMPRESSION),
    ]
    assert [Event.objects.get(pk=row.pk).client_event_id for row in (click, odd)] == ["c:1", "no-suffix"]
    retried = post(api, [shown]).json()
    assert (retried["accepted"], retried["duplicates"]) == (0, 2)
