"""Bulk-load plumbing: the prefetching iterator and binary COPY's value encoding."""

from __future__ import annotations

import datetime as dt
import threading
from contextlib import closing

import numpy as np
import pytest

from config.bulk import copy_arrays, prefetched
from tests.factories.catalog import TitleFactory
from users.models import DeviceType, ViewingEvent


def test_prefetched_keeps_order_and_surfaces_errors():
    assert list(prefetched(iter(range(50)))) == list(range(50))

    def failing():
        yield 1
        raise RuntimeError("producer broke")

    with pytest.raises(RuntimeError, match="producer broke"):
        list(prefetched(failing()))


def test_closing_a_prefetcher_stops_its_thread():
    with closing(prefetched(iter(range(1000)))) as items:
        assert next(items) == 0
    assert not any(thread.name == "prefetch" and thread.is_alive() for thread in threading.enumerate())


def test_copied_values_read_back_exactly(db, profile):
    title = TitleFactory()
    started = np.array(["2024-02-29T23:59:58.123456", "1999-12-31T00:00:00"], dtype="datetime64[us]")
    written = copy_arrays(
        "users_viewingevent",
        {
            "profile_id": ("int8", np.array([profile.id, profile.id])),
            "title_id": ("int8", np.array([title.id, title.id])),
            "started_at": ("timestamptz", started),
            "last_watched_at": ("timestamptz", started + np.timedelta64(90, "s")),
            "watch_seconds": ("int4", np.array([90, 90], dtype=np.int32)),
            "watch_percentage": ("float8", np.array([0.25, 1.0])),
            "device_type": ("int2", np.array([DeviceType.MOBILE, DeviceType.TV], dtype=np.int16)),
            "completed": ("bool", np.array([False, True])),
        },
    )

    assert written == 2
    first, second = ViewingEvent.objects.order_by("-started_at")
    assert first.started_at == dt.datetime(2024, 2, 29, 23, 59, 58, 123456, tzinfo=dt.UTC)
    assert second.started_at == dt.datetime(1999, 12, 31, tzinfo=dt.UTC)
    assert (first.watch_percentage, first.device_type, first.completed) == (0.25, DeviceType.MOBILE, False)
    assert (second.watch_percentage, second.completed) == (1.0, True)
