"""Numbers as people read them on the staff and admin pages: durations, thousands separators, percentages."""

from __future__ import annotations

import datetime as dt
import math

from django.utils.formats import date_format
from django.utils.timezone import localtime

DASH = "—"


def _missing(value: object) -> bool:
    return value is None or isinstance(value, bool) or (isinstance(value, float) and math.isnan(value))


def duration(seconds: float | None) -> str:
    """0.43 → "0.4 s", 12.43 → "12.4 s", 125 → "2 min 5 s", 4_380 → "1 h 13 min", 700_000 → "8 days 2 h"."""
    if _missing(seconds):
        return DASH
    seconds = float(seconds)  # type: ignore[arg-type]
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {rest} s" if rest else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} days {hours} h" if hours else f"{days} days"


def thousands(value: float | None, digits: int = 0) -> str:
    """1234567 → "1,234,567"; with digits, 1234.5 → "1,234.50"."""
    if _missing(value):
        return DASH
    return f"{float(value):,.{digits}f}" if digits else f"{round(float(value)):,}"  # type: ignore[arg-type]


def percent(share: float | None, digits: int = 0) -> str:
    """0.5532 → "55 %" (a share of 1), with digits 1 → "55.3 %"."""
    if _missing(share):
        return DASH
    return f"{float(share) * 100:.{digits}f} %"  # type: ignore[arg-type]


def moment(value: dt.datetime | str | float | None) -> str:
    """A datetime, or its ISO text as the health report's JSON holds it, to the second: "2026-12-04 21:30:12"."""
    if not value:
        return DASH
    if isinstance(value, int | float):  # Unix seconds
        value = dt.datetime.fromtimestamp(value, dt.UTC)
    elif isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError:
            return value
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return date_format(localtime(value), "Y-m-d H:i:s")
