"""A request stores at most MAX_ROWS rows (an impression's items one each, any other event one); more is refused whole.

Before issue #14 one accepted body carried 1,000 impressions of 200 items: 74,400 rows, 3.35 s of worker time.
"""

from __future__ import annotations

import datetime as dt

import pytest

from events.api.parsing import MAX_EVENTS, MAX_ITEMS, MAX_ROWS, batch_parse, batch_rows_sent
from events.models import Event
from tests.events.helpers import event, impression, post

NOW = dt.datetime.now(dt.UTC)  # when the parametrized bodies were built (collection); events built in a test: now()


def full_impressions(count: int, profile_id: int = 1, title_ids: list[int] | None = None) -> list[dict]:
    """`count` impressions of MAX_ITEMS items (of `title_ids` round and round, or of titles 1, 2, ...)."""
    title_ids = title_ids or list(range(1, MAX_ITEMS + 1))
    return [impression(profile_id, [title_ids[i % len(title_ids)] for i in range(MAX_ITEMS)]) for _ in range(count)]


def over_the_cap(profiles, titles) -> list[dict]:
    """MAX_ROWS + 1 rows that would all be valid."""
    title_ids = [t.pk for t in titles]
    return [
        *full_impressions(MAX_ROWS // MAX_ITEMS, profiles[0].pk, title_ids),
        event("click", profiles[0].pk, content_id=title_ids[0]),
    ]


def clicks(count: int) -> list[dict]:
    return [event("click", 1, content_id=1) for _ in range(count)]


@pytest.mark.parametrize(
    "events",
    [
        full_impressions(MAX_ROWS // MAX_ITEMS),
        full_impressions(MAX_ROWS // MAX_ITEMS - 1) + clicks(MAX_ITEMS),
        clicks(MAX_EVENTS - 10) + [impression(1, list(range(1, (MAX_ROWS - MAX_EVENTS + 10) // 10 + 1)))] * 10,
    ],
    ids=["impressions", "impressions-and-clicks", "1000-events"],
)
def test_a_batch_of_max_rows_is_read_and_one_row_more_is_refused_whole(events):
    at_cap = batch_parse({"events": events}, now=NOW)
    assert at_cap.error is None and at_cap.rows_sent == at_cap.row_count == MAX_ROWS
    assert not at_cap.errors and len(at_cap.events) == len(events) <= MAX_EVENTS

    first = next(i for i, e in enumerate(events) if e["type"] == "impression")
    one_more_item = {**events[first], "items": [*events[first]["items"], {"content_id": 1, "position": 999}]}
    over = batch_parse({"events": [*events[:first], one_more_item, *events[first + 1 :]]}, now=NOW)
    assert over.error is not None and not (over.events or over.errors)
    assert (over.error.status, over.error.code) == (413, "too_many_rows")
    assert over.error.details == {"rows": MAX_ROWS + 1, "max_rows": MAX_ROWS}
    assert f"{MAX_ROWS:,}" in over.error.message


def test_row_count_counts_the_rows_valid_events_would_store():
    bad_item = impression(1, [1, 2, 3])
    bad_item["items"][1]["position"] = 0
    batch = batch_parse(
        {"events": [impression(1, [1, 2, 3, 4]), bad_item, event("click", 1, content_id=1), event("click", 1), "junk"]},
        now=dt.datetime.now(dt.UTC),
    )
    assert (batch.rows_sent, batch.row_count) == (4 + 3 + 1 + 1 + 1, 4 + 1)
    assert [error.index for error in batch.errors] == [1, 3, 4]


@pytest.mark.parametrize(
    ("body", "rows"),
    [
        (
            {
                "events": [
                    impression(1, [1, 2, 3]),
                    event("click", 1, items=[{}, {}]),
                    {"type": "impression", "items": []},
                    {"type": "impression", "items": "many"},
                    7,
                ]
            },
            3 + 1 + 1 + 1 + 1,
        ),
        ({"events": full_impressions(MAX_EVENTS + 1)}, (MAX_EVENTS + 1) * MAX_ITEMS),  # counted, then refused
        ({"events": "many"}, 0),
        ([impression(1, [1])], 0),
    ],
)
def test_batch_rows_sent_is_what_the_cap_counts_before_parsing(body, rows):
    assert batch_rows_sent(body) == rows


def test_an_impression_with_too_many_items_is_its_own_error_while_the_batch_fits():
    batch = batch_parse(
        {"events": [impression(1, list(range(1, MAX_ITEMS + 2))), event("click", 1, content_id=1)]},
        now=dt.datetime.now(dt.UTC),
    )
    assert batch.error is None and batch.rows_sent == MAX_ITEMS + 2 and batch.row_count == 1
    assert "items" in batch.errors[0].errors


@pytest.mark.parametrize("body", [[], {"events": "many"}, {"events": []}, {"events": [{}] * 1001}])
def test_a_body_that_is_not_a_batch_is_invalid_batch(body):
    batch = batch_parse(body, now=NOW)
    assert (batch.error.status, batch.error.code) == (400, "invalid_batch") and "events" in batch.error.details


def test_over_the_cap_nothing_is_stored(api, profiles, titles):
    response = post(api, over_the_cap(profiles, titles))
    assert response.status_code == 413, response.content
    assert response.json()["details"]["max_rows"] == MAX_ROWS
    assert not Event.objects.exists()


def test_over_the_cap_is_413_too_many_rows(api, profiles, titles):
    response = post(api, over_the_cap(profiles, titles))
    assert response.status_code == 413 and response.json()["code"] == "too_many_rows"
