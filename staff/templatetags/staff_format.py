"""Template filters for numbers people read: {{ run.duration_seconds|duration }}, {{ rows|thousands }}, {{ share|percent }}."""

from __future__ import annotations

from django import template

from staff import formatting

register = template.Library()
register.filter("duration", formatting.duration)
register.filter("thousands", formatting.thousands)
register.filter("percent", formatting.percent)
register.filter("moment", formatting.moment)
