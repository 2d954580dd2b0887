"""Daily title rollups give the whole-history GROUP BY's content aggregates, day after day and after late data."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from django.db import connection

from features import rollups, selectors
from features.ml.compute import CONTENT_AGGREGATES
from tests.factories.catalog import TitleFactory
from tests.factories.users import ProfileFactory
from users.models import ViewingEvent

pytestmark = pytest.mark.skipif(connection.vendor != "postgresql", reason="the rollups are PostgreSQL's")
BASE = dt.datetime(2026, 3, 10, 7, 18, 21, tzinfo=dt.UTC)


def viewing(profile, title, started_at: dt.datetime, percentage: float) -> ViewingEvent:
    return ViewingEvent(
        profile=profile,
        title=title,
        started_at=started_at,
        last_watched_at=started_at,
        watch_seconds=int(percentage * 3600),
        watch_percentage=percentage,
        device_type=1,
        completed=percentage >= 0.9,
    )


@pytest.fixture
def history(db):
    rng = np.random.default_rng(3)
    titles, profiles = TitleFactory.create_batch(6), ProfileFactory.create_batch(30)
    rows = []
    for _ in range(900):  # 40 days before BASE to 6 after, some on the windows' edges' days
        started = BASE + dt.timedelta(seconds=int(rng.integers(-40 * 86400, 6 * 86400)))
        rows.append(
            viewing(
                profiles[rng.integers(30)],
                titles[min(rng.geometric(0.35) - 1, 5)],
                started,
                float(rng.uniform(0.05, 1.0)),
            )
        )
    ViewingEvent.objects.bulk_create(rows, ignore_conflicts=True)
    return titles, profiles


def assert_same(as_of: dt.datetime) -> None:
    expected = selectors.content_aggregates(as_of=as_of).sort_values("title_id").reset_index(drop=True)
    got = rollups.content_aggregates_rolled(as_of=as_of).sort_values("title_id").reset_index(drop=True)
    assert list(got["title_id"]) == list(expected["title_id"])
    for name in CONTENT_AGGREGATES:
        np.testing.assert_allclose(
            got[name].to_numpy(float), expected[name].to_numpy(float), rtol=1e-9, atol=1e-12, err_msg=name
        )


def test_the_rollups_match_the_whole_history_day_after_day(history):
    first = rollups.title_rollups_advance(as_of=BASE)
    assert first.rebuilt and first.through_day == BASE.date()
    for hours in (0, 5, 16.5):  # within the day (BASE is 07:18): nothing to roll
        as_of = BASE + dt.timedelta(hours=hours)
        assert rollups.title_rollups_advance(as_of=as_of).days_read == 0
        assert_same(as_of)
    for days in (1, 2, 5):  # the next days close; one gap of three days
        as_of = BASE + dt.timedelta(days=days, hours=3.25)
        step = rollups.title_rollups_advance(as_of=as_of)
        assert not step.rebuilt and step.through_day == as_of.date()
        assert_same(as_of)
    midnight = dt.datetime.combine(BASE.date() + dt.timedelta(days=6), dt.time(), tzinfo=dt.UTC)
    rollups.title_rollups_advance(as_of=midnight)  # window edges exactly on midnights
    assert_same(midnight)


def test_late_viewings_and_completions_are_counted(history):
    titles, profiles = history
    as_of = BASE + dt.timedelta(days=1, hours=2)
    rollups.title_rollups_advance(as_of=as_of)
    late = [
        viewing(profiles[0], titles[5], as_of - dt.timedelta(days=1, hours=5), 0.95),  # a closed day re-read
        viewing(profiles[1], titles[4], as_of - dt.timedelta(days=9, hours=1), 0.3),
    ]  # 9 days back
    ViewingEvent.objects.bulk_create(late)
    step = rollups.title_rollups_advance(as_of=as_of)
    assert not step.rebuilt and step.days_read >= 9
    assert_same(as_of)
    # Completed later the same week (an update, not a new row): counted once that day is read again.
    yesterday = ViewingEvent.objects.filter(
        started_at__gte=as_of - dt.timedelta(days=1, hours=20),
        started_at__lt=as_of - dt.timedelta(hours=3),
        completed=False,
    ).first()
    ViewingEvent.objects.filter(pk=yesterday.pk).update(completed=True, watch_percentage=1.0)
    next_day = as_of + dt.timedelta(days=1)
    rollups.title_rollups_advance(as_of=next_day)
    assert_same(next_day)
    # A load of old history (a month back, beyond the kept days) rebuilds from scratch.
    ViewingEvent.objects.bulk_create([viewing(profiles[2], titles[3], as_of - dt.timedelta(days=30), 0.5)])
    assert rollups.title_rollups_advance(as_of=next_day).rebuilt
    assert_same(next_day)


def test_reads_refuse_rollups_of_another_day(history):
    rollups.title_rollups_advance(as_of=BASE)
    with pytest.raises(ValueError, match="not advanced"):
        rollups.content_aggregates_rolled(as_of=BASE + dt.timedelta(days=1))


def test_a_titles_recent_views_come_from_the_rollup(history):
    titles, _ = history
    as_of = BASE + dt.timedelta(hours=9.5)
    for title in titles:
        plain = ViewingEvent.objects.filter(
            title=title, started_at__gte=as_of - dt.timedelta(days=7), started_at__lt=as_of
        ).count()
        assert rollups.title_views_recent(title_id=title.pk, as_of=as_of) == plain  # before any rollup: counted
    rollups.title_rollups_advance(as_of=as_of)
    for title in titles:
        for days in (1, 7, 14):
            plain = ViewingEvent.objects.filter(
                title=title, started_at__gte=as_of - dt.timedelta(days=days), started_at__lt=as_of
            ).count()
            assert rollups.title_views_recent(title_id=title.pk, as_of=as_of, days=days) == plain


def test_the_content_refresh_reads_the_rollups(history, store):
    from features import services

    services.content_features_refresh(store=store)  # now: rebuilds the rollups first
    assert rollups.rolled_through() == dt.datetime.now(dt.UTC).date()
    frame = pd.DataFrame({"title_id": [t.pk for t in history[0]]})
    assert store.get_many("content", frame["title_id"].tolist()).found.all()
