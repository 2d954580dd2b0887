"""Monthly partitions of viewing history and API events (config.partitions; PostgreSQL only).

Rows land in their month's partition, the default partition catches the rest, creating a month takes its rows
out of the default one, retention drops only whole months past the window (and their event keys) and a second
run changes nothing, a converted table keeps its rows and ids, and a title's week of views reads only the
partitions of that week.
"""

from __future__ import annotations

import datetime as dt
import re

import numpy as np
import pytest
from django.db import connection

from config import partitions
from config.bulk import copy_arrays
from config.partitions import API_EVENTS, VIEWING_EVENTS, add_months, month_start, partition_name
from events.models import Event, EventKey
from tests.events import conftest as events_fixtures
from tests.events.helpers import event, post
from tests.factories.users import ViewingEventFactory
from users.models import DeviceType, ViewingEvent

pytestmark = pytest.mark.django_db
# The events tests' API client and small world, for the tests that post events.
api, app_client, profiles, titles = (
    events_fixtures.api,
    events_fixtures.app_client,
    events_fixtures.profiles,
    events_fixtures.titles,
)


@pytest.fixture(autouse=True)
def _postgres_only(is_postgres):
    if not is_postgres:
        pytest.skip("partitions are PostgreSQL's")


def partition_of(model, pk: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT tableoid::regclass::text FROM {model._meta.db_table} WHERE id = %s", [pk])
        return cursor.fetchone()[0]


def viewing_at(started_at: dt.datetime, **fields) -> ViewingEvent:
    return ViewingEventFactory(started_at=started_at, **fields)


NOW = dt.datetime.now(dt.UTC)
THIS_MONTH = month_start(NOW)


def test_both_tables_are_partitioned_by_month_with_a_default_partition():
    for spec in (VIEWING_EVENTS, API_EVENTS):
        names = [p.name for p in partitions.partitions(spec.table)]
        assert partitions.is_partitioned(spec.table)
        assert partition_name(spec.table, THIS_MONTH) in names  # the migration made this month and 3 ahead
        assert partition_name(spec.table, add_months(THIS_MONTH, 3)) in names
        assert names[-1] == partitions.default_name(spec.table)


def test_a_row_lands_in_its_month_and_one_out_of_range_in_the_default_partition():
    recent = viewing_at(NOW - dt.timedelta(hours=1))
    ancient = viewing_at(dt.datetime(1990, 6, 1, tzinfo=dt.UTC))

    assert partition_of(ViewingEvent, recent.pk) == partition_name("users_viewingevent", month_start(recent.started_at))
    assert partition_of(ViewingEvent, ancient.pk) == "users_viewingevent_default"


def test_creating_a_month_moves_its_rows_out_of_the_default_partition():
    june = dt.datetime(1990, 6, 1, tzinfo=dt.UTC)
    stray, other = viewing_at(june + dt.timedelta(days=3)), viewing_at(dt.datetime(1991, 1, 5, tzinfo=dt.UTC))

    assert partitions.ensure_months(VIEWING_EVENTS, [june]) == ["users_viewingevent_p1990_06"]
    assert partitions.ensure_months(VIEWING_EVENTS, [june]) == []  # idempotent

    assert partition_of(ViewingEvent, stray.pk) == "users_viewingevent_p1990_06"
    assert partition_of(ViewingEvent, other.pk) == "users_viewingevent_default"
    assert ViewingEvent.objects.get(pk=stray.pk).started_at == stray.started_at  # same row, same id


def test_copy_creates_the_months_of_its_rows_so_none_lands_in_the_default(profile, title):
    started = np.array(["1999-12-31T23:00:00", "2000-02-01T00:00:00"], dtype="datetime64[us]")
    copy_arrays(
        "users_viewingevent",
        {
            "profile_id": ("int8", np.array([profile.id] * 2)),
            "title_id": ("int8", np.array([title.id] * 2)),
            "started_at": ("timestamptz", started),
            "last_watched_at": ("timestamptz", started),
            "watch_seconds": ("int4", np.zeros(2, np.int32)),
            "watch_percentage": ("float8", np.zeros(2)),
            "device_type": ("int2", np.full(2, DeviceType.TV, np.int16)),
            "completed": ("bool", np.zeros(2, bool)),
        },
    )

    months = {partition_of(ViewingEvent, pk) for pk in ViewingEvent.objects.values_list("pk", flat=True)}
    assert months == {"users_viewingevent_p1999_12", "users_viewingevent_p2000_02"}  # no empty January made


def test_retention_drops_only_months_past_the_window_and_a_second_run_changes_nothing(
    api, app_client, profiles, titles
):
    old_month, kept_month = add_months(THIS_MONTH, -30), add_months(THIS_MONTH, -23)
    partitions.ensure_months(VIEWING_EVENTS, [old_month, kept_month])
    partitions.ensure_months(API_EVENTS, [old_month, kept_month])
    old, kept = viewing_at(old_month + dt.timedelta(days=2)), viewing_at(kept_month + dt.timedelta(days=2))
    stray_old = viewing_at(dt.datetime(1990, 1, 1, tzinfo=dt.UTC))  # in the default partition, also past the window
    old_click = event(
        "click", profiles[0].pk, content_id=titles[0].pk, occurred_at=(old_month + dt.timedelta(days=1)).isoformat()
    )
    new_click = event("click", profiles[0].pk, content_id=titles[0].pk)
    assert post(api, [old_click, new_click]).json()["accepted"] == 2

    changed = partitions.partitions_maintain(months_ahead=3, retention_months=24, now=NOW)

    names = {p.name for p in partitions.partitions("users_viewingevent")}
    assert partition_name("users_viewingevent", old_month) not in names
    assert partition_name("users_viewingevent", kept_month) in names
    assert partition_name("events_event", old_month) not in {p.name for p in partitions.partitions("events_event")}
    assert set(ViewingEvent.objects.values_list("pk", flat=True)) == {kept.pk}
    assert not ViewingEvent.objects.filter(pk__in=[old.pk, stray_old.pk]).exists()
    assert list(Event.objects.values_list("client_event_id", flat=True)) == [new_click["event_id"]]
    assert list(EventKey.objects.values_list("client_event_id", flat=True)) == [new_click["event_id"]]
    assert changed >= 2
    assert partitions.partitions_maintain(months_ahead=3, retention_months=24, now=NOW) == 0  # idempotent
    assert set(ViewingEvent.objects.values_list("pk", flat=True)) == {kept.pk}


def test_retention_zero_keeps_everything():
    old_month = add_months(THIS_MONTH, -60)
    partitions.ensure_months(VIEWING_EVENTS, [old_month])
    old = viewing_at(old_month + dt.timedelta(days=1))
    partitions.partitions_maintain(months_ahead=3, retention_months=0, now=NOW)
    assert ViewingEvent.objects.filter(pk=old.pk).exists()


def test_the_maintenance_job_creates_months_ahead():
    from tasks.maintenance import maintain_partitions

    later = add_months(THIS_MONTH, 6)
    assert partition_name("users_viewingevent", later) not in {
        p.name for p in partitions.partitions("users_viewingevent")
    }
    maintain_partitions.apply(kwargs={"months_ahead": 6, "retention_months": 24}).get()
    for spec in (VIEWING_EVENTS, API_EVENTS):
        assert partition_name(spec.table, later) in {p.name for p in partitions.partitions(spec.table)}


def test_an_event_id_repeated_with_another_occurred_at_is_still_a_duplicate(api, app_client, profiles, titles):
    """The events' months cannot hold the key (it would need occurred_at): EventKey keeps it unique."""
    click = event("click", profiles[0].pk, content_id=titles[0].pk)
    earlier = {**click, "occurred_at": (NOW - dt.timedelta(days=40)).isoformat()}  # another month's partition

    assert post(api, [click]).json()["accepted"] == 1
    body = post(api, [earlier]).json()

    assert (body["accepted"], body["duplicates"]) == (0, 1)
    assert Event.objects.count() == 1


def test_a_converted_table_keeps_its_rows_ids_and_constraints():
    rows = [viewing_at(NOW - dt.timedelta(days=d)) for d in (1, 40, 400)]
    partitions.convert_to_plain(VIEWING_EVENTS)
    assert not partitions.is_partitioned("users_viewingevent")
    assert ViewingEvent.objects.count() == 3

    partitions.convert_to_partitioned(VIEWING_EVENTS, months_ahead=1, now=NOW)

    assert partitions.is_partitioned("users_viewingevent")
    assert sorted(ViewingEvent.objects.values_list("pk", flat=True)) == sorted(r.pk for r in rows)
    for row in rows:
        assert partition_of(ViewingEvent, row.pk) == partition_name("users_viewingevent", month_start(row.started_at))
    newer = viewing_at(NOW)
    assert newer.pk > max(r.pk for r in rows)  # the id sequence goes on
    with connection.cursor() as cursor:
        cursor.execute("SELECT conname FROM pg_constraint WHERE conrelid = 'users_viewingevent'::regclass")
        constraints = {name for (name,) in cursor.fetchall()}
        cursor.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'users_viewingevent'")
        indexes = {name for (name,) in cursor.fetchall()}
    assert {"viewing_unique_start", "viewing_times_ordered", "users_viewingevent_pkey"} <= constraints
    assert {"viewing_profile_recent_idx", "viewing_in_progress_idx", "viewing_title_started_idx"} <= indexes


def scanned_partitions(plan: str) -> set[str]:
    return set(re.findall(r"on (users_viewingevent_\w+?)(?: |$)", plan, flags=re.MULTILINE))


def test_a_titles_week_of_views_reads_only_that_weeks_partitions():
    months = [add_months(THIS_MONTH, -k) for k in range(6)]
    partitions.ensure_months(VIEWING_EVENTS, months)
    week = (NOW - dt.timedelta(days=7), NOW)

    plan = ViewingEvent.objects.filter(title_id=1, started_at__gte=week[0], started_at__lt=week[1]).explain()

    expected = {partition_name("users_viewingevent", month_start(moment)) for moment in week}
    assert scanned_partitions(plan) == expected, plan  # one or two months, never the default partition


def test_a_profiles_history_reads_every_month_newest_first_without_sorting():
    """No bound on time, so no pruning: one index probe per partition, merged in order (no sort of the rows)."""
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")  # tiny tables: a scan and a sort would cost least
        cursor.execute("SET LOCAL enable_bitmapscan = off")
        plan = ViewingEvent.objects.filter(profile_id=1).order_by("-last_watched_at")[:100].explain()
    assert "Merge Append" in plan, plan
    assert not re.search(r"^\s*(->\s*)?Sort  \(", plan, flags=re.MULTILINE), plan
    assert scanned_partitions(plan) == {p.name for p in partitions.partitions("users_viewingevent")}


def test_profiles_active_since_finds_a_viewing_started_months_ago_and_last_watched_now(profile, title):
    """The read bounds started_at to a day before `since` (newest months only); longer viewings have their index."""
    from features.selectors import profiles_active_since
    from tests.factories.users import ProfileFactory

    since = NOW - dt.timedelta(hours=1)
    long_ago = add_months(THIS_MONTH, -3)
    partitions.ensure_months(VIEWING_EVENTS, [long_ago])
    resumed, recent, idle = profile, ProfileFactory(), ProfileFactory()
    viewing_at(long_ago + dt.timedelta(days=1), profile=resumed, last_watched_at=NOW - dt.timedelta(minutes=5))
    viewing_at(NOW - dt.timedelta(minutes=30), profile=recent)
    viewing_at(long_ago + dt.timedelta(days=2), profile=idle)

    assert profiles_active_since(since=since).tolist() == sorted([resumed.id, recent.id])


def test_converted_events_keep_their_rows_generated_keys_and_ids():
    from tests.factories.events import EventFactory

    rows = [EventFactory(occurred_at=NOW - dt.timedelta(days=d), type="impression", position=2) for d in (1, 70)]
    partitions.convert_to_plain(API_EVENTS)
    partitions.convert_to_partitioned(API_EVENTS, months_ahead=1, now=NOW)

    assert sorted(Event.objects.values_list("pk", "item_position")) == sorted((r.pk, 2) for r in rows)
    for row in rows:
        assert partition_of(Event, row.pk) == partition_name("events_event", month_start(row.occurred_at))
    assert EventFactory(occurred_at=NOW).pk > max(r.pk for r in rows)


@pytest.mark.django_db(transaction=True)
def test_the_loaders_vacuum_the_newest_filled_months_only_outside_a_transaction():
    partitions.ensure_months(VIEWING_EVENTS, [add_months(THIS_MONTH, -3), add_months(THIS_MONTH, -1)])
    viewing_at(add_months(THIS_MONTH, -3))
    viewing_at(add_months(THIS_MONTH, -1))
    viewing_at(NOW - dt.timedelta(minutes=5))
    newest = [
        partition_name(VIEWING_EVENTS.table, add_months(THIS_MONTH, -1)),
        partition_name(VIEWING_EVENTS.table, THIS_MONTH),
    ]
    assert partitions.vacuum_newest(VIEWING_EVENTS.table) == newest  # empty months ahead are skipped
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname FROM pg_stat_user_tables WHERE relname = ANY(%s) AND last_vacuum IS NOT NULL", [newest]
        )
        assert sorted(row[0] for row in cursor.fetchall()) == sorted(newest)
    from django.db import transaction

    with transaction.atomic():
        assert partitions.vacuum_newest(VIEWING_EVENTS.table) == []  # VACUUM refuses a transaction block
