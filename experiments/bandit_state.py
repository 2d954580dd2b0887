"""The exploration bandit's state: loading it (cached in-process), logging its picks, folding rewards from events.

The request path calls `bandit_load()` and, after choosing, `exploration_log(...)` with what the policy saw.
The update job calls `bandit_update_from_events()`: it reads impression events of policy "bandit" past the
state's cursor (`last_event_id`), takes their context and item features from the exploration log (so features
are never recomputed), scores each with the engagement of that request and title (0.1·click + 0.3·play +
0.6·complete, nested as in experiments.selectors), folds them into the policy and moves the cursor, in one
transaction: running it twice folds nothing twice. Impressions are folded once they are `settle` old, so that
most of their plays and completions have arrived; outcomes arriving later are not counted.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from django.conf import settings
from django.db import transaction
from django.db.models import Case, IntegerField, Max, Q, When
from django.utils import timezone

from config.reloading import VersionedSnapshot
from events.models import Event, EventType
from experiments.ml.metrics import engagement_score
from experiments.models import BanditState, ExplorationLog
from experiments.selectors import COMPLETION_SHARE
from ranking.ml.bandit import BanditPolicy, LinUCBSoftmax, policy_from_bytes, policy_to_bytes

log = logging.getLogger(__name__)

BANDIT_HOMEPAGE = "homepage"  # the homepage's exploration slots
BANDIT_POLICY = "bandit"  # events.Event.policy of the impressions the bandit chose
REWARD_SETTLE = dt.timedelta(hours=3)  # a film's completion arrives within about two hours of its impression
UPDATE_BATCH = 20_000  # impressions per fold; ~1 s of queries each
LOOKUP_CHUNK = 900  # request ids per IN (...) list (SQLite's old variable limit is 999)


def bandit_policy_new() -> BanditPolicy:
    """The policy a bandit starts from (ranking.ml.bandit defaults, tuned in bench/bandit_sim.py)."""
    return LinUCBSoftmax()


# --- loading, cached per process ----------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class LoadedBandit:
    """A bandit's policy as of `version` (0: nothing learned yet); treat the policy as read-only."""

    name: str
    version: int
    policy: BanditPolicy


class BanditCache:
    """Each bandit's policy in this process; at most every `check_seconds` (RECO_EXPERIMENTS_CHECK_SECONDS when
    None) one indexed query compares the stored version, and only a new version reloads the arrays."""

    def __init__(self, *, check_seconds: float | None = None) -> None:
        self._check_seconds = check_seconds
        self._bandits: dict[str, VersionedSnapshot[int, LoadedBandit]] = {}
        self._lock = threading.Lock()  # adding a bandit only

    @property
    def check_seconds(self) -> float:
        return settings.RECO_EXPERIMENTS_CHECK_SECONDS if self._check_seconds is None else self._check_seconds

    def get(self, name: str) -> LoadedBandit:
        bandit = self._bandits.get(name)
        if bandit is None:
            with self._lock:
                bandit = self._bandits.get(name) or self._bandits.setdefault(name, self._snapshot(name))
        return bandit.get()

    def clear(self) -> None:
        with self._lock:
            self._bandits = {}

    def _snapshot(self, name: str) -> VersionedSnapshot[int, LoadedBandit]:
        return VersionedSnapshot(
            f"bandit {name}",
            read_version=lambda: _stored_version(name),
            build=lambda _version, _previous: _bandit_read(name),
            version_of=lambda loaded: loaded.version,  # the row read, perhaps newer than the version checked
            check_seconds=lambda: self.check_seconds,
            log=log,
        )


def _stored_version(name: str) -> int:
    """The stored policy's version, 0 when none is stored (a fresh policy is version 0 too)."""
    return BanditState.objects.filter(name=name).values_list("version", flat=True).first() or 0


def _bandit_read(name: str) -> LoadedBandit:
    state = BanditState.objects.filter(name=name).values_list("version", "arrays").first()
    if state is None:
        return LoadedBandit(name, 0, bandit_policy_new())
    log.info("bandit %s: loaded version %s", name, state[0])
    return LoadedBandit(name, int(state[0]), policy_from_bytes(bytes(state[1])))


bandit_cache = BanditCache()


def bandit_load(name: str = BANDIT_HOMEPAGE) -> LoadedBandit:
    """The bandit's current policy and version, from this process's cache (a fresh policy if none is stored)."""
    return bandit_cache.get(name)


# --- the exploration log ----------------------------------------------------------------------------
def exploration_log(
    *,
    request_id: str,
    profile_id: int,
    bandit: LoadedBandit,
    title_ids: Sequence[int],
    positions: Sequence[int],
    propensities: np.ndarray,
    context: np.ndarray,
    item_features: np.ndarray,
    candidate_count: int,
    created_at: dt.datetime | None = None,
) -> int:
    """Record the bandit's picks for one response, in slot order; returns how many picks it was given.

    title_ids, positions (1-based on the page) and propensities: (k,) as `select` returned them; context:
    (CONTEXT_WIDTH,); item_features: (k, ITEM_WIDTH), the rows of the chosen titles; candidate_count: m, how
    many the policy chose from (a uniform target's propensity at slot j is 1 / (m - j)). A (request_id, title)
    already logged is skipped, so logging a response twice is harmless. One INSERT.
    """
    k = len(title_ids)
    items = np.asarray(item_features, dtype=np.float32).reshape(k, -1)
    propensities = np.asarray(propensities, dtype=np.float64).reshape(-1)
    if len(positions) != k or len(propensities) != k:
        raise ValueError(f"{k} titles, {len(positions)} positions and {len(propensities)} propensities")
    if k == 0:
        return 0
    context_bytes = np.asarray(context, dtype=np.float32).tobytes()
    created_at = created_at or timezone.now()
    rows = [
        ExplorationLog(
            request_id=request_id,
            title_id=int(title_id),
            profile_id=int(profile_id),
            bandit=bandit.name,
            bandit_version=bandit.version,
            slot=slot,
            position=int(position),
            propensity=float(propensity),
            candidate_count=int(candidate_count),
            context=context_bytes,
            item_features=items[slot].tobytes(),
            created_at=created_at,
        )
        for slot, (title_id, position, propensity) in enumerate(zip(title_ids, positions, propensities, strict=True))
    ]
    ExplorationLog.objects.bulk_create(rows, ignore_conflicts=True)
    return k


def exploration_logs_prune(*, older_than: dt.datetime) -> int:
    """Delete log rows created before `older_than` (folded long ago); returns how many."""
    deleted, _ = ExplorationLog.objects.filter(created_at__lt=older_than).delete()
    return deleted


# --- folding rewards --------------------------------------------------------------------------------
@dataclass(frozen=True)
class BanditUpdate:
    name: str
    folded: int  # impressions folded into the policy by this call
    reward_sum: float
    last_event_id: int
    version: int


def _state_for_update(name: str) -> BanditState:
    policy = bandit_policy_new()
    BanditState.objects.get_or_create(
        name=name, defaults={"arrays": policy_to_bytes(policy), "policy_kind": policy.kind, "version": 0}
    )
    return BanditState.objects.select_for_update().get(name=name)


def _settled_before(cursor: int, cutoff: dt.datetime) -> int | None:
    """The id of the first event after `cursor` received at or after `cutoff`: events before it are settled."""
    return (
        Event.objects.filter(id__gt=cursor, received_at__gte=cutoff).order_by("id").values_list("id", flat=True).first()
    )


def _rewards(pairs: dict[tuple[str, int], int], request_ids: list[str]) -> np.ndarray:
    """Engagement of each (request_id, title) in `pairs` (value: its row), 0 without outcomes."""
    completed = Q(type=EventType.COMPLETE) | Q(watch_percentage__gte=COMPLETION_SHARE)
    played = Q(type__in=[EventType.PLAY, EventType.PROGRESS]) | completed
    clicked = Q(type=EventType.CLICK) | played

    def flag(condition: Q) -> Max:
        return Max(Case(When(condition, then=1), default=0, output_field=IntegerField()))

    flags = np.zeros((len(pairs), 3))
    for start in range(0, len(request_ids), LOOKUP_CHUNK):
        outcomes = (
            Event.objects.filter(request_id__in=request_ids[start : start + LOOKUP_CHUNK])
            .exclude(request_id="")  # lets PostgreSQL use the partial request_id index
            .exclude(type=EventType.IMPRESSION)
            .values("request_id", "title_id")
            .annotate(clicked=flag(clicked), played=flag(played), completed=flag(completed))
        )
        for row in outcomes:
            at = pairs.get((row["request_id"], row["title_id"]))
            if at is not None:
                flags[at] = (row["clicked"], row["played"], row["completed"])
    return engagement_score(flags[:, 0], flags[:, 1], flags[:, 2])


def _logged(pairs: dict[tuple[str, int], int], request_ids: list[str], name: str) -> tuple[np.ndarray, ...]:
    """Context and item features of each pair from the exploration log; `found` marks the pairs it has."""
    found = np.zeros(len(pairs), bool)
    contexts: list[bytes] = [b""] * len(pairs)
    items: list[bytes] = [b""] * len(pairs)
    for start in range(0, len(request_ids), LOOKUP_CHUNK):
        logged = ExplorationLog.objects.filter(request_id__in=request_ids[start : start + LOOKUP_CHUNK], bandit=name)
        for request_id, title_id, context, item in logged.values_list(
            "request_id", "title_id", "context", "item_features"
        ):
            at = pairs.get((request_id, title_id))
            if at is not None:
                found[at], contexts[at], items[at] = True, bytes(context), bytes(item)
    if not found.any():
        return found, np.empty((0, 0)), np.empty((0, 0))
    context_matrix = np.frombuffer(b"".join(c for c, f in zip(contexts, found, strict=True) if f), np.float32)
    item_matrix = np.frombuffer(b"".join(i for i, f in zip(items, found, strict=True) if f), np.float32)
    count = int(found.sum())
    return (
        found,
        context_matrix.reshape(count, -1).astype(np.float64),
        item_matrix.reshape(count, -1).astype(np.float64),
    )


def bandit_update_from_events(
    since_id: int | None = None,
    *,
    name: str = BANDIT_HOMEPAGE,
    settle: dt.timedelta = REWARD_SETTLE,
    batch_size: int = UPDATE_BATCH,
    now: dt.datetime | None = None,
) -> BanditUpdate:
    """Fold one batch of settled bandit impressions after the state's cursor (or after `since_id` when that
    is later) into the policy; returns what it folded. Call again while `folded` > 0 to catch up."""
    cutoff = (now or timezone.now()) - settle
    with transaction.atomic():
        state = _state_for_update(name)
        cursor = max(state.last_event_id, since_id or 0)
        boundary = _settled_before(cursor, cutoff)
        impressions = Event.objects.filter(id__gt=cursor, type=EventType.IMPRESSION, policy=BANDIT_POLICY)
        if boundary is not None:
            impressions = impressions.filter(id__lt=boundary)
        rows = list(
            impressions.exclude(request_id="").order_by("id").values_list("id", "request_id", "title_id")[:batch_size]
        )
        if len(rows) < batch_size and boundary is not None:
            # Everything settled is read: skip the other events up to the first unsettled one (received
            # `settle` ago, so no transaction still writing an earlier id).
            new_cursor = boundary - 1
        else:
            new_cursor = rows[-1][0] if rows else cursor
        new_cursor = max(new_cursor, cursor)

        pairs: dict[tuple[str, int], int] = {}
        for _, request_id, title_id in rows:
            pairs.setdefault((request_id, title_id), len(pairs))  # the same title shown twice counts once
        request_ids = sorted({request_id for request_id, _ in pairs})
        found, contexts, items = _logged(pairs, request_ids, name)
        rewards = _rewards(pairs, request_ids)[found] if found.any() else np.empty(0)

        policy = policy_from_bytes(bytes(state.arrays))
        if len(rewards):
            policy.update(contexts, items, rewards)
        state.last_event_id = new_cursor
        if len(rewards):
            state.arrays = policy_to_bytes(policy)
            state.version += 1
            state.impressions_seen = policy.impressions_seen
            state.reward_sum = policy.reward_sum
        state.save()
    if len(pairs) > len(rewards):
        log.info("bandit %s: %d impressions had no exploration log row", name, len(pairs) - len(rewards))
    return BanditUpdate(name, len(rewards), float(rewards.sum()), new_cursor, state.version)
