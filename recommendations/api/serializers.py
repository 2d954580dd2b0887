"""Request parameters and response shapes of /api/recs (validation: 400 with a message per field)."""
from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from catalog.models import SubscriptionTier
from recommendations.engine import MAX_N
from users.models import DeviceType

DEVICE_NAMES = {label.lower().split()[0]: value for value, label in DeviceType.choices}  # tv, mobile, tablet, web, game


@extend_schema_field({"type": "string", "enum": ["tv", "mobile", "tablet", "web", "console"]})
class DeviceField(serializers.Field):
    """A device as its name (tv, mobile, tablet, web, console) or its number."""

    default_error_messages = {"invalid": "Unknown device {value!r}: use one of {choices}."}
    names = {**DEVICE_NAMES, "console": DeviceType.CONSOLE}

    def to_internal_value(self, data):  # noqa: ANN001, ANN201
        value = str(data).strip().lower()
        if value in self.names:
            return self.names[value]
        if value.isascii() and value.isdigit() and int(value) in DeviceType.values:
            return int(value)
        self.fail("invalid", value=data, choices=", ".join(sorted(self.names)))

    def to_representation(self, value):  # noqa: ANN001, ANN201
        return DeviceType(value).label


class RecsQuerySerializer(serializers.Serializer):
    profile_id = serializers.IntegerField(min_value=1, max_value=2**63 - 1)
    user_id = serializers.IntegerField(min_value=1, max_value=2**63 - 1, required=False,
                                       help_text="The account; when given it must own the profile.")  # fmt: skip
    country = serializers.RegexField(r"^[A-Za-z]{2}$", required=False,
                                     help_text="Where the viewer is (ISO 3166-1 alpha-2); default: the account's.")  # fmt: skip
    device_type = DeviceField(required=False, help_text="tv, mobile, tablet, web or console; default tv.")
    time_of_day = serializers.IntegerField(min_value=0, max_value=23, required=False,
                                           help_text="The viewer's local hour.")  # fmt: skip
    subscription_tier = serializers.ChoiceField(
        choices=SubscriptionTier.values, required=False,
        help_text="Ignored for entitlements (the account's tier always applies); accepted for the design's context.",
    )  # fmt: skip
    n = serializers.IntegerField(min_value=1, max_value=MAX_N, default=20)
    rows = serializers.BooleanField(default=True, help_text="Also build the homepage rows.")

    def validate_country(self, value: str) -> str:
        return value.upper()


class BatchSerializer(serializers.Serializer):
    requests = RecsQuerySerializer(many=True, allow_empty=False, max_length=100)


class ItemSerializer(serializers.Serializer):
    rank = serializers.IntegerField()
    content_id = serializers.IntegerField()
    title = serializers.CharField()
    score = serializers.FloatField()
    reason = serializers.CharField()
    sources = serializers.ListField(child=serializers.CharField())
    policy = serializers.CharField(help_text="What placed the item: ranker, popularity or bandit.")
    propensity = serializers.FloatField(help_text="Probability the item was shown here; log it with the impression.")


class RowSerializer(serializers.Serializer):
    key = serializers.CharField()
    title = serializers.CharField()
    items = ItemSerializer(many=True)


class RecsResponseSerializer(serializers.Serializer):
    request_id = serializers.CharField()
    profile_id = serializers.IntegerField()
    model_versions = serializers.DictField(child=serializers.CharField())
    rules_version = serializers.CharField()
    degraded = serializers.ListField(child=serializers.CharField())
    cached = serializers.BooleanField()
    experiment = serializers.CharField(help_text="The experiment the profile is in, empty when none.")
    arm = serializers.CharField()
    items = ItemSerializer(many=True)
    rows = RowSerializer(many=True)


class BatchResultSerializer(serializers.Serializer):
    """One answer of a batch: a RecsResponse, or an error `{code, message, details}` (details.status: 404)."""

    request_id = serializers.CharField(required=False)
    profile_id = serializers.IntegerField(required=False)
    items = ItemSerializer(many=True, required=False)
    rows = RowSerializer(many=True, required=False)
    code = serializers.CharField(required=False)
    message = serializers.CharField(required=False)
    details = serializers.DictField(required=False)


class BatchResponseSerializer(serializers.Serializer):
    results = BatchResultSerializer(many=True, help_text="One per request, in order.")
