"""Who is asking: the request context and the profile's entitlements and recent history, read once."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace

import numpy as np
from django.db import connections
from django.utils.dateparse import parse_datetime

from catalog.models import MaturityRating
from config.db import prepared
from config.db.replicas import read_alias
from recommendations.ml.candidate_pipeline import HISTORY_LIMIT
from recommendations.ml.catalog import CatalogIndex
from recommendations.vocabulary import DEVICE, SUBSCRIPTION_TIER, TIME_OF_DAY
from users.models import Account, DeviceType, Profile, ViewingEvent

_VIEWINGS = ViewingEvent._meta.db_table
HEAD_SQL = f"""
    SELECT p.id, p.account_id, a.subscription_tier, a.country, p.maturity_cap, p.is_kids,
           (SELECT v.last_watched_at FROM {_VIEWINGS} v WHERE v.profile_id = p.id
            ORDER BY v.last_watched_at DESC LIMIT 1)
    FROM {Profile._meta.db_table} p JOIN {Account._meta.db_table} a ON a.id = p.account_id
    WHERE p.id = %s"""
# The newest viewings and the onboarding genres in one round trip; `is_genre` tells the two kinds of row apart.
HISTORY_SQL = f"""
    SELECT * FROM (
        SELECT 0 AS is_genre, title_id, watch_percentage, last_watched_at, completed FROM {_VIEWINGS}
        WHERE profile_id = %s {{before}} ORDER BY last_watched_at DESC LIMIT %s
    ) AS history
    UNION ALL
    SELECT 1, genre_id, NULL, NULL, NULL FROM {Profile.onboarding_genres.through._meta.db_table} WHERE profile_id = %s
    ORDER BY is_genre, last_watched_at DESC"""
# Which of the given titles the profile ever completed: one probe per title of the (profile, title, start) index.
COMPLETED_SQL = f"""
    SELECT DISTINCT title_id FROM {_VIEWINGS}
    WHERE profile_id = %s AND title_id {{titles}} AND (completed OR watch_percentage >= %s)"""
COMPLETED_SHARE = 0.9  # a viewing this far along counts as completed even if not marked so


@dataclass(frozen=True)
class UserContext:
    """The design's request context. Entitlements (tier, country, maturity) always come from the database:
    `subscription_tier` and `country` given here are hints that the engine checks, never trusts.

    device_type, time_of_day and subscription_tier take a name or a number (recommendations.vocabulary:
    'smart_tv', 'evening', 'premium', ...) and hold the number; another value raises ContextValueError."""

    user_id: int | None = None  # the account
    profile_id: int | None = None
    country: str | None = None
    device_type: int | str = DeviceType.TV
    time_of_day: int | str | None = None  # hour 0–23 in the viewer's time zone; None: the server's UTC hour
    subscription_tier: int | str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "device_type", DEVICE.parse(self.device_type))
        if self.time_of_day is not None:
            object.__setattr__(self, "time_of_day", TIME_OF_DAY.parse(self.time_of_day))
        if self.subscription_tier is not None:
            object.__setattr__(self, "subscription_tier", SUBSCRIPTION_TIER.parse(self.subscription_tier))


@dataclass(frozen=True, eq=False)
class ProfileState:
    """A profile's entitlements and its newest viewings as arrays (newest first)."""

    profile_id: int
    account_id: int
    tier: int
    country: str
    maturity_cap: int
    is_kids: bool
    onboarding_genre_ids: tuple[int, ...]
    history_title_ids: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    history_watch_percentage: np.ndarray = field(default_factory=lambda: np.empty(0, np.float32))
    history_last_watched: np.ndarray = field(default_factory=lambda: np.empty(0, np.float64))  # epoch seconds
    history_completed: np.ndarray = field(default_factory=lambda: np.empty(0, bool))
    history_truncated: bool = False  # the read stopped at its limit: older viewings exist

    @property
    def has_history(self) -> bool:
        return len(self.history_title_ids) > 0

    def within_maturity_cap(self, catalog: CatalogIndex) -> ProfileState:
        """The state without the viewings of titles above the profile's cap (or unknown to the catalog).

        A history can hold them (a rating raised after the viewing, a play reported for a kids profile); kept,
        they would seed "similar to watched" and be named by "Because you watched X" (issue #14)."""
        rows, known = catalog.positions(self.history_title_ids)
        keep = known & (catalog.maturity[rows] <= self.maturity_cap)
        if keep.all():
            return self
        return replace(
            self,
            history_title_ids=self.history_title_ids[keep],
            history_watch_percentage=self.history_watch_percentage[keep],
            history_last_watched=self.history_last_watched[keep],
            history_completed=self.history_completed[keep],
        )


@dataclass(frozen=True)
class ProfileHead:
    """What one query tells about a profile: entitlements and when it last watched (the cache key's part)."""

    profile_id: int
    account_id: int
    tier: int
    country: str
    maturity_cap: int  # already capped for kids profiles
    is_kids: bool
    newest_viewing: float  # epoch seconds of the latest last_watched_at, 0 without history


def profile_head_load(*, profile_id: int) -> ProfileHead:
    """One indexed query (no ORM objects: this is on every request); Profile.DoesNotExist if unknown."""
    rows = prepared.fetchall(read_alias(profile_id=profile_id), HEAD_SQL, [int(profile_id)])  # a replica unless pinned
    row = rows[0] if rows else None
    if row is None:
        raise Profile.DoesNotExist(f"profile {profile_id} does not exist")
    pk, account_id, tier, country, maturity_cap, is_kids, newest = row
    cap = min(int(maturity_cap), MaturityRating.AGE_7) if is_kids else int(maturity_cap)
    return ProfileHead(
        profile_id=pk,
        account_id=account_id,
        tier=int(tier),
        country=country,
        maturity_cap=cap,
        is_kids=bool(is_kids),
        newest_viewing=_epoch(newest) if newest else 0.0,
    )


def profile_state_load(
    *,
    profile_id: int,
    history_limit: int = HISTORY_LIMIT,
    before: dt.datetime | None = None,
    head: ProfileHead | None = None,
) -> ProfileState:
    """Entitlements, newest viewings and onboarding genres in two indexed queries (one with `head` already
    loaded); Profile.DoesNotExist if unknown.

    before: only viewings last watched before this time (ranker training replays a past moment)."""
    head = head or profile_head_load(profile_id=profile_id)
    alias = read_alias(profile_id=head.profile_id)
    if before is None:
        fetched = prepared.fetchall(
            alias, HISTORY_SQL.format(before=""), [head.profile_id, history_limit, head.profile_id]
        )
    else:
        fetched = prepared.fetchall(
            alias,
            HISTORY_SQL.format(before="AND last_watched_at < %s"),
            [head.profile_id, before, history_limit, head.profile_id],
        )
    onboarding = tuple(row[1] for row in fetched if row[0])
    rows = [row[1:] for row in fetched if not row[0]]  # newest first
    return ProfileState(
        profile_id=head.profile_id,
        account_id=head.account_id,
        tier=head.tier,
        country=head.country,
        maturity_cap=head.maturity_cap,
        is_kids=head.is_kids,
        onboarding_genre_ids=onboarding,
        history_title_ids=np.array([r[0] for r in rows], np.int64),
        history_watch_percentage=np.array([r[1] for r in rows], np.float32),
        history_last_watched=np.array([_epoch(r[2]) for r in rows], np.float64),
        history_completed=np.array([bool(r[3]) for r in rows], bool),
        history_truncated=len(rows) >= history_limit,
    )


def completed_titles(state: ProfileState, title_ids: np.ndarray) -> np.ndarray:
    """bool per title: the profile has completed it, in the viewings `state` holds or, when its history was
    cut at the limit, in any older one (one query bounded by the titles asked about; none for short histories)."""
    title_ids = np.asarray(title_ids, np.int64)
    finished = (state.history_watch_percentage >= COMPLETED_SHARE) | state.history_completed
    done = np.isin(title_ids, state.history_title_ids[finished])
    if not state.history_truncated or not len(title_ids):
        return done
    unknown = np.unique(title_ids[~done])
    if not len(unknown):
        return done
    connection = connections[read_alias(profile_id=state.profile_id)]
    if connection.vendor == "postgresql":
        sql, titles = COMPLETED_SQL.format(titles="= ANY(%s)"), [unknown.tolist()]
    else:  # SQLite (the embedded demo): a list of parameters, well inside its limit for ~500 candidates
        sql, titles = COMPLETED_SQL.format(titles=f"IN ({', '.join(['%s'] * len(unknown))})"), unknown.tolist()
    found = prepared.fetchall(connection.alias, sql, [state.profile_id, *titles, COMPLETED_SHARE])
    older = np.fromiter((row[0] for row in found), np.int64)
    return done | np.isin(title_ids, older)


def _epoch(value: dt.datetime | str) -> float:
    if isinstance(value, str):  # SQLite hands raw cursors text
        value = parse_datetime(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.timestamp()
