"""Builders of API events for the tests."""

from __future__ import annotations

import datetime as dt
import itertools
import json
from typing import Any

from rest_framework.test import APIClient

_ids = itertools.count(1)


def moment(minutes_ago: float = 10) -> str:
    return (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=minutes_ago)).isoformat()


def event(type_: str, profile_id: int, **fields: Any) -> dict:
    """One API event with a fresh event_id, occurring 10 minutes ago on a TV."""
    return {
        "event_id": f"e-{next(_ids)}",
        "type": type_,
        "profile_id": profile_id,
        "occurred_at": moment(),
        "device_type": "tv",
        **fields,
    }


def impression(profile_id: int, title_ids: list[int], **fields: Any) -> dict:
    items = [
        {"content_id": t, "position": p, "propensity": 0.5, "policy": "ranker"} for p, t in enumerate(title_ids, 1)
    ]
    return event("impression", profile_id, items=items, row="top-picks", request_id="r" * 32, **fields)


def post(api: APIClient, events: list):
    # json.dumps escapes to ASCII, so bodies may carry what a UTF-8 encoder refuses (lone surrogates).
    return api.generic("POST", "/api/events", json.dumps({"events": events}), content_type="application/json")
