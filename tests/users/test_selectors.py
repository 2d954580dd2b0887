"""History queries return the right rows, and PostgreSQL can serve each from its index."""
from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.utils import timezone

from tests.factories.catalog import TitleFactory
from tests.factories.users import ViewingEventFactory
from users.selectors import profile_history, profile_in_progress, title_views_between


@pytest.fixture
def history(profile):
    now = timezone.now()
    titles = TitleFactory.create_batch(4)
    return [
        ViewingEventFactory(profile=profile, title=titles[0], started_at=now - dt.timedelta(days=3), watch_percentage=1.0),
        ViewingEventFactory(profile=profile, title=titles[1], started_at=now - dt.timedelta(days=2), watch_percentage=0.5),
        ViewingEventFactory(profile=profile, title=titles[2], started_at=now - dt.timedelta(days=1), watch_percentage=0.05),
        ViewingEventFactory(profile=profile, title=titles[3], started_at=now - dt.timedelta(hours=1), watch_percentage=0.3),
    ]


def test_history_is_newest_first(history, profile):
    assert list(profile_history(profile_id=profile.id)) == list(reversed(history))


def test_in_progress_keeps_10_to_90_percent_newest_first(history, profile):
    assert list(profile_in_progress(profile_id=profile.id)) == [history[3], history[1]]


def test_title_views_in_window(history):
    target = history[1]
    start = target.started_at - dt.timedelta(minutes=1)
    assert list(title_views_between(title_id=target.title_id, start=start, end=start + dt.timedelta(hours=1))) == [target]
    assert not title_views_between(title_id=target.title_id, start=start + dt.timedelta(hours=1),
                                   end=start + dt.timedelta(hours=2)).exists()  # fmt: skip


@pytest.mark.parametrize(
    ("query", "index"),
    [
        (lambda: profile_history(profile_id=1), "viewing_profile_recent_idx"),
        (lambda: profile_in_progress(profile_id=1), "viewing_in_progress_idx"),
        (
            lambda: title_views_between(
                title_id=1, start=timezone.now() - dt.timedelta(days=7), end=timezone.now()
            ),
            "viewing_title_started_idx",
        ),
    ],
)
def test_postgres_serves_query_from_its_index(db, is_postgres, query, index):
    if not is_postgres:
        pytest.skip("index plans are checked on PostgreSQL")
    with connection.cursor() as cursor:
        # Tiny test tables make a sequential scan cheapest; forbid it to see which index the query can use. On
        # empty tables two indexes on the same leading column cost the same and the planner's pick is a coin
        # toss, so the other secondary indexes are dropped for this test's transaction (rolled back after it).
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_bitmapscan = off")  # and no index read unordered and then sorted
        cursor.execute("SET LOCAL enable_sort = off")
        for other in {"viewing_profile_recent_idx", "viewing_in_progress_idx", "viewing_title_started_idx"} - {index}:
            cursor.execute(f"DROP INDEX {other}")
        plan = query().explain()
        # Partitioned (config.partitions): each month partition's plan names its own copy of the index.
        cursor.execute("SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                       "WHERE i.inhparent = %s::regclass", [index])  # fmt: skip
        copies = {index} | {name for (name,) in cursor.fetchall()}
    assert any(name in plan for name in copies), plan
