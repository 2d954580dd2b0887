"""The shapes of POST /api/events, for the OpenAPI schema; requests are validated by events/api/parsing.py."""
from __future__ import annotations

from rest_framework import serializers

from events.api.parsing import MAX_EVENT_ID_LENGTH, MAX_EVENTS, MAX_ITEMS, MAX_ROWS
from events.models import EventType
from recommendations.api.serializers import DeviceField


class ImpressionItemSerializer(serializers.Serializer):
    content_id = serializers.IntegerField(min_value=1)
    position = serializers.IntegerField(min_value=1, help_text="1-based, unique within the impression.")
    row = serializers.CharField(max_length=64, required=False, help_text="Row key; default: the event's `row`.")
    propensity = serializers.FloatField(required=False, help_text="(0, 1]: probability the policy showed it here.")
    policy = serializers.CharField(max_length=16, required=False, help_text="ranker, bandit, random, ...")


class EventSerializer(serializers.Serializer):
    event_id = serializers.CharField(max_length=MAX_EVENT_ID_LENGTH, help_text="The client's id: a retry stores nothing twice.")
    type = serializers.ChoiceField(choices=EventType.values)
    profile_id = serializers.IntegerField(min_value=1)
    user_id = serializers.IntegerField(min_value=1, max_value=2**63 - 1, required=False,
                                       help_text="The account; when given it must own the profile.")  # fmt: skip
    occurred_at = serializers.DateTimeField(help_text="At most 5 minutes in the future; an offset within "
                                            "±15:59:59 in whole seconds (stored in UTC).")  # fmt: skip
    device_type = DeviceField(help_text="tv, mobile, tablet, web or console (or its number).")
    request_id = serializers.CharField(max_length=32, required=False, help_text="The /api/recs response's request_id.")
    experiment = serializers.CharField(max_length=64, required=False)
    arm = serializers.CharField(max_length=64, required=False)
    items = ImpressionItemSerializer(many=True, required=False, max_length=MAX_ITEMS,
                                     help_text=f"impression: the 1 to {MAX_ITEMS} titles shown.")  # fmt: skip
    row = serializers.CharField(max_length=64, required=False)
    content_id = serializers.IntegerField(min_value=1, required=False, help_text="click, play, progress, complete.")
    position = serializers.IntegerField(min_value=1, required=False, help_text="click, play.")
    started_at = serializers.DateTimeField(required=False, help_text="play, progress, complete: when playback "
                                           "began (the viewing); the same rules as occurred_at.")  # fmt: skip
    watch_percentage = serializers.FloatField(min_value=0, max_value=1, required=False,
                                              help_text="progress (required), complete (default 1).")  # fmt: skip


class EventBatchSerializer(serializers.Serializer):
    events = EventSerializer(many=True, max_length=MAX_EVENTS, allow_empty=False,
                             help_text=f"At most {MAX_ROWS:,} rows in all: an impression's items count one each, "
                             "any other event one.")  # fmt: skip


class EventErrorSerializer(serializers.Serializer):
    index = serializers.IntegerField(help_text="The event's place in the request, from 0.")
    event_id = serializers.CharField(allow_null=True)
    errors = serializers.DictField(help_text="Messages per field; `items` maps an item's index to its own.")


class EventBatchResultSerializer(serializers.Serializer):
    accepted = serializers.IntegerField(help_text="Rows stored now (an impression stores one per item).")
    duplicates = serializers.IntegerField(help_text="Rows already stored by an earlier (retried) batch.")
    rejected = serializers.IntegerField(help_text="Events refused; `errors` says why.")
    errors = EventErrorSerializer(many=True)
