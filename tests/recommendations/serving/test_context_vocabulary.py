"""The design's context vocabulary, the same in Python (UserContext) and over HTTP (/api/recs, batch, events)."""

from __future__ import annotations

import pytest

from recommendations.api.serializers import DeviceOrNumberField, RecsQuerySerializer, RecsRequestSerializer
from recommendations.serving.context import UserContext
from recommendations.vocabulary import DEVICE, SUBSCRIPTION_TIER, TIME_OF_DAY, ContextValueError
from users.models import DeviceType

VOCABULARIES = (DEVICE, TIME_OF_DAY, SUBSCRIPTION_TIER)


def test_user_context_takes_the_designs_names_and_holds_numbers():
    named = UserContext(
        user_id=123,
        profile_id=456,
        country="US",
        device_type="smart_tv",
        time_of_day="evening",
        subscription_tier="premium",
    )
    numbered = UserContext(
        user_id=123, profile_id=456, country="US", device_type=DeviceType.TV, time_of_day=21, subscription_tier=3
    )
    assert named == numbered and (named.device_type, named.time_of_day, named.subscription_tier) == (1, 21, 3)
    assert UserContext(device_type="tv").device_type == UserContext(device_type="smart_tv").device_type == 1
    assert [UserContext(time_of_day=part).time_of_day for part in ("night", "morning", "afternoon", "evening")] == [
        3,
        9,
        15,
        21,
    ]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("device_type", "toaster"),
        ("device_type", 9),
        ("device_type", True),
        ("time_of_day", 24),
        ("time_of_day", "Evening"),
        ("time_of_day", "20"),
        ("subscription_tier", "gold"),
        ("subscription_tier", 2.0),
    ],
)
def test_user_context_refuses_other_values_naming_the_valid_ones(field, value):
    with pytest.raises(ContextValueError) as raised:
        UserContext(**{field: value})
    assert raised.value.field == field and isinstance(raised.value, ValueError)
    vocabulary = next(v for v in VOCABULARIES if v.field == field)
    assert all(str(name) in str(raised.value) for name in vocabulary.names)


@pytest.mark.parametrize("vocabulary", VOCABULARIES, ids=lambda v: v.field)
def test_the_api_parses_every_value_as_user_context_does(vocabulary):
    for value in vocabulary.query_values:
        query = RecsQuerySerializer(data={"profile_id": "1", vocabulary.field: value})
        assert query.is_valid(), query.errors
        expected = vocabulary.parse(int(value) if value.isdigit() else value)
        assert query.validated_data[vocabulary.field] == getattr(
            UserContext(**{vocabulary.field: value if not value.isdigit() else int(value)}), vocabulary.field
        )
        assert query.validated_data[vocabulary.field] == expected
    for value in vocabulary.valid_values:  # a JSON body: names as strings, numbers as integers
        body = RecsRequestSerializer(data={"profile_id": 1, vocabulary.field: value})
        assert body.is_valid(), body.errors
        assert body.validated_data[vocabulary.field] == vocabulary.parse(value)


@pytest.mark.parametrize("vocabulary", VOCABULARIES, ids=lambda v: v.field)
def test_a_json_body_takes_numbers_as_integers_only(vocabulary):
    body = RecsRequestSerializer(data={"profile_id": 1, vocabulary.field: str(vocabulary.numbers[0])})
    assert not body.is_valid() and vocabulary.field in body.errors
    query = RecsQuerySerializer(data={"profile_id": "1", vocabulary.field: f"0{vocabulary.numbers[0]}"})
    assert not query.is_valid() and vocabulary.field in query.errors  # digits as JSON writes them: no leading 0


def test_events_take_the_same_device_names():
    field = DeviceOrNumberField()
    assert field.to_internal_value("smart_tv") == field.to_internal_value(1) == DeviceType.TV


def test_recs_over_http_take_the_designs_context_and_answer_as_python_does(api, profile):
    from recommendations.api.views import engine

    params = {
        "profile_id": profile.pk,
        "device_type": "smart_tv",
        "time_of_day": "evening",
        "subscription_tier": "premium",
        "n": 10,
        "rows": "false",
    }
    response = api.get("/api/recs", params)
    assert response.status_code == 200, response.content
    numbered = api.get("/api/recs", {**params, "device_type": "1", "time_of_day": "21", "subscription_tier": "3"})
    assert numbered.status_code == 200
    assert [i["content_id"] for i in numbered.json()["items"]] == [i["content_id"] for i in response.json()["items"]]
    python = engine.recommend(
        context=UserContext(
            profile_id=profile.pk, device_type="smart_tv", time_of_day="evening", subscription_tier="premium"
        ),
        n=10,
        with_rows=False,
    )
    assert [i["content_id"] for i in response.json()["items"]] == [i.content_id for i in python.items]

    batch = api.post(
        "/api/recs/batch",
        {
            "requests": [
                {
                    "profile_id": profile.pk,
                    "n": 10,
                    "rows": False,
                    "device_type": "smart_tv",
                    "time_of_day": "evening",
                    "subscription_tier": "premium",
                },
                {
                    "profile_id": profile.pk,
                    "n": 10,
                    "rows": False,
                    "device_type": 1,
                    "time_of_day": 21,
                    "subscription_tier": 3,
                },
            ]
        },
        format="json",
    )
    assert batch.status_code == 200, batch.content
    results = batch.json()["results"]
    assert [i["content_id"] for i in results[0]["items"]] == [i["content_id"] for i in results[1]["items"]]


@pytest.mark.parametrize(
    ("field", "value", "listed"),
    [
        ("device_type", "toaster", ["tv", "smart_tv", "mobile", "tablet", "web", "console", "1-5"]),
        ("time_of_day", "dusk", ["morning", "afternoon", "evening", "night", "0-23"]),
        ("time_of_day", "24", ["0-23"]),
        ("subscription_tier", "gold", ["basic", "standard", "premium", "1-3"]),
    ],
)
def test_a_bad_context_value_is_a_400_listing_the_valid_ones(api, field, value, listed):
    response = api.get("/api/recs", {"profile_id": 1, field: value})
    body = response.json()
    assert response.status_code == 400 and body["code"] == "invalid"
    (message,) = body["details"][field]
    assert all(valid in message for valid in listed), message
    batch = api.post("/api/recs/batch", {"requests": [{"profile_id": 1, field: value}]}, format="json")
    assert batch.status_code == 400 and field in str(batch.json()["details"])


def test_the_schema_lists_exactly_the_accepted_values(api):
    schema = api.get("/api/schema/", {"format": "json"}).json()
    parameters = {p["name"]: p["schema"] for p in schema["paths"]["/api/recs"]["get"]["parameters"]}
    for vocabulary in VOCABULARIES:
        assert parameters[vocabulary.field] == {"type": "string", "enum": vocabulary.query_values}
    body = schema["components"]["schemas"]["RecsRequest"]["properties"]
    for vocabulary in VOCABULARIES:
        names, numbers = body[vocabulary.field]["oneOf"]
        assert names == {"type": "string", "enum": list(vocabulary.names)}
        assert (numbers["minimum"], numbers["maximum"]) == (min(vocabulary.numbers), max(vocabulary.numbers))
