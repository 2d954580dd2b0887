"""Factories for the events app."""

from __future__ import annotations

import factory
from django.utils import timezone

from events.models import Event, EventType
from recommendations.models import ApiClient
from tests.factories.catalog import TitleFactory
from tests.factories.users import ProfileFactory
from users.models import DeviceType


class ApiClientFactory(factory.django.DjangoModelFactory):
    """An app with a known key: `ApiClientFactory(key="...")`; the key itself is never stored."""

    class Meta:
        model = ApiClient

    name = factory.Sequence(lambda n: f"test-app-{n}")
    rate = "100000/min"

    @classmethod
    def _create(cls, model_class, *args, key: str | None = None, **kwargs):
        client, _ = model_class.issue(kwargs["name"], key=key, rate=kwargs["rate"])
        return client


class EventFactory(factory.django.DjangoModelFactory):
    """A click by default; `EventFactory(type=EventType.IMPRESSION, position=3, propensity=0.2)` and so on."""

    class Meta:
        model = Event

    client = factory.SubFactory(ApiClientFactory)
    client_event_id = factory.Sequence(lambda n: f"test-event-{n}")
    type = EventType.CLICK
    profile = factory.SubFactory(ProfileFactory)
    title = factory.SubFactory(TitleFactory)
    position = 1
    device_type = DeviceType.TV
    occurred_at = factory.LazyFunction(timezone.now)
