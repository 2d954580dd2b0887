"""Request parameters and response shapes of /api/recs (validation: 400 with a message per field)."""
from __future__ import annotations

import re
from collections.abc import Mapping

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from catalog.models import SubscriptionTier
from recommendations.engine import MAX_N
from users.models import DeviceType

DEVICE_NAMES = {label.lower().split()[0]: value for value, label in DeviceType.choices}  # tv, mobile, tablet, web, game
DEVICE_API_NAMES = {value: name for name, value in {**DEVICE_NAMES, "console": DeviceType.CONSOLE}.items()}  # 5: console


@extend_schema_field({"type": "string", "enum": ["tv", "mobile", "tablet", "web", "console"]})
class DeviceField(serializers.Field):
    """A device as its name (tv, mobile, tablet, web, console) or its number."""

    default_error_messages = {"invalid": "Unknown device {value!r}: use one of {choices}."}
    names = {**DEVICE_NAMES, "console": DeviceType.CONSOLE}

    def __init__(self, *args, numbers: bool = False, **kwargs) -> None:
        self.numbers = numbers  # events also take the device's number (their schema says so)
        super().__init__(*args, **kwargs)

    def to_internal_value(self, data):  # noqa: ANN001, ANN201
        if isinstance(data, str) and data in self.names:
            return self.names[data]
        if self.numbers and type(data) is int and data in DeviceType.values:
            return data
        self.fail("invalid", value=data, choices=", ".join(sorted(self.names)))

    def to_representation(self, value):  # noqa: ANN001, ANN201
        return DeviceType(value).label


@extend_schema_field({"oneOf": [{"type": "string", "enum": ["tv", "mobile", "tablet", "web", "console"]},
                                  {"type": "integer", "enum": sorted(DeviceType.values)}]})  # fmt: skip
class DeviceOrNumberField(DeviceField):
    """A device as its name or its number (events)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, numbers=True, **kwargs)


# JSON types the batch body must use, as the schema says (DRF would also take "5" for 5 and 0 for false).
_JSON_TYPES = {"profile_id": int, "user_id": int, "time_of_day": int, "n": int, "subscription_tier": int,
               "country": str, "device_type": str, "rows": bool}  # fmt: skip
_QUERY_INTEGER = re.compile(r"0|[1-9][0-9]{0,18}")  # fullmatch: as JSON writes one, no sign, no leading zeros
_QUERY_BOOLEAN = {"true": True, "false": False}


class RecsQuerySerializer(serializers.Serializer):
    """One request's parameters: from the query string (context `query=True`: strings, integers as plain digits,
    booleans as true/false) or from a batch body (JSON values of exactly the documented types)."""

    profile_id = serializers.IntegerField(min_value=1, max_value=2**63 - 1)
    user_id = serializers.IntegerField(min_value=1, max_value=2**63 - 1, required=False,
                                       help_text="The account; when given it must own the profile.")  # fmt: skip
    country = serializers.RegexField(r"^[A-Za-z]{2}$", required=False, trim_whitespace=False,
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
        if not re.fullmatch(r"[A-Za-z]{2}", value):  # the pattern's `$` also takes a trailing newline
            raise serializers.ValidationError("Expected two letters (ISO 3166-1 alpha-2).")
        return value.upper()

    def to_internal_value(self, data):  # noqa: ANN001, ANN201
        if not isinstance(data, Mapping):
            return super().to_internal_value(data)
        errors = _query_type_errors(data, set(self.fields)) if self.context.get("query") else _json_type_errors(data)
        if errors:
            raise serializers.ValidationError(errors)
        if self.context.get("query") and "rows" in data:
            data = {**{k: data.get(k) for k in data}, "rows": _QUERY_BOOLEAN[str(data.get("rows"))]}
        return super().to_internal_value(data)


def _json_type_errors(data: Mapping) -> dict[str, list[str]]:
    errors = {}
    for name, kind in _JSON_TYPES.items():
        value = data.get(name)
        if value is not None and (type(value) is not kind):  # bool is an int subclass: compare exactly
            errors[name] = [f"Expected a JSON {'boolean' if kind is bool else 'integer' if kind is int else 'string'}."]
    return errors


def _query_type_errors(data: Mapping, known: set[str]) -> dict[str, list[str]]:
    errors = {name: ["Unknown parameter."] for name in data if name not in known}
    if hasattr(data, "getlist"):
        errors.update({name: ["Give this parameter once."] for name in known if len(data.getlist(name)) > 1})
    for name, kind in _JSON_TYPES.items():
        value = data.get(name)
        if value is None:
            continue
        if value == "":  # DRF would read an empty optional parameter as absent
            errors[name] = ["Give a value or leave the parameter out."]
        elif kind is int and not _QUERY_INTEGER.fullmatch(str(value)):
            errors[name] = ["Expected a whole number written in digits."]
        elif kind is bool and str(value) not in _QUERY_BOOLEAN:
            errors[name] = ["Expected true or false."]
    return errors


class BatchSerializer(serializers.Serializer):
    requests = serializers.ListField(child=RecsQuerySerializer(), min_length=1, max_length=100)


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
