"""The shapes of POST /api/events, for the OpenAPI schema; requests are validated by events/api/parsing.py."""

from __future__ import annotations

from drf_spectacular.utils import PolymorphicProxySerializer
from rest_framework import serializers

from events.api.parsing import MAX_EVENT_ID_LENGTH, MAX_EVENTS, MAX_ITEMS, MAX_POSITION, MAX_ROWS
from events.models import EventType
from recommendations.api.serializers import DeviceOrNumberField

MAX_ID = 2**63 - 1


class ImpressionItemSerializer(serializers.Serializer):
    content_id = serializers.IntegerField(min_value=1, max_value=MAX_ID)
    position = serializers.IntegerField(
        min_value=1, max_value=MAX_POSITION, help_text="1-based, unique within the impression."
    )
    row = serializers.CharField(max_length=64, required=False, help_text="Row key; default: the event's `row`.")
    propensity = serializers.FloatField(
        required=False, min_value=0, max_value=1, help_text="(0, 1]: probability the policy showed it here."
    )
    policy = serializers.CharField(max_length=16, required=False, help_text="ranker, bandit, random, ...")


class _EventSerializer(serializers.Serializer):
    """What every event carries."""

    event_id = serializers.CharField(
        min_length=1, max_length=MAX_EVENT_ID_LENGTH, help_text="The client's id: a retry stores nothing twice."
    )
    profile_id = serializers.IntegerField(min_value=1, max_value=MAX_ID)
    user_id = serializers.IntegerField(
        min_value=1, max_value=MAX_ID, required=False, help_text="The account; when given it must own the profile."
    )
    occurred_at = serializers.DateTimeField(
        help_text="At most 5 minutes in the future; an offset within ±15:59:59 in whole seconds (stored in UTC)."
    )
    device_type = DeviceOrNumberField(help_text="tv, mobile, tablet, web or console (or its number).")
    request_id = serializers.CharField(max_length=32, required=False, help_text="The /api/recs response's request_id.")
    experiment = serializers.CharField(max_length=64, required=False)
    arm = serializers.CharField(max_length=64, required=False)
    row = serializers.CharField(max_length=64, required=False)


def _type(value: str) -> serializers.ChoiceField:
    return serializers.ChoiceField(choices=[value])


class ImpressionEventSerializer(_EventSerializer):
    """Titles shown to the profile, one row per item."""

    type = _type(EventType.IMPRESSION)
    items = serializers.ListField(
        child=ImpressionItemSerializer(),
        min_length=1,
        max_length=MAX_ITEMS,
        help_text=f"The 1 to {MAX_ITEMS} titles shown.",
    )


class ClickEventSerializer(_EventSerializer):
    """A tile clicked."""

    type = _type(EventType.CLICK)
    content_id = serializers.IntegerField(min_value=1, max_value=MAX_ID)
    position = serializers.IntegerField(min_value=1, max_value=MAX_POSITION, required=False)


class PlayEventSerializer(ClickEventSerializer):
    """Playback started."""

    type = _type(EventType.PLAY)
    started_at = serializers.DateTimeField(
        help_text="When playback began (identifies the viewing); the same rules as occurred_at."
    )


class ProgressEventSerializer(PlayEventSerializer):
    """How far playback got."""

    type = _type(EventType.PROGRESS)
    watch_percentage = serializers.FloatField(min_value=0, max_value=1)


class CompleteEventSerializer(PlayEventSerializer):
    """Playback finished."""

    type = _type(EventType.COMPLETE)
    watch_percentage = serializers.FloatField(min_value=0, max_value=1, required=False, help_text="Default 1.")


EVENT_SERIALIZERS = {
    EventType.IMPRESSION: ImpressionEventSerializer,
    EventType.CLICK: ClickEventSerializer,
    EventType.PLAY: PlayEventSerializer,
    EventType.PROGRESS: ProgressEventSerializer,
    EventType.COMPLETE: CompleteEventSerializer,
}
EventSerializer = PolymorphicProxySerializer(
    component_name="Event",
    serializers={str(kind): cls for kind, cls in EVENT_SERIALIZERS.items()},
    resource_type_field_name="type",
    many=False,
)


class EventBatchSerializer(serializers.Serializer):
    events = serializers.ListField(
        child=EventSerializer,
        min_length=1,
        max_length=MAX_EVENTS,
        help_text=f"At most {MAX_ROWS:,} rows in all: an impression's items count one each, any other event one.",
    )


class EventErrorSerializer(serializers.Serializer):
    index = serializers.IntegerField(help_text="The event's place in the request, from 0.")
    event_id = serializers.CharField(allow_null=True)
    errors = serializers.DictField(help_text="Messages per field; `items` maps an item's index to its own.")


class EventBatchResultSerializer(serializers.Serializer):
    accepted = serializers.IntegerField(help_text="Rows stored now (an impression stores one per item).")
    duplicates = serializers.IntegerField(help_text="Rows already stored by an earlier (retried) batch.")
    rejected = serializers.IntegerField(help_text="Events refused; `errors` says why.")
    errors = EventErrorSerializer(many=True)
