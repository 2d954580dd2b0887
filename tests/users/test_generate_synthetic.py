"""generate_synthetic against the database: counts, refusal to duplicate, --replace, all-or-nothing loads."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from django.core.management import CommandError, call_command
from django.db import IntegrityError, connection

from catalog.models import Credit, Title
from users.loaders.synthetic import SyntheticConfig, generate
from users.models import Account, Profile, ViewingEvent
from users.services import EVENTS_TABLE, dataset_load

ARGS = ["--titles", "300", "--accounts", "60", "--events", "4000", "--seed", "5", "--as-of", "2026-03-01"]


def _counts() -> tuple[int, int, int, int, int]:
    return (
        Title.objects.count(),
        Credit.objects.count(),
        Account.objects.count(),
        Profile.objects.count(),
        ViewingEvent.objects.count(),
    )


def _event_indexes() -> set[str]:
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT indexname FROM pg_indexes WHERE tablename = %s", [EVENTS_TABLE])
        else:
            cursor.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = %s", [EVENTS_TABLE])
        return {row[0] for row in cursor.fetchall()}


def test_loads_the_generated_world(db, tmp_path):
    call_command("generate_synthetic", *ARGS, "--ground-truth-dir", str(tmp_path), verbosity=0)

    titles, credits, accounts, profiles, events = _counts()
    assert (titles, accounts) == (300, 60)
    assert 60 <= profiles <= 300 and credits > 300
    assert 3_900 <= events <= 4_000  # a handful of exact repeats are dropped
    assert (tmp_path / "ground_truth.npz").is_file()
    assert Title.objects.filter(is_original=True).exists()
    assert Title.objects.filter(available_countries__isnull=False).exists()
    assert {"viewing_profile_recent_idx", "viewing_in_progress_idx", "viewing_title_started_idx"} <= _event_indexes()


def test_second_run_is_refused_without_replace(db, tmp_path):
    call_command("generate_synthetic", *ARGS, "--ground-truth-dir", str(tmp_path), verbosity=0)
    before = _counts()

    with pytest.raises(CommandError, match="--replace"):
        call_command("generate_synthetic", *ARGS, "--ground-truth-dir", str(tmp_path), verbosity=0)
    assert _counts() == before

    call_command("generate_synthetic", *ARGS, "--replace", "--ground-truth-dir", str(tmp_path), verbosity=0)
    assert _counts() == before


def test_replace_keeps_other_sources(db, tmp_path, profile, title):
    call_command("generate_synthetic", *ARGS, "--ground-truth-dir", str(tmp_path), verbosity=0)
    call_command("generate_synthetic", *ARGS, "--replace", "--ground-truth-dir", str(tmp_path), verbosity=0)

    assert Profile.objects.filter(pk=profile.pk).exists() and Title.objects.filter(pk=title.pk).exists()


def test_failed_load_leaves_database_and_indexes_as_they_were(db):
    dataset, _ = generate(SyntheticConfig(titles=200, accounts=30, events=2_000, seed=3, as_of=dt.date(2026, 3, 1)))
    chunks = list(dataset.events)
    chunks[-1].columns["watch_percentage"] = np.full(len(chunks[-1]), 1.5)  # violates a check constraint
    dataset.events = iter(chunks)
    indexes = _event_indexes()

    with pytest.raises(IntegrityError):
        dataset_load(dataset=dataset, fresh_history=True)

    assert _counts() == (0, 0, 0, 0, 0)
    assert _event_indexes() == indexes


def test_replace_also_removes_what_other_apps_hold_on_the_replaced_rows(db, tmp_path):
    from events.models import Event
    from tests.factories.events import EventFactory

    call_command("generate_synthetic", *ARGS, "--ground-truth-dir", str(tmp_path), verbosity=0)
    synthetic_profile, synthetic_title = Profile.objects.first(), Title.objects.first()
    EventFactory(profile=synthetic_profile, title=synthetic_title)  # events on synthetic rows block a raw DELETE

    call_command("generate_synthetic", *ARGS, "--replace", "--ground-truth-dir", str(tmp_path), verbosity=0)
    assert not Event.objects.filter(profile_id=synthetic_profile.pk).exists()
    assert _counts()[0] == 300
