"""An event that names its account (`user_id`) is stored only when that account owns the event's profile."""

from __future__ import annotations

import pytest

from events.models import Event
from tests.events.helpers import event, impression, moment, post
from tests.factories.users import AccountFactory


def test_an_event_whose_user_does_not_own_its_profile_is_rejected_and_the_others_are_stored(
    api, app_client, profiles, titles
):
    mine, theirs = profiles[0], profiles[1]
    stranger = AccountFactory()
    events = [
        event("click", mine.pk, content_id=titles[0].pk, user_id=mine.account_id),
        event("click", theirs.pk, content_id=titles[0].pk, user_id=mine.account_id),  # another account's profile
        impression(mine.pk, [titles[0].pk, titles[1].pk], user_id=stranger.pk),
        event("play", mine.pk, content_id=titles[0].pk, started_at=moment(20), user_id=10**12),  # no such account
        event("click", theirs.pk, content_id=titles[1].pk),  # no user_id: nothing to check
    ]
    body = post(api, events).json()

    assert (body["accepted"], body["rejected"]) == (2, 3)
    assert {error["index"]: error["errors"] for error in body["errors"]} == {
        1: {"user_id": [f"Profile {theirs.pk} does not belong to user {mine.account_id}."]},
        2: {"user_id": [f"Profile {mine.pk} does not belong to user {stranger.pk}."]},
        3: {"user_id": [f"Profile {mine.pk} does not belong to user {10**12}."]},
    }
    stored = Event.objects.filter(client=app_client).values_list("client_event_id", flat=True)
    assert sorted(stored) == sorted([events[0]["event_id"], events[4]["event_id"]])


@pytest.mark.parametrize("user_id", ["abc", 0, -3, True, 2**63, 1.5, {"id": 1}])
def test_a_malformed_user_id_is_a_field_error(api, profiles, titles, user_id):
    good = event("click", profiles[0].pk, content_id=titles[0].pk)
    response = post(api, [good, event("click", profiles[0].pk, content_id=titles[0].pk, user_id=user_id)])
    assert response.status_code == 400 and list(response.json()["details"]["errors"][0]["errors"]) == ["user_id"]


def test_a_numeric_string_user_id_is_refused_as_the_schema_says_integer(api, profiles, titles):
    owned = event("click", profiles[0].pk, content_id=titles[0].pk, user_id=str(profiles[0].account_id))
    body = post(api, [owned]).json()
    assert body["code"] == "invalid_events" and list(body["details"]["errors"][0]["errors"]) == ["user_id"]


def test_the_check_costs_no_query_per_event(api, profiles, titles, django_assert_max_num_queries):
    def batch(n: int) -> list[dict]:
        return [
            event("click", profiles[i % 3].pk, content_id=titles[i % 6].pk, user_id=profiles[i % 3].account_id)
            for i in range(n)
        ]

    assert post(api, batch(3)).status_code == 200  # warms the API-key cache
    # profiles with their accounts, titles, one statement that stores and folds, and the savepoint pair
    with django_assert_max_num_queries(5):
        assert post(api, batch(300)).json()["accepted"] == 300
