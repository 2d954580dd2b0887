"""The design's context vocabulary: devices, times of day and tiers by name or number, for UserContext and the API.

One table: `UserContext` (Python), `GET /api/recs`, `POST /api/recs/batch` and the events' `device_type` all parse
with these, and the OpenAPI schema lists exactly what they accept.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Any

from catalog.models import SubscriptionTier
from users.models import DeviceType

# A part of the day stands for its middle hour; the parts are the bandit's (ranking.ml.bandit.DAYPART_HOURS:
# night from 0, morning from 6, afternoon from 12, evening from 18).
DAYPART_HOURS = {"morning": 9, "afternoon": 15, "evening": 21, "night": 3}


@dataclass(frozen=True)
class Vocabulary:
    """The names and numbers one context field takes; `parse` turns either into the number."""

    field: str
    noun: str
    names: dict[str, int]
    numbers: tuple[int, ...]
    number_noun: str  # how a message calls the numbers: "a device number", "an hour"

    def parse(self, value: Any) -> int:
        """The number for a name or a number; ContextValueError (a ValueError) otherwise. Names are exact
        (lower case), numbers are ints (not bools, not digit strings: the API reads its digits itself)."""
        if isinstance(value, str):
            if value in self.names:
                return int(self.names[value])
        elif isinstance(value, numbers.Integral) and not isinstance(value, bool) and int(value) in self.numbers:
            return int(value)
        raise ContextValueError(self, value)

    @property
    def valid_values(self) -> list[str | int]:
        return [*self.names, *self.numbers]

    @property
    def query_values(self) -> list[str]:
        """What a query string may carry: the names and the numbers in digits."""
        return [*self.names, *(str(number) for number in self.numbers)]

    def describe(self) -> str:
        low, high = min(self.numbers), max(self.numbers)
        return f"{', '.join(self.names)} or {self.number_noun} {low}-{high}"


class ContextValueError(ValueError):
    """A context value outside its vocabulary; the message lists the valid ones."""

    def __init__(self, vocabulary: Vocabulary, value: Any) -> None:
        self.field = vocabulary.field
        self.valid_values = vocabulary.valid_values
        shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:40] + "…"
        super().__init__(f"Unknown {vocabulary.noun} {shown}: use {vocabulary.describe()}.")


DEVICE = Vocabulary(
    field="device_type",
    noun="device",
    names={
        "tv": DeviceType.TV,
        "smart_tv": DeviceType.TV,
        "mobile": DeviceType.MOBILE,
        "tablet": DeviceType.TABLET,
        "web": DeviceType.WEB,
        "console": DeviceType.CONSOLE,
    },
    numbers=tuple(DeviceType.values),
    number_noun="a device number",
)
TIME_OF_DAY = Vocabulary(
    field="time_of_day", noun="time of day", names=DAYPART_HOURS, numbers=tuple(range(24)), number_noun="an hour"
)
SUBSCRIPTION_TIER = Vocabulary(
    field="subscription_tier",
    noun="subscription tier",
    names={label.lower(): value for value, label in SubscriptionTier.choices},  # basic, standard, premium
    numbers=tuple(SubscriptionTier.values),
    number_noun="a tier number",
)
DEVICE_API_NAMES = {
    DeviceType.TV: "tv",
    DeviceType.MOBILE: "mobile",
    DeviceType.TABLET: "tablet",
    DeviceType.WEB: "web",
    DeviceType.CONSOLE: "console",
}  # a device number's name in requests
