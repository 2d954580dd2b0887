"""The admin login locks a username from one address after repeated wrong passwords (django-axes; issue #14:
30 wrong passwords in a row were accepted as tries). Real requests to the admin login, attempts in the database."""

from __future__ import annotations

import datetime as dt

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.db.models import F
from django.urls import reverse

from tests.factories.auth import UserFactory

LOGIN = reverse("admin:login")
PASSWORD = "the-right-password"


@pytest.fixture
def admin_user(db):
    return UserFactory(username="ops", is_staff=True, is_superuser=True, password=PASSWORD)


def _try(client, password: str, *, address: str = "127.0.0.1", username: str = "ops", **headers):
    return client.post(
        LOGIN, {"username": username, "password": password, "next": "/admin/"}, REMOTE_ADDR=address, **headers
    )


def _cool_off_passes() -> None:
    AccessAttempt.objects.update(
        attempt_time=F("attempt_time") - dt.timedelta(hours=settings.AXES_COOLOFF_TIME, minutes=1)
    )


def test_six_wrong_passwords_lock_the_login_and_the_right_one_is_refused_until_the_cool_off(client, admin_user):
    statuses = [_try(client, f"wrong-{i}").status_code for i in range(6)]
    assert settings.AXES_FAILURE_LIMIT == 5
    assert statuses == [200, 200, 200, 200, 429, 429]  # the form again four times, then locked

    refused = _try(client, PASSWORD)
    assert refused.status_code == 429
    assert "Too many failed logins" in refused.content.decode()
    assert int(refused["Retry-After"]) > 60
    assert "_auth_user_id" not in client.session

    as_json = _try(client, PASSWORD, HTTP_ACCEPT="application/json")
    assert as_json.status_code == 429
    assert as_json.json()["code"] == "login_locked" and as_json.json()["details"]["retry_after_seconds"] > 60

    _cool_off_passes()
    accepted = _try(client, PASSWORD)
    assert accepted.status_code == 302 and accepted["Location"] == "/admin/"
    assert client.session["_auth_user_id"] == str(admin_user.pk)


def test_the_lock_holds_one_username_from_one_address_only(client, admin_user):
    for i in range(5):
        _try(client, f"wrong-{i}")
    assert _try(client, PASSWORD).status_code == 429
    assert _try(client, PASSWORD, address="10.0.0.2").status_code == 302  # the owner, elsewhere
    client.logout()
    UserFactory(username="other", is_staff=True, password=PASSWORD)
    assert _try(client, PASSWORD, username="other").status_code == 302  # another account, same address


def test_attempts_are_one_row_per_username_and_address_and_expire(client, admin_user):
    for i in range(12):
        _try(client, f"wrong-{i}")
    for name in ("eve", "mallory", "trent"):
        _try(client, "guess", username=name)
    assert AccessAttempt.objects.count() == 4
    assert AccessAttempt.objects.get(username="ops").failures_since_start == 12

    _cool_off_passes()
    _try(client, "guess", username="newcomer")  # any failure clears what has passed its cool-off
    assert list(AccessAttempt.objects.values_list("username", flat=True)) == ["newcomer"]


def test_a_successful_login_clears_earlier_failures(client, admin_user):
    for i in range(4):
        _try(client, f"wrong-{i}")
    assert _try(client, PASSWORD).status_code == 302
    client.logout()
    assert not AccessAttempt.objects.filter(username="ops").exists()
    for i in range(4):
        assert _try(client, f"wrong-again-{i}").status_code == 200  # counting starts over
