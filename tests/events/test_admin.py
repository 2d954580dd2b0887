"""The events admin: read-only, filters by type, experiment and arm that stay cheap on a big table."""

from __future__ import annotations

import pytest

from events.models import Event, EventType
from events.selectors import experiment_arms
from tests.admin_helpers import admin_url, changelist_queries, listed
from tests.factories.events import EventFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def stored_events():
    return {
        "control": EventFactory(experiment="home-rows", arm="control"),
        "bandit": EventFactory(experiment="home-rows", arm="bandit", type=EventType.IMPRESSION, propensity=0.25),
        "other": EventFactory(experiment="artwork", arm="a"),
        "plain": EventFactory(),
    }


def test_experiment_arms_lists_each_pair_once_in_order(stored_events):
    EventFactory(experiment="home-rows", arm="bandit")
    assert experiment_arms() == [("artwork", "a"), ("home-rows", "bandit"), ("home-rows", "control")]


def test_changelist_filters_by_type_experiment_and_arm(admin_client, stored_events):
    ids = {name: e.pk for name, e in stored_events.items()}
    assert listed(admin_client, Event) == set(ids.values())
    assert listed(admin_client, Event, type="impression") == {ids["bandit"]}
    assert listed(admin_client, Event, experiment="home-rows") == {ids["control"], ids["bandit"]}
    assert listed(admin_client, Event, experiment="home-rows", arm="control") == {ids["control"]}
    page = admin_client.get(admin_url(Event, "changelist"), {"experiment": "home-rows"}).content.decode()
    assert "?arm=bandit&amp;experiment=home-rows" in page and "?arm=a&amp;" not in page  # its arms only


def test_events_are_read_only_in_the_admin(admin_client, stored_events):
    event = stored_events["bandit"]
    assert admin_client.get(admin_url(Event, "add")).status_code == 403
    assert admin_client.post(admin_url(Event, "change", event.pk), {"arm": "x"}).status_code == 403
    assert admin_client.post(admin_url(Event, "delete", event.pk), {"post": "yes"}).status_code == 403
    event.refresh_from_db()
    assert event.arm == "bandit"
    assert admin_client.get(admin_url(Event, "change", event.pk)).status_code == 200


def test_changelist_queries_do_not_grow_with_rows(admin_client, stored_events):
    few = changelist_queries(admin_client, Event)
    EventFactory.create_batch(10, experiment="home-rows", arm="control")
    assert changelist_queries(admin_client, Event) == few
