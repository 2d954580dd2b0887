"""POST /api/events over HTTP: per-event validation, 400s, authentication, throttling, query budget, schema."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework.test import APIClient

from events.models import Event, EventType
from recommendations.models import ApiClient
from tests.events.helpers import event, impression, moment, post
from users.models import DeviceType


def test_good_events_are_stored_and_each_bad_one_is_reported_by_index(api, app_client, profiles, titles):
    profile, title = profiles[0], titles[0]
    events = [
        impression(profile.pk, [t.pk for t in titles[:3]], experiment="home-v2", arm="bandit"),
        event("click", profile.pk, content_id=title.pk, position=2, row="top-picks"),
        event("click", 10**12, content_id=title.pk),  # unknown profile
        event("click", profile.pk, content_id=title.pk, occurred_at=moment(minutes_ago=-10)),  # 10 min ahead
        impression(profile.pk, [titles[1].pk, 10**12]),  # one unknown title drops the whole impression
    ]
    response = post(api, events)

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["accepted"], body["duplicates"], body["rejected"]) == (4, 0, 3)
    errors = {error["index"]: error for error in body["errors"]}
    assert sorted(errors) == [2, 3, 4]
    assert "profile_id" in errors[2]["errors"] and errors[2]["event_id"] == events[2]["event_id"]
    assert "occurred_at" in errors[3]["errors"]
    assert errors[4]["errors"] == {"items": {"1": {"content_id": [f"Unknown title {10**12}."]}}}

    stored = Event.objects.filter(client=app_client).order_by("client_event_id", "item_position")
    impression_id = events[0]["event_id"]
    assert [(row.client_event_id, row.item_position) for row in stored] == [
        (impression_id, 1),
        (impression_id, 2),
        (impression_id, 3),
        (events[1]["event_id"], 0),
    ]
    shown = stored.get(client_event_id=impression_id, item_position=2)
    assert (shown.type, shown.title_id, shown.position, shown.row_key, shown.propensity, shown.policy) == (
        EventType.IMPRESSION,
        titles[1].pk,
        2,
        "top-picks",
        0.5,
        "ranker",
    )
    assert (shown.experiment, shown.arm, shown.request_id, shown.device_type) == (
        "home-v2",
        "bandit",
        "r" * 32,
        DeviceType.TV,
    )


def test_events_that_do_not_match_the_schema_store_nothing_and_are_reported_by_index(api, app_client, profiles, titles):
    events = [
        event("click", profiles[0].pk, content_id=titles[0].pk),
        event("progress", profiles[0].pk, content_id=titles[0].pk, started_at=moment(20)),  # no watch_percentage
        event("scroll", profiles[0].pk),
        "not an object",
    ]
    response = post(api, events)
    assert response.status_code == 400 and response.json()["code"] == "invalid_events"
    errors = {error["index"]: error["errors"] for error in response.json()["details"]["errors"]}
    assert sorted(errors) == [1, 2, 3]
    assert "watch_percentage" in errors[1] and "type" in errors[2] and "non_field_errors" in errors[3]
    assert not Event.objects.exists()  # the client still holds the batch: fixed and sent again, nothing is lost


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"event_id": ""}, "event_id"),
        ({"event_id": "x" * 65}, "event_id"),
        ({"profile_id": "abc"}, "profile_id"),
        ({"profile_id": True}, "profile_id"),
        ({"device_type": "toaster"}, "device_type"),
        ({"occurred_at": "yesterday"}, "occurred_at"),
        ({"request_id": "r" * 33}, "request_id"),
        ({"experiment": ["a"]}, "experiment"),
        ({"content_id": None}, "content_id"),
        ({"position": 0}, "position"),
        ({"started_at": None}, "started_at"),
        ({"profile_id": "5"}, "profile_id"),
        ({"event_id": 5}, "event_id"),
        ({"occurred_at": "2026-11-26"}, "occurred_at"),
    ],
)
def test_a_field_outside_the_schema_refuses_the_batch_naming_the_field(api, profiles, titles, change, field):
    good = event("play", profiles[0].pk, content_id=titles[0].pk, started_at=moment(11))
    response = post(
        api, [good, {**event("play", profiles[0].pk, content_id=titles[0].pk, started_at=moment(11)), **change}]
    )
    assert response.status_code == 400, response.content
    error = response.json()["details"]["errors"][0]
    assert error["index"] == 1 and field in error["errors"]
    assert not Event.objects.exists()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"occurred_at": "1999-12-31T23:00:00Z"}, "occurred_at"),
        ({"occurred_at": "2026-11-26T08:15:00+20:00"}, "occurred_at"),
        ({"row": "top\x00picks"}, "row"),
        ({"experiment": "\ud800"}, "experiment"),
        ({"event_id": "\ud800"}, "event_id"),
    ],
)
def test_content_the_schema_cannot_express_refuses_only_that_event(api, profiles, titles, change, field):
    good = event("play", profiles[0].pk, content_id=titles[0].pk, started_at=moment(11))
    response = post(
        api, [good, {**event("play", profiles[0].pk, content_id=titles[0].pk, started_at=moment(11)), **change}]
    )
    assert response.status_code == 200, response.content
    assert response.json()["accepted"] == 1
    assert field in response.json()["errors"][0]["errors"]


@pytest.mark.parametrize(
    ("items", "status", "message_part"),
    [
        ([], 400, "1 to 200"),
        ([{"content_id": 1, "position": i} for i in range(1, 202)], 400, "1 to 200"),
        ([{"content_id": 1, "position": 1}, {"content_id": 2, "position": 1}], 200, "twice"),
        ([{"content_id": 1, "position": 1, "propensity": 0}], 200, "(0, 1]"),
        ([{"content_id": 1, "position": 1, "propensity": 1.5}], 400, "[0, 1]"),
        ([{"content_id": 1, "position": 1, "policy": "p" * 17}], 400, "16 characters"),
        ([{"content_id": 1}], 400, "required"),
    ],
)
def test_impression_items_are_validated(api, profiles, items, status, message_part):
    """400 when the schema says no (nothing stored), 200 with the event refused when only its content is wrong."""
    response = post(api, [event("impression", profiles[0].pk, items=items)])
    assert response.status_code == status, response.content
    body = response.json()
    errors = body["details"]["errors"] if status == 400 else body["errors"]
    assert message_part in str(errors[0]["errors"]["items"])


def test_watch_percentage_must_be_within_0_and_1_and_complete_defaults_to_1(api, app_client, profiles, titles):
    started = moment(30)
    events = [
        event("progress", profiles[0].pk, content_id=titles[0].pk, started_at=started, watch_percentage=1.2),
        event("complete", profiles[0].pk, content_id=titles[0].pk, started_at=started),
    ]
    response = post(api, events)
    assert response.status_code == 400 and "watch_percentage" in response.json()["details"]["errors"][0]["errors"]
    assert post(api, events[1:]).status_code == 200
    assert Event.objects.get(client=app_client).watch_percentage == 1.0


def test_well_formed_events_all_refused_for_their_content_are_a_200_saying_so(api, profiles):
    response = post(api, [event("click", 10**12, content_id=1), event("click", 10**12 + 1, content_id=1)])
    assert response.status_code == 200  # the request was right; each event's answer is in the body
    body = response.json()
    assert (body["accepted"], body["duplicates"], body["rejected"]) == (0, 0, 2)
    assert all("profile_id" in error["errors"] for error in body["errors"])
    assert not Event.objects.exists()


@pytest.mark.parametrize(
    "body",
    [[], {}, {"events": []}, {"events": "many"}, {"events": [{"type": "click"}] * 1001}, {"batch": []}],
)
def test_a_malformed_envelope_is_400_invalid_batch(api, body):
    response = api.post("/api/events", body, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_batch" and "events" in response.json()["details"]


def test_a_body_that_is_not_json_is_400_not_500(api):
    response = api.generic("POST", "/api/events", b"{not json", content_type="application/json")
    assert response.status_code == 400


def test_no_key_is_401_and_a_revoked_key_too(db, profiles):
    client = APIClient()
    assert post(client, [event("click", profiles[0].pk, content_id=1)]).status_code == 401
    revoked, key = ApiClient.issue("revoked-app")
    ApiClient.objects.filter(pk=revoked.pk).update(is_active=False)
    client.credentials(HTTP_X_API_KEY=key)
    assert post(client, [event("click", profiles[0].pk, content_id=1)]).status_code == 401


def test_each_client_is_throttled_at_its_own_rate(app_client, profiles, titles):
    _, key = ApiClient.issue("slow-app", rate="2/min")
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=key)
    codes = [post(client, [event("click", profiles[0].pk, content_id=titles[0].pk)]).status_code for _ in range(3)]
    assert codes == [200, 200, 429]


def test_a_batch_takes_the_same_few_queries_whatever_its_size(api, profiles, titles, django_assert_max_num_queries):
    started = moment(60)

    def batch(n: int) -> list[dict]:
        return [
            event(
                ["click", "play", "progress"][i % 3],
                profiles[i % 3].pk,
                content_id=titles[i % 6].pk,
                started_at=started,
                watch_percentage=0.3,
            )
            for i in range(n)
        ] + [impression(profiles[0].pk, [t.pk for t in titles])]

    assert post(api, batch(3)).status_code == 200  # warms the API-key cache
    # profiles, titles, one statement that stores and folds, and the transaction's savepoint pair
    with django_assert_max_num_queries(5):
        assert post(api, batch(300)).json()["accepted"] == 306


def test_occurred_at_without_a_zone_is_utc(api, app_client, profiles, titles):
    naive = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)).replace(tzinfo=None, microsecond=0)
    post(api, [event("click", profiles[0].pk, content_id=titles[0].pk, occurred_at=naive.isoformat())])
    assert Event.objects.get(client=app_client).occurred_at == naive.replace(tzinfo=dt.UTC)


def test_the_schema_documents_the_events_endpoint(api):
    schema = api.get("/api/schema/", {"format": "json"}).json()
    assert "post" in schema["paths"]["/api/events"]
    assert "ApiKey" in str(schema["paths"]["/api/events"]["post"]["security"])


def test_a_body_over_the_upload_limit_is_413_body_too_large(api, settings, profiles, titles):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    events = [impression(profiles[0].pk, [t.pk for t in titles]) for _ in range(40)]
    response = post(api, events)
    assert response.status_code == 413 and response.json()["code"] == "body_too_large"
    assert not Event.objects.exists()


FIELDS = [
    "event_id",
    "type",
    "profile_id",
    "occurred_at",
    "device_type",
    "content_id",
    "position",
    "row",
    "items",
    "started_at",
    "watch_percentage",
    "request_id",
    "experiment",
    "arm",
]
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=90)
    | st.sampled_from(["\x00", "\ud800", "a" * 100]),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.sampled_from(["content_id", "position", "propensity"]), children)
    ),
    max_leaves=8,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(garbage=st.lists(st.dictionaries(st.sampled_from(FIELDS), json_values) | json_values, min_size=1, max_size=5))
def test_no_input_makes_it_fail_with_a_500(api, profiles, titles, garbage):
    plausible = event("play", profiles[0].pk, content_id=titles[0].pk, started_at=moment(30))
    for events in (garbage, [plausible | value for value in garbage if isinstance(value, dict)] or garbage):
        response = post(api, events)
        assert response.status_code in (200, 400), response.content
        body = response.json()
        if response.status_code == 200:
            assert body["rejected"] == len(body["errors"]) < len(events)
