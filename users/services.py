"""Writes loaded datasets (catalog, audience, viewing history) in one transaction, set-based."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass

import numpy as np
import pandas as pd
from django.apps import apps
from django.db import connection, transaction
from django.db.models import Count
from django.utils import timezone

from catalog.models import Genre, Title
from config.bulk import copy_arrays, drop_indexes, prefetched, upsert_frame
from users.loaders.dataset import TITLE_COLUMNS, Dataset
from users.models import MAX_PROFILES_PER_ACCOUNT, Account, Profile

_SOURCE_RE = re.compile(r"^[a-z0-9-]+$")
EVENTS_TABLE = "users_viewingevent"


@dataclass(frozen=True)
class LoadSummary:
    source: str
    titles: int
    genres: int
    people: int
    credits: int
    accounts: int
    profiles: int
    events_read: int
    events_written: int
    seconds: float
    phase_seconds: dict[str, float]

    def line(self) -> str:
        skipped = self.events_read - self.events_written
        return (
            f"{self.source}: {self.titles:,} titles, {self.genres:,} genres, {self.people:,} people, "
            f"{self.credits:,} credits, {self.accounts:,} accounts, {self.profiles:,} profiles, "
            f"{self.events_written:,} new viewing events"
            + (f" ({skipped:,} already present)" if skipped else "")
            + f" in {self.seconds:.1f} s"
        )


class DatasetAlreadyLoaded(Exception):
    pass


def profile_create(*, account_id: int, name: str, genre_ids: Sequence[int] = ()) -> Profile:
    """A new adult profile in the account's first free slot, with its onboarding genres (ValueError if full)."""
    with transaction.atomic():
        taken = set(Profile.objects.select_for_update().filter(account_id=account_id).values_list("slot", flat=True))
        free = [slot for slot in range(1, MAX_PROFILES_PER_ACCOUNT + 1) if slot not in taken]
        if not free:
            raise ValueError(f"account {account_id} already has {MAX_PROFILES_PER_ACCOUNT} profiles")
        profile = Profile.objects.create(account_id=account_id, slot=free[0], name=name, created_at=timezone.now())
        profile.onboarding_genres.set(genre_ids)
    return profile


def new_viewers_ensure(*, name: str, genre_picks: Sequence[Sequence[str]]) -> list[int]:
    """Profiles called `name` that have just signed up: one per pick of onboarding genres (by name), in the
    first accounts with a free slot, created once (later calls return the existing ones). Their ids."""
    existing = list(Profile.objects.filter(name=name).order_by("id").values_list("id", flat=True))
    if existing:
        return existing
    genres = dict(Genre.objects.values_list("name", "id"))
    accounts = (
        Account.objects.annotate(profile_count=Count("profiles"))
        .filter(profile_count__lt=MAX_PROFILES_PER_ACCOUNT)
        .order_by("id")
        .values_list("id", flat=True)
    )
    return [
        profile_create(account_id=account_id, name=name, genre_ids=[genres[g] for g in pick if g in genres]).pk
        for account_id, pick in zip(accounts[: len(genre_picks)], genre_picks, strict=False)
    ]


def dataset_source_present(*, source: str) -> bool:
    """Whether titles from `source` are already in the catalog."""
    return Title.objects.filter(external_id__startswith=f"{source}:").exists()


def dataset_load(
    *,
    dataset: Dataset,
    fresh_history: bool = False,
    on_events: Callable[[int], None] | None = None,
) -> LoadSummary:
    """Upsert a dataset's catalog and audience and append its viewing events, all or nothing.

    Titles, people and accounts are matched by external id, so loading the same data twice adds nothing.
    Events that already exist (same profile, title and start) are skipped. With `fresh_history`, the
    source must have no history yet: events skip that check and are COPYed with the table's indexes
    rebuilt once at the end (PostgreSQL), which is what makes tens of millions of rows fast. A failure
    anywhere rolls everything back, indexes included.
    """
    if not _SOURCE_RE.match(dataset.source):
        raise ValueError(f"dataset source {dataset.source!r} must match {_SOURCE_RE.pattern}")
    started = time.perf_counter()
    phases: dict[str, float] = {}
    clock = _PhaseClock(phases)
    with transaction.atomic():
        if fresh_history and dataset_source_present(source=dataset.source):
            raise DatasetAlreadyLoaded(f"{dataset.source} is already loaded")
        with clock("catalog"):
            upsert_frame(
                "catalog_country",
                dataset.countries[["code", "name"]],
                conflict_columns=["code"],
                update_columns=["name"],
            )
            genre_ids = _write_genres(dataset.genres)
            title_ids = _write_titles(dataset)
            _write_title_links(dataset, title_ids, genre_ids)
            person_ids = _write_people(dataset)
            credits = _write_credits(dataset, title_ids, person_ids)
        with clock("audience"):
            account_ids, profile_ids = _write_audience(dataset)
            _write_onboarding_genres(dataset, profile_ids, genre_ids)
        events_read = events_written = 0
        conflict = () if fresh_history else ("profile_id", "title_id", "started_at")
        with clock("drop indexes"):
            rebuild = drop_indexes(EVENTS_TABLE) if fresh_history else None
        with closing(prefetched(dataset.events)) as chunks:  # closing stops the producer thread on errors
            while True:
                with clock("wait for events"):
                    chunk = next(chunks, None)
                if chunk is None:
                    break
                with clock("copy events"):
                    columns = _event_columns(chunk.columns, profile_ids=profile_ids, title_ids=title_ids)
                    events_written += copy_arrays(EVENTS_TABLE, columns, skip_conflicts_on=conflict)
                events_read += len(chunk)
                if on_events:
                    on_events(len(chunk))
        if rebuild:
            with clock("build indexes"):
                rebuild.rebuild()
        if connection.vendor == "postgresql":
            with clock("analyze"), connection.cursor() as cursor:
                # Fresh planner statistics, or the first queries after a big load may pick bad plans.
                cursor.execute(
                    f"ANALYZE catalog_title, catalog_title_genres, catalog_title_available_countries, "
                    f"catalog_credit, users_account, users_profile, {EVENTS_TABLE}"
                )
    return LoadSummary(
        source=dataset.source,
        titles=len(title_ids),
        genres=len(dataset.genres),
        people=len(person_ids),
        credits=credits,
        accounts=len(account_ids),
        profiles=len(profile_ids),
        events_read=events_read,
        events_written=events_written,
        seconds=time.perf_counter() - started,
        phase_seconds=phases,
    )


class _PhaseClock:
    """Adds the wall time of each `with clock(name):` block to `phases[name]`."""

    def __init__(self, phases: dict[str, float]) -> None:
        self.phases = phases

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.phases[name] = self.phases.get(name, 0.0) + time.perf_counter() - started


def _fetch_frame(sql: str, params: list, columns: list[str]) -> pd.DataFrame:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return pd.DataFrame(cursor.fetchall(), columns=columns)


def _ids_for(table: str, keys: pd.Series, source: str) -> np.ndarray:
    """Database ids of rows of `table` whose external_id are `keys`, in the order of `keys`."""
    found = _fetch_frame(
        f"SELECT external_id, id FROM {table} WHERE external_id LIKE %s", [f"{source}:%"], ["external_id", "id"]
    )
    ids = found.set_index("external_id")["id"].reindex(keys.to_numpy())
    if ids.isna().any():
        raise RuntimeError(f"{table}: {int(ids.isna().sum())} rows were not written")
    return ids.to_numpy(dtype=np.int64)


def _check_prefix(frame: pd.DataFrame, column: str, source: str, what: str) -> None:
    bad = ~frame[column].astype(str).str.startswith(f"{source}:")
    if bad.any():
        raise ValueError(f"{what} external ids must start with '{source}:', e.g. not {frame[column][bad].iloc[0]!r}")


def _write_genres(names: list[str]) -> dict[str, int]:
    upsert_frame("catalog_genre", pd.DataFrame({"name": names}), conflict_columns=["name"])
    found = _fetch_frame("SELECT name, id FROM catalog_genre", [], ["name", "id"])
    return dict(zip(found["name"], found["id"].astype(int), strict=True))


def _write_titles(dataset: Dataset) -> np.ndarray:
    titles = dataset.titles[TITLE_COLUMNS]
    _check_prefix(titles, "external_id", dataset.source, "title")
    upsert_frame("catalog_title", titles, conflict_columns=["external_id"], update_columns=TITLE_COLUMNS[1:])
    return _ids_for("catalog_title", titles["external_id"], dataset.source)


def _write_title_links(dataset: Dataset, title_ids: np.ndarray, genre_ids: dict[str, int]) -> None:
    links = dataset.title_genres
    frame = pd.DataFrame(
        {"title_id": title_ids[links["title_index"].to_numpy()], "genre_id": links["genre"].map(genre_ids)}
    )
    upsert_frame("catalog_title_genres", frame, conflict_columns=["title_id", "genre_id"])
    if dataset.title_countries.empty:
        return
    countries = _fetch_frame("SELECT code, id FROM catalog_country", [], ["code", "id"])
    country_ids = dict(zip(countries["code"], countries["id"].astype(int), strict=True))
    links = dataset.title_countries
    frame = pd.DataFrame(
        {"title_id": title_ids[links["title_index"].to_numpy()], "country_id": links["country"].map(country_ids)}
    )
    upsert_frame("catalog_title_available_countries", frame, conflict_columns=["title_id", "country_id"])


def _write_people(dataset: Dataset) -> np.ndarray:
    if dataset.people.empty:
        return np.empty(0, dtype=np.int64)
    _check_prefix(dataset.people, "external_id", dataset.source, "person")
    upsert_frame(
        "catalog_person",
        dataset.people[["external_id", "name"]],
        conflict_columns=["external_id"],
        update_columns=["name"],
    )
    return _ids_for("catalog_person", dataset.people["external_id"], dataset.source)


def _write_credits(dataset: Dataset, title_ids: np.ndarray, person_ids: np.ndarray) -> int:
    credits = dataset.credits
    if credits.empty:
        return 0
    frame = pd.DataFrame(
        {
            "title_id": title_ids[credits["title_index"].to_numpy()],
            "person_id": person_ids[credits["person_index"].to_numpy()],
            "role": credits["role"].to_numpy(),
            "billing_order": credits["billing_order"].to_numpy(),
        }
    )
    upsert_frame(
        "catalog_credit", frame, conflict_columns=["title_id", "person_id", "role"], update_columns=["billing_order"]
    )
    return len(frame)


def _write_audience(dataset: Dataset) -> tuple[np.ndarray, np.ndarray]:
    accounts = dataset.accounts
    _check_prefix(accounts, "external_id", dataset.source, "account")
    upsert_frame(
        "users_account", accounts, conflict_columns=["external_id"], update_columns=["country", "subscription_tier"]
    )
    account_ids = _ids_for("users_account", accounts["external_id"], dataset.source)
    profiles = dataset.profiles
    frame = pd.DataFrame(
        {
            "account_id": account_ids[profiles["account_index"].to_numpy()],
            "slot": profiles["slot"].to_numpy(),
            "name": profiles["name"].to_numpy(),
            "is_kids": profiles["is_kids"].to_numpy(),
            "maturity_cap": profiles["maturity_cap"].to_numpy(),
            "created_at": profiles["created_at"],
        }
    )
    upsert_frame(
        "users_profile",
        frame,
        conflict_columns=["account_id", "slot"],
        update_columns=["name", "is_kids", "maturity_cap"],
    )
    found = _fetch_frame(
        "SELECT p.account_id, p.slot, p.id FROM users_profile p JOIN users_account a ON a.id = p.account_id "
        "WHERE a.external_id LIKE %s",
        [f"{dataset.source}:%"],
        ["account_id", "slot", "id"],
    )
    keyed = found.set_index(["account_id", "slot"])["id"]
    profile_ids = keyed.reindex(pd.MultiIndex.from_arrays([frame["account_id"], frame["slot"]]))
    if profile_ids.isna().any():
        raise RuntimeError(f"users_profile: {int(profile_ids.isna().sum())} rows were not written")
    return account_ids, profile_ids.to_numpy(dtype=np.int64)


def _write_onboarding_genres(dataset: Dataset, profile_ids: np.ndarray, genre_ids: dict[str, int]) -> None:
    picks = dataset.profile_genres
    if picks.empty:
        return
    frame = pd.DataFrame(
        {
            "profile_id": profile_ids[picks["profile_index"].to_numpy(np.int64)],
            "genre_id": picks["genre"].map(genre_ids),
        }
    )
    upsert_frame(Profile.onboarding_genres.through._meta.db_table, frame, conflict_columns=["profile_id", "genre_id"])


def _event_columns(
    chunk: dict[str, np.ndarray], *, profile_ids: np.ndarray, title_ids: np.ndarray
) -> dict[str, tuple[str, np.ndarray]]:
    return {
        "profile_id": ("int8", profile_ids[chunk["profile_index"]]),
        "title_id": ("int8", title_ids[chunk["title_index"]]),
        "started_at": ("timestamptz", chunk["started_at"]),
        "last_watched_at": ("timestamptz", chunk["last_watched_at"]),
        "watch_seconds": ("int4", chunk["watch_seconds"]),
        "watch_percentage": ("float8", chunk["watch_percentage"]),
        "device_type": ("int2", chunk["device_type"]),
        "completed": ("bool", chunk["completed"]),
    }


def _dependent_rows() -> list[tuple[str, str, type]]:
    """(table, column, Profile or Title) of every foreign key that other apps hold on profiles and titles
    (events, exploration logs, rules on a title), found from the models, so this app names none of them."""
    found = []
    for model in apps.get_models(include_auto_created=True):
        if model._meta.app_label in {"users", "catalog"}:
            continue
        found.extend(
            (model._meta.db_table, field.column, field.related_model)
            for field in model._meta.concrete_fields
            if field.many_to_one and field.related_model in (Profile, Title)
        )
    return found


def dataset_remove(*, source: str) -> None:
    """Delete everything a source loaded (set-based SQL; the ORM's cascade would walk rows in Python)."""
    if not _SOURCE_RE.match(source):
        raise ValueError(f"dataset source {source!r} must match {_SOURCE_RE.pattern}")
    like = f"{source}:%"
    accounts = "SELECT id FROM users_account WHERE external_id LIKE %s"
    profiles = f"SELECT id FROM users_profile WHERE account_id IN ({accounts})"
    titles = "SELECT id FROM catalog_title WHERE external_id LIKE %s"
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM users_account WHERE external_id NOT LIKE %s", [like])
        only_source = cursor.fetchone()[0] == 0
        for table, column, target in _dependent_rows():  # other apps' rows on these profiles and titles
            cursor.execute(
                f"DELETE FROM {table} WHERE {column} IN ({profiles if target is Profile else titles})", [like]
            )
        if only_source and connection.vendor == "postgresql":
            cursor.execute(f"TRUNCATE {EVENTS_TABLE}")  # seconds instead of minutes at 50M rows
        else:
            cursor.execute(f"DELETE FROM {EVENTS_TABLE} WHERE profile_id IN ({profiles})", [like])
        cursor.execute(f"DELETE FROM {EVENTS_TABLE} WHERE title_id IN ({titles})", [like])
        cursor.execute(f"DELETE FROM users_profile_onboarding_genres WHERE profile_id IN ({profiles})", [like])
        cursor.execute(f"DELETE FROM users_profile WHERE account_id IN ({accounts})", [like])
        cursor.execute("DELETE FROM users_account WHERE external_id LIKE %s", [like])
        for link in ("catalog_credit", "catalog_title_genres", "catalog_title_available_countries"):
            cursor.execute(f"DELETE FROM {link} WHERE title_id IN ({titles})", [like])
        cursor.execute("DELETE FROM catalog_title WHERE external_id LIKE %s", [like])
        cursor.execute(
            "DELETE FROM catalog_credit WHERE person_id IN (SELECT id FROM catalog_person WHERE external_id LIKE %s)",
            [like],
        )
        cursor.execute("DELETE FROM catalog_person WHERE external_id LIKE %s", [like])
