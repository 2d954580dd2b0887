"""Idempotency by client event id, and folding play/progress/complete events into viewing history."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import IntegrityError, transaction

from events.models import Event, EventKey, EventType
from tests.events.helpers import event, impression, moment, post
from tests.factories.events import ApiClientFactory, EventFactory
from tests.factories.users import ViewingEventFactory
from users.models import DeviceType, ViewingEvent


def history(profile) -> list[tuple]:
    return list(
        ViewingEvent.objects.filter(profile=profile)
        .order_by("title_id", "started_at")
        .values_list("title_id", "started_at", "last_watched_at", "watch_seconds", "watch_percentage", "completed")
    )


def test_a_retried_batch_stores_nothing_twice_and_leaves_history_alone(api, app_client, profiles, titles):
    profile, started = profiles[0], moment(40)
    batch = [
        impression(profile.pk, [t.pk for t in titles[:4]]),
        event("click", profile.pk, content_id=titles[0].pk, position=1),
        event("play", profile.pk, content_id=titles[0].pk, started_at=started),
        event("progress", profile.pk, content_id=titles[0].pk, started_at=started, watch_percentage=0.4),
    ]
    first = post(api, batch).json()
    viewings = history(profile)
    # A later progress moves the viewing on; then the first batch arrives again (a client retry).
    post(
        api,
        [
            event(
                "progress",
                profile.pk,
                content_id=titles[0].pk,
                started_at=started,
                watch_percentage=0.6,
                occurred_at=moment(5),
            )
        ],
    )
    moved_on = history(profile)
    retried = post(api, batch)

    assert (first["accepted"], first["duplicates"]) == (7, 0)
    assert retried.status_code == 200
    assert (retried.json()["accepted"], retried.json()["duplicates"], retried.json()["rejected"]) == (0, 7, 0)
    assert Event.objects.filter(client=app_client).count() == 8
    assert len(viewings) == 1 and viewings[0][4] == pytest.approx(0.4)
    assert history(profile) == moved_on and moved_on[0][4] == pytest.approx(0.6)


def test_an_event_id_repeated_within_a_batch_is_stored_once(api, app_client, profiles, titles):
    click = event("click", profiles[0].pk, content_id=titles[0].pk)
    body = post(api, [click, {**click, "content_id": titles[1].pk}]).json()
    assert (body["accepted"], body["duplicates"]) == (1, 1)
    assert Event.objects.get(client=app_client).title_id == titles[0].pk  # the first one


def test_the_same_event_id_from_two_apps_is_two_events(api, app_client, profiles, titles):
    other_key = "other-app-key-0123456789abcdef"
    ApiClientFactory(key=other_key)
    click = event("click", profiles[0].pk, content_id=titles[0].pk)
    post(api, [click])
    api.credentials(HTTP_X_API_KEY=other_key)
    assert post(api, [click]).json()["accepted"] == 1
    assert Event.objects.filter(client_event_id=click["event_id"]).count() == 2


def test_play_progress_complete_fold_into_one_completed_viewing(api, profiles, titles):
    profile, title = profiles[1], titles[2]  # a 100-minute title
    started = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(hours=2)
    at = [started + dt.timedelta(minutes=m) for m in (0, 50, 95)]
    post(
        api,
        [
            event(
                "play",
                profile.pk,
                content_id=title.pk,
                started_at=started.isoformat(),
                occurred_at=at[0].isoformat(),
                device_type="mobile",
            )
        ],
    )
    post(
        api,
        [
            event(
                "progress",
                profile.pk,
                content_id=title.pk,
                started_at=started.isoformat(),
                occurred_at=at[1].isoformat(),
                watch_percentage=0.5,
                device_type="tv",
            )
        ],
    )
    post(
        api,
        [
            event(
                "complete",
                profile.pk,
                content_id=title.pk,
                started_at=started.isoformat(),
                occurred_at=at[2].isoformat(),
                watch_percentage=0.85,
            )
        ],
    )

    viewing = ViewingEvent.objects.get(profile=profile)
    assert (viewing.title_id, viewing.started_at, viewing.last_watched_at) == (title.pk, started, at[2])
    assert viewing.watch_percentage == pytest.approx(0.85) and viewing.watch_seconds == 85 * 60
    assert viewing.completed and viewing.device_type == DeviceType.MOBILE  # where playback began


def test_progress_arriving_out_of_order_keeps_the_furthest_point(api, profiles, titles):
    profile, title, started = profiles[0], titles[0], moment(90)
    late = event(
        "progress", profile.pk, content_id=title.pk, started_at=started, watch_percentage=0.7, occurred_at=moment(20)
    )
    early = event(
        "progress", profile.pk, content_id=title.pk, started_at=started, watch_percentage=0.3, occurred_at=moment(60)
    )
    post(api, [late])
    post(api, [early])
    [(_, _, last_watched, seconds, percentage, completed)] = history(profile)

    assert percentage == pytest.approx(0.7) and seconds == 70 * 60 and not completed
    assert last_watched == dt.datetime.fromisoformat(late["occurred_at"])


def test_one_batch_with_several_events_of_a_viewing_folds_them_together(api, profiles, titles):
    profile, started = profiles[0], moment(90)
    events = [
        event("progress", profile.pk, content_id=titles[0].pk, started_at=started, watch_percentage=p)
        for p in (0.2, 0.95, 0.5)
    ]
    events.append(event("play", profile.pk, content_id=titles[1].pk, started_at=started))
    post(api, events)
    rows = history(profile)
    assert [(title_id, percentage, completed) for title_id, _, _, _, percentage, completed in rows] == [
        (titles[0].pk, pytest.approx(0.95), True),
        (titles[1].pk, 0.0, False),
    ]


def test_an_existing_viewing_is_raised_not_duplicated_and_never_lowered(api, profiles, titles):
    viewing = ViewingEventFactory(profile=profiles[0], title=titles[0], watch_percentage=0.6)
    progress = {"content_id": titles[0].pk, "started_at": viewing.started_at.isoformat()}
    post(api, [event("progress", profiles[0].pk, watch_percentage=0.2, occurred_at=moment(1), **progress)])
    viewing.refresh_from_db()
    assert viewing.watch_percentage == pytest.approx(0.6) and viewing.last_watched_at > viewing.started_at
    post(api, [event("progress", profiles[0].pk, watch_percentage=0.92, **progress)])
    viewing.refresh_from_db()
    assert ViewingEvent.objects.filter(profile=profiles[0]).count() == 1
    assert viewing.watch_percentage == pytest.approx(0.92) and viewing.completed


def test_impressions_and_clicks_leave_viewing_history_alone(api, profiles, titles):
    post(api, [impression(profiles[0].pk, [titles[0].pk]), event("click", profiles[0].pk, content_id=titles[0].pk)])
    assert Event.objects.count() == 2 and not ViewingEvent.objects.exists()


def test_the_database_refuses_what_the_api_refuses(db):
    for bad in (
        {"propensity": 0.0},
        {"watch_percentage": 1.5},
        {"position": 0},
        {"type": "scroll"},
        {"device_type": 9},
    ):
        with pytest.raises(IntegrityError), transaction.atomic():
            EventFactory(**bad)
    with pytest.raises(IntegrityError), transaction.atomic():
        EventFactory(type=EventType.IMPRESSION, position=None)  # an impression row is an item: it has a position
    # The key is unique in EventKey (the partitioned events table cannot hold it): a second one is refused.
    first = EventFactory(type=EventType.IMPRESSION, propensity=1.0, position=2)
    key = {"client": first.client, "client_event_id": first.client_event_id, "occurred_at": first.occurred_at}
    EventKey.objects.create(**key, item_position=2)
    with pytest.raises(IntegrityError), transaction.atomic():
        EventKey.objects.create(**key, item_position=2)
    EventKey.objects.create(**key, item_position=0)  # a click of the same id is item 0: its own key
    with pytest.raises(IntegrityError), transaction.atomic():
        EventKey.objects.create(**key, item_position=0)
