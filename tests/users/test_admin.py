"""The users admin: pages open, search and filters use indexed lookups, editors are kept out."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse

from catalog.models import MaturityRating, SubscriptionTier
from config.paginators import CappedCountPaginator
from tests.admin_helpers import admin_url, changelist_queries, listed
from tests.factories.catalog import CountryFactory
from tests.factories.users import AccountFactory, ProfileFactory, ViewingEventFactory
from users.models import Account, DeviceType, Profile, ViewingEvent

pytestmark = pytest.mark.django_db

USERS_MODELS = [Account, Profile, ViewingEvent]


def account_form_data(account: Account, profiles: list[dict[str, Any]]) -> dict[str, Any]:
    """A POST for the account change page that adds `profiles` through the inline."""
    data: dict[str, Any] = {
        "external_id": account.external_id,
        "country": account.country,
        "subscription_tier": account.subscription_tier,
        "created_at_0": account.created_at.date().isoformat(),
        "created_at_1": "12:00:00",
        "profiles-TOTAL_FORMS": len(profiles),
        "profiles-INITIAL_FORMS": 0,
        "profiles-MIN_NUM_FORMS": 0,
        "profiles-MAX_NUM_FORMS": 5,
    }
    for index, profile in enumerate(profiles):
        data.update({f"profiles-{index}-{field}": value for field, value in profile.items()})
    return data


def new_profile(slot: int, **fields: Any) -> dict[str, Any]:
    return {
        "slot": slot,
        "name": f"Viewer {slot}",
        "maturity_cap": MaturityRating.AGE_18,
        "created_at_0": "2025-01-01",
        "created_at_1": "12:00:00",
        **fields,
    }


def test_superuser_can_open_every_users_page(admin_client):
    event = ViewingEventFactory()
    for obj in (event.profile.account, event.profile, event):
        model = type(obj)
        for url in (admin_url(model, "changelist"), admin_url(model, "add"), admin_url(model, "change", obj.pk)):
            assert admin_client.get(url).status_code == 200, url


def test_account_search_matches_the_exact_external_id_only(admin_client):
    account = AccountFactory(external_id="syn:42")
    AccountFactory(external_id="syn:420")

    assert listed(admin_client, Account, q="syn:42") == {account.pk}
    assert listed(admin_client, Account, q="syn:4") == set()


def test_account_filters_by_tier_and_country(admin_client):
    CountryFactory(code="BR")
    premium = AccountFactory(subscription_tier=SubscriptionTier.PREMIUM)
    brazil = AccountFactory(country="BR")

    assert listed(admin_client, Account, subscription_tier__exact=SubscriptionTier.PREMIUM) == {premium.pk}
    assert listed(admin_client, Account, country="BR") == {brazil.pk}


def test_account_admin_adds_profiles_inline(admin_client, account):
    data = account_form_data(account, [new_profile(1), new_profile(2, is_kids="on", maturity_cap=MaturityRating.AGE_7)])

    response = admin_client.post(admin_url(Account, "change", account.pk), data)

    assert response.status_code == 302
    assert list(account.profiles.values_list("slot", "is_kids")) == [(1, False), (2, True)]


def test_account_inline_rejects_two_profiles_in_one_slot(admin_client, account):
    data = account_form_data(account, [new_profile(3), new_profile(3)])

    response = admin_client.post(admin_url(Account, "change", account.pk), data)

    assert response.status_code == 200
    assert response.context["inline_admin_formsets"][0].formset.non_form_errors()
    assert not account.profiles.exists()


def test_account_inline_offers_only_slots_one_to_five(admin_client, account):
    response = admin_client.post(admin_url(Account, "change", account.pk), account_form_data(account, [new_profile(6)]))

    assert response.status_code == 200
    assert "slot" in response.context["inline_admin_formsets"][0].formset.errors[0]
    assert not account.profiles.exists()


def test_profile_search_matches_the_account_external_id(admin_client):
    profile = ProfileFactory(account=AccountFactory(external_id="syn:7"))
    ProfileFactory(account=AccountFactory(external_id="syn:8"))

    assert listed(admin_client, Profile, q="syn:7") == {profile.pk}


def test_profile_filters_by_kids_and_maturity_cap(admin_client):
    kids = ProfileFactory(is_kids=True, maturity_cap=MaturityRating.AGE_7)
    teen = ProfileFactory(maturity_cap=MaturityRating.AGE_13)
    ProfileFactory()

    assert listed(admin_client, Profile, is_kids__exact=1) == {kids.pk}
    assert listed(admin_client, Profile, maturity_cap__exact=MaturityRating.AGE_13) == {teen.pk}


def test_profile_history_link_lists_only_that_profiles_events(admin_client, profile):
    mine = ViewingEventFactory(profile=profile)
    ViewingEventFactory()

    assert listed(admin_client, ViewingEvent, profile__id__exact=profile.pk) == {mine.pk}


def test_viewing_event_search_matches_an_exact_profile_id(admin_client, profile):
    mine = ViewingEventFactory(profile=profile)
    ViewingEventFactory()

    assert listed(admin_client, ViewingEvent, q=str(profile.pk)) == {mine.pk}
    assert listed(admin_client, ViewingEvent, q="not-an-id") == set()


def test_viewing_event_filters_by_device_and_completed(admin_client):
    mobile = ViewingEventFactory(device_type=DeviceType.MOBILE)
    finished = ViewingEventFactory(watch_percentage=0.95)

    assert listed(admin_client, ViewingEvent, device_type__exact=DeviceType.MOBILE) == {mobile.pk}
    assert listed(admin_client, ViewingEvent, completed__exact=1) == {finished.pk}


def test_viewing_event_count_stops_at_the_cap(admin_client, monkeypatch):
    monkeypatch.setattr(CappedCountPaginator, "count_cap", 3)
    ViewingEventFactory.create_batch(5)

    response = admin_client.get(admin_url(ViewingEvent, "changelist"))

    assert response.context["cl"].result_count == 3


@pytest.mark.parametrize("model", USERS_MODELS, ids=lambda m: m.__name__)
def test_changelist_queries_do_not_grow_with_rows(admin_client, model):
    ViewingEventFactory.create_batch(2)
    few = changelist_queries(admin_client, model)
    ViewingEventFactory.create_batch(10)

    assert changelist_queries(admin_client, model) == few


@pytest.mark.parametrize("model", USERS_MODELS, ids=lambda m: m.__name__)
def test_editor_gets_403_on_users_changelists(editor_client, model):
    assert editor_client.get(admin_url(model, "changelist")).status_code == 403


def test_editor_cannot_open_viewing_events(editor_client):
    event = ViewingEventFactory()

    assert editor_client.get(admin_url(ViewingEvent, "change", event.pk)).status_code == 403
    assert editor_client.get(admin_url(Profile, "change", event.profile.pk)).status_code == 403
    assert editor_client.get(admin_url(Account, "change", event.profile.account.pk)).status_code == 403


def test_editor_does_not_see_the_users_app_on_the_admin_index(editor_client):
    response = editor_client.get(reverse("admin:index"))

    assert [app["app_label"] for app in response.context["app_list"]] == ["catalog", "ranking"]


def test_non_staff_user_is_redirected_to_login(client, django_user_model):
    client.force_login(django_user_model.objects.create_user("viewer", password="x"))
    url = admin_url(ViewingEvent, "changelist")

    response = client.get(url)

    assert response.status_code == 302
    assert response.url == f"{reverse('admin:login')}?next={url}"
