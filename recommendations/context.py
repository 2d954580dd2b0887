"""Who is asking: the request context and the profile's entitlements and recent history, read once."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np

from catalog.models import MaturityRating
from users.models import DeviceType, Profile

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


def profile_state_load(
    *, profile_id: int, history_limit: int = HISTORY_LIMIT, before: dt.datetime | None = None
) -> ProfileState:
    """Profile, account and newest viewings in two indexed queries; Profile.DoesNotExist if unknown.

    before: only viewings last watched before this time (ranker training replays a past moment)."""
    profile = (
        Profile.objects.select_related("account")
        .only("id", "is_kids", "maturity_cap", "account__id", "account__country", "account__subscription_tier")
        .get(pk=profile_id)
    )
    viewings = profile.viewing_events.all() if before is None else profile.viewing_events.filter(last_watched_at__lt=before)
    rows = list(
        viewings.order_by("-last_watched_at").values_list(
            "title_id", "watch_percentage", "last_watched_at", "completed"
        )[:history_limit]
    )
    onboarding = tuple(profile.onboarding_genres.values_list("id", flat=True))
    cap = int(profile.maturity_cap)
    if profile.is_kids:
        cap = min(cap, MaturityRating.AGE_7)
    return ProfileState(
        profile_id=profile.pk,
        account_id=profile.account.pk,
        tier=int(profile.account.subscription_tier),
        country=profile.account.country,
        maturity_cap=cap,
        is_kids=profile.is_kids,
        onboarding_genre_ids=onboarding,
        history_title_ids=np.array([r[0] for r in rows], np.int64),
        history_watch_percentage=np.array([r[1] for r in rows], np.float32),
        history_last_watched=np.array([_epoch(r[2]) for r in rows], np.float64),
        history_completed=np.array([r[3] for r in rows], bool),
    )


def _epoch(value: dt.datetime) -> float:
    return value.timestamp()
