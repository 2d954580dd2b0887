"""Who is asking: the request context and the profile's entitlements and recent history, read once."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np
from django.db.models import OuterRef, Subquery

from catalog.models import MaturityRating
from users.models import DeviceType, Profile, ViewingEvent

HISTORY_LIMIT = 200  # newest viewings a request reads: enough for every source, one index range scan


@dataclass(frozen=True)
class UserContext:
    """The design's request context. Entitlements (tier, country, maturity) always come from the database:
    `subscription_tier` and `country` given here are hints that the engine checks, never trusts."""

    user_id: int | None = None  # the account
    profile_id: int | None = None
    country: str | None = None
    device_type: int = DeviceType.TV
    time_of_day: int | None = None  # hour 0–23 in the viewer's time zone; None: the server's UTC hour
    subscription_tier: int | None = None


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

    @property
    def has_history(self) -> bool:
        return len(self.history_title_ids) > 0


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
    """One indexed query; Profile.DoesNotExist if the profile is unknown."""
    newest = ViewingEvent.objects.filter(profile=OuterRef("pk")).order_by("-last_watched_at").values("last_watched_at")[:1]
    row = (
        Profile.objects.filter(pk=profile_id)
        .annotate(newest=Subquery(newest))
        .values("id", "account_id", "account__subscription_tier", "account__country", "maturity_cap", "is_kids",
                "newest")  # fmt: skip
        .get()
    )
    cap = min(int(row["maturity_cap"]), MaturityRating.AGE_7) if row["is_kids"] else int(row["maturity_cap"])
    return ProfileHead(
        profile_id=row["id"], account_id=row["account_id"], tier=int(row["account__subscription_tier"]),
        country=row["account__country"], maturity_cap=cap, is_kids=row["is_kids"],
        newest_viewing=_epoch(row["newest"]) if row["newest"] else 0.0,
    )  # fmt: skip


def profile_state_load(
    *,
    profile_id: int,
    history_limit: int = HISTORY_LIMIT,
    before: dt.datetime | None = None,
    head: ProfileHead | None = None,
) -> ProfileState:
    """Entitlements and newest viewings in three indexed queries (two with `head` already loaded);
    Profile.DoesNotExist if unknown.

    before: only viewings last watched before this time (ranker training replays a past moment)."""
    head = head or profile_head_load(profile_id=profile_id)
    viewings = ViewingEvent.objects.filter(profile_id=head.profile_id)
    if before is not None:
        viewings = viewings.filter(last_watched_at__lt=before)
    rows = list(
        viewings.order_by("-last_watched_at").values_list(
            "title_id", "watch_percentage", "last_watched_at", "completed"
        )[:history_limit]
    )
    onboarding = tuple(
        Profile.onboarding_genres.through.objects.filter(profile_id=head.profile_id).values_list("genre_id", flat=True)
    )
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
        history_completed=np.array([r[3] for r in rows], bool),
    )


def _epoch(value: dt.datetime) -> float:
    return value.timestamp()
