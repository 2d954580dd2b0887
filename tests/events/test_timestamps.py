"""Moments are stored in UTC; one PostgreSQL cannot read is refused on its own event, never failing the batch.

Python reads offsets up to ±23:59:59.999999; PostgreSQL only ±15:59:59 in whole seconds, and a year past 9999
once in UTC not at all. Before issue #14 such an offset reached PostgreSQL and failed the whole batch with a 500.
"""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import event as count_outcome
from hypothesis import strategies as st

from events.models import Event
from tests.events.helpers import event, post
from users.models import ViewingEvent

EARLIEST = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
POSTGRES_MAX_OFFSET = dt.timedelta(hours=15, minutes=59, seconds=59)


def good_click(profile, title) -> dict:
    return event("click", profile.pk, content_id=title.pk)


@pytest.mark.parametrize(
    "value",
    [
        "2026-01-10T08:00:00+16:00",
        "2026-01-10T08:00:00-16:00",
        "2026-01-10T08:00:00+23:59:59.999999",
        "2026-01-10T08:00:00+05:30:00.5",
        "2026-01-10T08:00:00-00:00:01.000001",
        "2026-01-10T08:00:00+00:00:00.5",  # Python alone reads it as +00:00
        "9999-12-31T23:30:00-01:00",  # year 10000 in UTC
        "0001-01-01T00:30:00+01:00",  # year 0 in UTC
    ],
)
def test_a_moment_postgresql_cannot_read_rejects_its_event_and_the_others_are_stored(
    api, app_client, profiles, titles, value
):
    good = good_click(profiles[0], titles[0])
    bad_click = event("click", profiles[0].pk, content_id=titles[0].pk, occurred_at=value)
    bad_play = event("play", profiles[0].pk, content_id=titles[0].pk, started_at=value)
    response = post(api, [good, bad_click, bad_play])

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["accepted"], body["rejected"]) == (1, 2)
    assert [(error["index"], list(error["errors"])) for error in body["errors"]] == [
        (1, ["occurred_at"]),
        (2, ["started_at"]),
    ]
    assert list(Event.objects.filter(client=app_client).values_list("client_event_id", flat=True)) == [good["event_id"]]
    assert not ViewingEvent.objects.exists()


@pytest.mark.parametrize("offset", ["+15:59:59", "-15:59:59", "+14:00", "-12:00", "+05:45:30", "Z", "+00:00"])
def test_any_offset_postgresql_reads_is_stored_converted_to_utc(api, app_client, profiles, titles, offset):
    local = "2026-01-10T08:00:00"
    started = dt.datetime.fromisoformat(local + offset).astimezone(dt.UTC)
    play = event("play", profiles[0].pk, content_id=titles[0].pk, started_at=local + offset, occurred_at=local + offset)
    assert post(api, [play]).json()["accepted"] == 1

    stored = Event.objects.get(client=app_client)
    assert stored.occurred_at == started and stored.occurred_at.utcoffset() == dt.timedelta(0)
    assert ViewingEvent.objects.get(profile=profiles[0]).started_at == started


def in_utc(local: dt.datetime, offset: dt.timedelta | None) -> dt.datetime | None:
    """`local` at `offset` in UTC, by plain arithmetic (apart from the parser's); None off the calendar."""
    try:
        return (local - (offset or dt.timedelta(0))).replace(tzinfo=dt.UTC)
    except OverflowError:
        return None


def expected_utc(local: dt.datetime, offset: dt.timedelta | None, latest: dt.datetime) -> dt.datetime | None:
    """The moment the service must store, or None where it must refuse it."""
    if offset is not None and (abs(offset) > POSTGRES_MAX_OFFSET or offset % dt.timedelta(seconds=1)):
        return None
    utc = in_utc(local, offset)
    return utc if utc is not None and EARLIEST <= utc <= latest else None


near_window = st.datetimes(min_value=dt.datetime(1999, 12, 30), max_value=dt.datetime.now() + dt.timedelta(days=2))
any_date = st.datetimes(min_value=dt.datetime(1, 1, 1), max_value=dt.datetime(9999, 12, 31, 23, 59, 59))
# Everything Python can read, from whole minutes to fractions of a second, around PostgreSQL's ±15:59:59.
offsets = (
    st.none()
    | st.integers(-23 * 60 - 59, 23 * 60 + 59).map(lambda minutes: dt.timedelta(minutes=minutes))
    | st.integers(-86399, 86399).map(lambda seconds: dt.timedelta(seconds=seconds))
    | st.timedeltas(
        min_value=-dt.timedelta(hours=24) + dt.timedelta(microseconds=1),
        max_value=dt.timedelta(hours=24) - dt.timedelta(microseconds=1),
    )
    | st.sampled_from(
        [dt.timedelta(hours=sign * 15, minutes=sign * 59, seconds=sign * s) for sign in (-1, 1) for s in (59, 60)]
    )
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(local=near_window | any_date, offset=offsets)
def test_random_offsets_and_dates_never_fail_the_batch_and_valid_moments_are_stored_in_utc(
    api, app_client, profiles, titles, local, offset
):
    text = local.isoformat() if offset is None else local.replace(tzinfo=dt.timezone(offset)).isoformat()
    latest = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)
    utc = in_utc(local, offset)
    assume(utc is None or abs(utc - latest) > dt.timedelta(seconds=30))  # the server's clock reads a little later
    expected = expected_utc(local, offset, latest)

    good = good_click(profiles[0], titles[0])
    click = event("click", profiles[1].pk, content_id=titles[1].pk, occurred_at=text)
    play = event("play", profiles[2].pk, content_id=titles[2].pk, started_at=text)
    response = post(api, [good, click, play])
    count_outcome("refused" if expected is None else "stored")  # --hypothesis-show-statistics: about 60/40

    assert response.status_code == 200, (text, response.content)
    body = response.json()
    stored = dict(
        Event.objects.filter(
            client=app_client, client_event_id__in=[good["event_id"], click["event_id"], play["event_id"]]
        ).values_list("client_event_id", "occurred_at")
    )
    assert good["event_id"] in stored
    if expected is None:
        assert (body["accepted"], body["rejected"]) == (1, 2), text
        assert [list(error["errors"]) for error in body["errors"]] == [["occurred_at"], ["started_at"]]
        assert set(stored) == {good["event_id"]}
    else:
        assert (body["accepted"], body["rejected"]) == (3, 0), text
        assert stored[click["event_id"]] == expected
        assert ViewingEvent.objects.filter(profile=profiles[2], title=titles[2], started_at=expected).exists()
