"""Request parameters and response shapes of /api/recs (validation: 400 with a message per field)."""

from __future__ import annotations

import re
from collections.abc import Mapping

from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from rest_framework import serializers

from recommendations.serving.engine import MAX_N
from recommendations.vocabulary import (  # noqa: F401 (DEVICE_API_NAMES: the ab_test command's import)
    DEVICE,
    DEVICE_API_NAMES,
    SUBSCRIPTION_TIER,
    TIME_OF_DAY,
    ContextValueError,
    Vocabulary,
)


class ContextField(serializers.Field):
    """A context value by its name or its number (recommendations.vocabulary, as UserContext takes it).

    In a query string a number is written in digits (schema: one string enum of names and numbers); in a JSON
    body a name is a string and a number an integer (schema: oneOf). A 400 lists the valid values."""

    default_error_messages = {"invalid": "{message}"}

    def __init__(self, vocabulary: Vocabulary, *, query: bool = False, **kwargs) -> None:
        self.vocabulary, self.query = vocabulary, query
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if self.query and isinstance(data, str) and _QUERY_INTEGER.fullmatch(data):
            data = int(data)
        try:
            return self.vocabulary.parse(data)
        except ContextValueError as error:
            self.fail("invalid", message=str(error))

    def to_representation(self, value):
        return value

    def openapi_schema(self) -> dict:
        vocabulary = self.vocabulary
        if self.query:
            return {"type": "string", "enum": vocabulary.query_values}
        low, high = min(vocabulary.numbers), max(vocabulary.numbers)
        assert vocabulary.numbers == tuple(range(low, high + 1)), "numbers are written as a range"
        return {
            "oneOf": [
                {"type": "string", "enum": list(vocabulary.names)},
                {"type": "integer", "minimum": low, "maximum": high},
            ]
        }


class ContextFieldSchema(OpenApiSerializerFieldExtension):
    target_class = ContextField
    match_subclasses = True

    def map_serializer_field(self, auto_schema, direction):
        return self.target.openapi_schema()


class DeviceOrNumberField(ContextField):
    """A device as its name or its number, in a JSON body (events)."""

    def __init__(self, **kwargs) -> None:
        super().__init__(DEVICE, **kwargs)


# JSON types the batch body must use, as the schema says (DRF would also take "5" for 5 and 0 for false); the
# context fields check their own (a name or a number).
_JSON_TYPES = {"profile_id": int, "user_id": int, "n": int, "country": str, "rows": bool}
_QUERY_INTEGER = re.compile(r"0|[1-9][0-9]{0,18}")  # fullmatch: as JSON writes one, no sign, no leading zeros
_QUERY_BOOLEAN = {"true": True, "false": False}


class _RecsParametersSerializer(serializers.Serializer):
    """One request's parameters: from the query string (RecsQuerySerializer: strings, integers as plain digits,
    booleans as true/false) or from a batch body (RecsRequestSerializer: JSON values of the documented types)."""

    query = False

    profile_id = serializers.IntegerField(min_value=1, max_value=2**63 - 1)
    user_id = serializers.IntegerField(
        min_value=1, max_value=2**63 - 1, required=False, help_text="The account; when given it must own the profile."
    )
    country = serializers.RegexField(
        r"^[A-Za-z]{2}$",
        required=False,
        trim_whitespace=False,
        help_text="Where the viewer is (ISO 3166-1 alpha-2); default: the account's.",
    )
    n = serializers.IntegerField(min_value=1, max_value=MAX_N, default=20)
    rows = serializers.BooleanField(default=True, help_text="Also build the homepage rows.")

    def validate_country(self, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z]{2}", value):  # the pattern's `$` also takes a trailing newline
            raise serializers.ValidationError("Expected two letters (ISO 3166-1 alpha-2).")
        return value.upper()

    def to_internal_value(self, data):
        if not isinstance(data, Mapping):
            return super().to_internal_value(data)
        errors = _query_type_errors(data, set(self.fields)) if self.query else _json_type_errors(data)
        if errors:
            raise serializers.ValidationError(errors)
        if self.query and "rows" in data:
            data = {**{k: data.get(k) for k in data}, "rows": _QUERY_BOOLEAN[str(data.get("rows"))]}
        return super().to_internal_value(data)


_CONTEXT_HELP = {
    DEVICE.field: f"{DEVICE.describe()}; default tv.",
    TIME_OF_DAY.field: f"The viewer's local time: {TIME_OF_DAY.describe()} (a part of the day stands for its middle "
    "hour); default: the server's UTC hour.",
    SUBSCRIPTION_TIER.field: f"{SUBSCRIPTION_TIER.describe()}. Accepted, never trusted: the account's tier always "
    "decides the entitlements.",
}


def _context_field(vocabulary: Vocabulary, *, query: bool) -> ContextField:
    return ContextField(vocabulary, query=query, required=False, help_text=_CONTEXT_HELP[vocabulary.field])


class RecsQuerySerializer(_RecsParametersSerializer):
    query = True
    device_type = _context_field(DEVICE, query=True)
    time_of_day = _context_field(TIME_OF_DAY, query=True)
    subscription_tier = _context_field(SUBSCRIPTION_TIER, query=True)


class RecsRequestSerializer(_RecsParametersSerializer):
    device_type = _context_field(DEVICE, query=False)
    time_of_day = _context_field(TIME_OF_DAY, query=False)
    subscription_tier = _context_field(SUBSCRIPTION_TIER, query=False)


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
    for name in known:
        value = data.get(name)
        if value is None:
            continue
        kind = _JSON_TYPES.get(name)
        if value == "":  # DRF would read an empty optional parameter as absent
            errors[name] = ["Give a value or leave the parameter out."]
        elif kind is int and not _QUERY_INTEGER.fullmatch(str(value)):
            errors[name] = ["Expected a whole number written in digits."]
        elif kind is bool and str(value) not in _QUERY_BOOLEAN:
            errors[name] = ["Expected true or false."]
    return errors


class BatchSerializer(serializers.Serializer):
    requests = serializers.ListField(child=RecsRequestSerializer(), min_length=1, max_length=100)


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
