"""Validating a POST /api/events body event by event, into EventRows and DRF-shaped errors per event.

Plain Python rather than nested DRF serializers: on a bench batch (200 events, 40 of them impressions of
20 items) the equivalent serializers in events/api/serializers.py took ~55 ms and this ~10 ms, while the
whole request costs the Django worker ~22 ms of CPU. Those serializers document the shapes for the schema.

Everything PostgreSQL would refuse is refused here, per event, so one bad event never fails its batch: moments
are normalised to UTC (an offset PostgreSQL cannot read, beyond ±15:59:59 or with a fraction of a second,
is a field error), text holds no NUL or lone surrogate, numbers fit their columns. A body is refused whole
(`ParsedBatch.error`) only when it is not a list of events or would cost too much: more than MAX_EVENTS events
or MAX_ROWS rows.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any

from rest_framework.exceptions import ValidationError

from config.errors import ApplicationError, InvalidInput, PayloadTooLarge
from events.models import VIEWING_TYPES, Event, EventType
from events.services import EventError, EventRow, IncomingEvent
from recommendations.api.serializers import DeviceOrNumberField

MAX_EVENTS = 1000
MAX_ITEMS = 200
# Rows a request (an impression's items one each, any other event one). Worker + PostgreSQL backend CPU of one
# POST through the test client (2 shared cores): 2,000 rows as 10 impressions of 200 items 61 + 60 ms, as
# 1,000 events 103 + 80 ms; 5,000 rows 213-255 ms; 74,400 rows took 3.35 s of worker time (issue #14).
MAX_ROWS = 2000
MAX_FUTURE = dt.timedelta(minutes=5)  # client clocks drift; further ahead is a bug, not drift
MAX_EVENT_ID_LENGTH = 64  # the API's documented limit (Event.client_event_id holds 80)
MAX_POSITION = 32767  # PositiveSmallIntegerField
MAX_ID = 2**63 - 1
EARLIEST = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)  # before the service: a broken clock
MAX_OFFSET = dt.timedelta(hours=15, minutes=59, seconds=59)  # PostgreSQL's; real zones lie within -12:00..+14:00
# Python 3.11 reads "+00:00:00.5" as +00:00, dropping the fraction, so the text is checked too.
_FRACTIONAL_OFFSET = re.compile(r"[+-]\d\d:?\d\d:?\d\d[.,]\d+\Z")

_LENGTHS = {
    name: Event._meta.get_field(name).max_length for name in ("request_id", "row_key", "experiment", "arm", "policy")
}
_device_field = DeviceOrNumberField()
# Plain strings: comparing with enum members goes through a descriptor, per event.
_TYPES = EventType.values
_IMPRESSION, _PROGRESS, _COMPLETE = EventType.IMPRESSION.value, EventType.PROGRESS.value, EventType.COMPLETE.value
_VIEWING = frozenset(t.value for t in VIEWING_TYPES)
_TOO_EARLY = f"Before {EARLIEST.year}: not an event of this service."
_TOO_LATE = "More than 5 minutes in the future."


class _Missing:
    pass


MISSING = _Missing()


@dataclass
class ParsedBatch:
    events: list[IncomingEvent] = field(default_factory=list)
    errors: list[EventError] = field(default_factory=list)
    # The body is refused whole and nothing in it was read: InvalidInput "invalid_batch" (not a batch) or
    # PayloadTooLarge "too_many_rows" (over MAX_ROWS); raise it.
    error: ApplicationError | None = None
    rows_sent: int = 0  # what the cap counts: every impression item and every other event, valid or not

    @property
    def row_count(self) -> int:
        """Rows the valid events would store (before duplicates and unknown references are told apart)."""
        return sum(len(event.rows) for event in self.events)

    @property
    def envelope_errors(self) -> dict:
        """The refused body's details, or {} (what the view read before `error` carried the whole error)."""
        return self.error.details if self.error else {}


def batch_parse(data: Any, *, now: dt.datetime) -> ParsedBatch:
    """Split `{"events": [...]}` into valid events and per-event errors (indexes as sent)."""
    batch = ParsedBatch()
    raw_events = data.get("events", MISSING) if isinstance(data, dict) else MISSING
    if not isinstance(raw_events, list):
        batch.error = _invalid_batch('Send a JSON object with a list of events: {"events": [...]}.')
        return batch
    if not 1 <= len(raw_events) <= MAX_EVENTS:
        batch.error = _invalid_batch(f"Send 1 to {MAX_EVENTS} events; got {len(raw_events)}.")
        return batch
    batch.rows_sent = batch_rows_sent(data)
    if batch.rows_sent > MAX_ROWS:
        batch.error = PayloadTooLarge(
            f"Send at most {MAX_ROWS:,} rows a request (an impression's items count one each, any other event "
            f"one); got {batch.rows_sent:,}: split the batch.",
            code="too_many_rows",
            details={"rows": batch.rows_sent, "max_rows": MAX_ROWS},
        )
        return batch
    for index, raw in enumerate(raw_events):
        parsed = _EventReader(raw, latest=now + MAX_FUTURE).read(index)
        (batch.events if isinstance(parsed, IncomingEvent) else batch.errors).append(parsed)
    return batch


def batch_rows_sent(data: Any) -> int:
    """Rows a body asks to store as MAX_ROWS counts them, valid or not (0 for what is not a batch); cheap enough
    for a rate limit that charges by cost before the body is parsed."""
    raw_events = data.get("events") if isinstance(data, dict) else None
    return sum(_rows_sent(raw) for raw in raw_events) if isinstance(raw_events, list) else 0


def _invalid_batch(message: str) -> InvalidInput:
    return InvalidInput("The body is not a batch of events.", code="invalid_batch", details={"events": [message]})


def _rows_sent(raw: Any) -> int:
    items = raw.get("items") if isinstance(raw, dict) and raw.get("type") == _IMPRESSION else None
    return len(items) if isinstance(items, list) and items else 1


class _EventReader:
    """Reads one event's fields, collecting every problem as `{field: [message, ...]}`."""

    def __init__(self, raw: Any, *, latest: dt.datetime) -> None:
        self.raw = raw if isinstance(raw, dict) else {}
        self.latest = latest
        self.errors: dict[str, Any] = {} if isinstance(raw, dict) else {"non_field_errors": ["Expected an object."]}
        # Fields whose error is about the content, which the schema cannot say (unknown ids are found later, a
        # time too far ahead, an offset PostgreSQL cannot read, a repeated position, a NUL): that event is
        # refused and the others are stored. Any other error means the event does not match the schema.
        self.content_errors: set[str] = set()

    def content_error(self, name: str, message: str) -> None:
        self.errors[name] = [message]
        self.content_errors.add(name)

    @property
    def malformed(self) -> bool:
        return any(name not in self.content_errors for name in self.errors)

    def read(self, index: int) -> IncomingEvent | EventError:
        event_id = self.text("event_id", max_length=MAX_EVENT_ID_LENGTH, required=True)
        event_type = self.choice("type", _TYPES)
        user_id = self.integer("user_id")
        common = {
            "type": event_type,
            "profile_id": self.integer("profile_id", required=True),
            "occurred_at": self.moment("occurred_at", required=True),
            "device_type": self.device("device_type"),
            "request_id": self.text("request_id", max_length=_LENGTHS["request_id"]),
            "experiment": self.text("experiment", max_length=_LENGTHS["experiment"]),
            "arm": self.text("arm", max_length=_LENGTHS["arm"]),
        }
        rows: list[EventRow] = []
        if event_type == _IMPRESSION:
            rows = self.impression_rows(event_id, common)
        elif event_type:
            rows = self.single_rows(event_id, common)
        if self.errors:
            return EventError(index, event_id or _raw_event_id(self.raw), self.errors, malformed=self.malformed)
        return IncomingEvent(index, event_id, tuple(rows), user_id=user_id)

    def impression_rows(self, event_id: str, common: dict) -> list[EventRow]:
        items = self.raw.get("items", MISSING)
        if not isinstance(items, list) or not 1 <= len(items) <= MAX_ITEMS:
            self.errors["items"] = [f"Send a list of 1 to {MAX_ITEMS} items {{content_id, position, ...}}."]
            return []
        default_row = self.text("row", max_length=_LENGTHS["row_key"])
        rows, item_errors, seen_positions, item_readers = [], {}, set(), []
        for i, raw_item in enumerate(items):
            item = _EventReader(raw_item, latest=self.latest)
            item_readers.append(item)
            content_id = item.integer("content_id", required=True)
            position = item.integer("position", required=True, minimum=1, maximum=MAX_POSITION)
            if position is not None and position in seen_positions:
                item.content_error("position", f"Position {position} appears twice in this impression.")
            seen_positions.add(position)
            row_key = item.text("row", max_length=_LENGTHS["row_key"]) or default_row
            propensity = item.number("propensity", low=0.0, high=1.0)
            if propensity == 0.0:
                item.content_error("propensity", "A title shown with probability 0 was not shown: send (0, 1].")
            policy = item.text("policy", max_length=_LENGTHS["policy"])
            if item.errors:
                item_errors[str(i)] = item.errors
            else:
                rows.append(
                    EventRow(
                        client_event_id=event_id,
                        title_id=content_id,
                        position=position,
                        row_key=row_key,
                        propensity=propensity,
                        policy=policy,
                        **common,
                    )
                )
        if item_errors:
            self.errors["items"] = item_errors
            if not any(item.malformed for item in item_readers):
                self.content_errors.add("items")
        return rows

    def single_rows(self, event_id: str, common: dict) -> list[EventRow]:
        event_type = common["type"]
        content_id = self.integer("content_id", required=True)
        position = self.integer("position", minimum=1, maximum=MAX_POSITION)
        row_key = self.text("row", max_length=_LENGTHS["row_key"])
        watch_percentage, started_at = None, None
        if event_type in _VIEWING:
            started_at = self.moment("started_at", required=True)
        if event_type == _PROGRESS:
            watch_percentage = self.number("watch_percentage", low=0.0, high=1.0, required=True)
        elif event_type == _COMPLETE:
            watch_percentage = self.number("watch_percentage", low=0.0, high=1.0, default=1.0)
        return [
            EventRow(
                client_event_id=event_id,
                title_id=content_id,
                position=position,
                row_key=row_key,
                watch_percentage=watch_percentage,
                started_at=started_at,
                **common,
            )
        ]

    # --- fields ---------------------------------------------------------------------------------------
    def _value(self, name: str, required: bool) -> Any:
        value = self.raw.get(name, MISSING)
        if value is MISSING and required:
            self.errors[name] = ["This field is required."]
        elif value is None:
            self.errors[name] = ["This field may not be null."]
            return MISSING
        return value

    def text(self, name: str, *, max_length: int, required: bool = False) -> str:
        value = self._value(name, required)
        if value is MISSING:
            return ""
        if not isinstance(value, str):  # the schema says string: 5 is not "5"
            self.errors[name] = ["Not a valid string."]
            return ""
        if required and not value:
            self.errors[name] = ["This field may not be blank."]
        elif len(value) > max_length:
            self.errors[name] = [f"Ensure this field has no more than {max_length} characters."]
        elif "\x00" in value or not _encodable(value):  # PostgreSQL text holds neither, nor does a UTF-8 reply
            self.content_error(name, "Null and lone surrogate characters are not allowed.")
        return "" if name in self.errors else value

    def integer(self, name: str, *, required: bool = False, minimum: int = 1, maximum: int = MAX_ID) -> int | None:
        value = self._value(name, required)
        if value is MISSING:
            return None
        if isinstance(value, bool) or not isinstance(value, int):  # the schema says integer: "5" is not 5
            self.errors[name] = ["A valid integer is required."]
            return None
        if not minimum <= value <= maximum:
            self.errors[name] = [f"Ensure this value is between {minimum} and {maximum}."]
            return None
        return value

    def number(
        self,
        name: str,
        *,
        low: float,
        high: float,
        low_open: bool = False,
        required: bool = False,
        default: float | None = None,
    ) -> float | None:
        value = self._value(name, required)
        if value is MISSING:
            return default
        if isinstance(value, bool) or not isinstance(value, int | float) or value != value:  # NaN
            self.errors[name] = ["A valid number is required."]
            return None
        if value < low or value > high or (low_open and value == low):
            self.errors[name] = [f"Ensure this value is in {'(' if low_open else '['}{low:g}, {high:g}]."]
            return None
        return float(value)

    def choice(self, name: str, choices: list[str]) -> str:
        value = self._value(name, True)
        if value is MISSING:
            return ""
        if value not in choices:
            self.errors[name] = [f"{value!r} is not one of {', '.join(choices)}."]
            return ""
        return value

    def moment(self, name: str, *, required: bool = False) -> dt.datetime | None:
        value = self._value(name, required)
        if value is MISSING:
            return None
        try:
            if not isinstance(value, str) or not _DATE_TIME.match(value):
                raise ValueError(value)
            moment = dt.datetime.fromisoformat(value)
        except (TypeError, ValueError):
            self.errors[name] = ["Use an ISO 8601 date and time, e.g. 2026-11-26T08:15:00Z."]
            return None
        offset = moment.utcoffset()
        if offset is not None and not _postgres_reads_offset(offset, value):
            self.content_error(name, "Use a UTC offset within ±15:59:59 in whole seconds, e.g. +05:30 or Z.")
            return None
        try:
            # No zone: UTC, like DRF with USE_TZ and TIME_ZONE = UTC.
            moment = moment.replace(tzinfo=dt.UTC) if offset is None else moment.astimezone(dt.UTC)
        except OverflowError:  # year 1 or 9999 pushed off the calendar by its offset
            self.content_error(name, _TOO_EARLY if moment.year < EARLIEST.year else _TOO_LATE)
            return None
        if moment < EARLIEST:
            self.content_error(name, _TOO_EARLY)
            return None
        if moment > self.latest:
            self.content_error(name, _TOO_LATE)
            return None
        return moment

    def device(self, name: str) -> int | None:
        value = self._value(name, True)
        if value is MISSING:
            return None
        try:
            return _device_field.to_internal_value(value)
        except ValidationError as error:
            self.errors[name] = [str(message) for message in error.detail]
            return None


# A date and a time of day (what the schema's date-time is), with an optional offset of any precision: the offset's
# range is checked next, as content.
_DATE_TIME = re.compile(
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?"
    r"([Zz]|[+-][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?)?$"
)


def _postgres_reads_offset(offset: dt.timedelta, text: str) -> bool:
    return abs(offset) <= MAX_OFFSET and not offset.microseconds and not _FRACTIONAL_OFFSET.search(text)


def _encodable(value: str) -> bool:
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return True


def _raw_event_id(raw: Any) -> str | None:
    value = raw.get("event_id") if isinstance(raw, dict) else None
    if isinstance(value, bool) or not isinstance(value, str | int) or not _encodable(str(value)):
        return None
    return str(value)[:MAX_EVENT_ID_LENGTH]
