"""The business rules this process serves: a RulesSnapshot, reloaded within seconds of any edit, no restart.

Every audited change (ranking.services) publishes a new rules version: the id of the latest RuleChange, written
to the cache (Redis in production) after commit. `RulesCache.current()` compares that version with its
snapshot's at most every RECO_RULES_CHECK_SECONDS and reloads on a difference. The database derives the same
version, so a cleared or unreachable cache still works, and a direct database check every `db_check_seconds`
catches a publish that was lost (e.g. Redis down at commit time).
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Iterable

import numpy as np
from django.conf import settings
from django.core.cache import cache
from django.db.models import Max, Q
from django.utils import timezone

from config.reloading import VersionedSnapshot
from ranking.ml.rules import NO_END, NO_START, TARGET_GENRE, TARGET_ORIGINALS, TARGET_TITLE, RulesSnapshot
from ranking.models import Boost, DiversityPolicy, KidsPolicy, RuleChange, Suppression, TargetKind, TierRule

log = logging.getLogger(__name__)

RULES_VERSION_KEY = "rules:version"
TARGET_CODES = {TargetKind.ORIGINALS: TARGET_ORIGINALS, TargetKind.GENRE: TARGET_GENRE, TargetKind.TITLE: TARGET_TITLE}


def rules_version_from_db() -> str:
    """The rules version as the database knows it: the id of the latest RuleChange ("0" before any)."""
    return str(RuleChange.objects.aggregate(latest=Max("id"))["latest"] or 0)


def rules_version_publish() -> str:
    """Write the database's rules version to the cache; called after a rule change commits."""
    version = rules_version_from_db()
    try:
        cache.set(RULES_VERSION_KEY, version, timeout=None)
    except Exception:  # the periodic database check picks the change up instead
        log.warning("could not publish rules version %s to the cache", version, exc_info=True)
    return version


def rules_version() -> str:
    """The current rules version: from the cache, else from the database (and then cached)."""
    try:
        version = cache.get(RULES_VERSION_KEY)
    except Exception:
        log.warning("rules version unavailable from the cache; asking the database", exc_info=True)
        return rules_version_from_db()
    if version is None:
        version = rules_version_from_db()
        try:
            cache.add(RULES_VERSION_KEY, version, timeout=None)  # add: never overwrites a newer publish
        except Exception:
            log.warning("could not cache the rules version", exc_info=True)
    return str(version)


def _epoch(moment, default: float) -> float:
    return moment.timestamp() if moment is not None else default


def _countries_by_rule(through_rows: Iterable[tuple[int, str]]) -> dict[int, frozenset[str]]:
    codes: dict[int, set[str]] = defaultdict(set)
    for rule_id, code in through_rows:
        codes[rule_id].add(code)
    return {rule_id: frozenset(values) for rule_id, values in codes.items()}


def _target_id(row: dict) -> int:
    return {TargetKind.GENRE: row["genre_id"], TargetKind.TITLE: row["title_id"]}.get(row["target_kind"]) or 0


def rules_snapshot_load() -> RulesSnapshot:
    """Read every active rule (six queries) into a RulesSnapshot; the version is read first, so it never runs ahead."""
    version = rules_version_from_db()
    not_over = Q(is_active=True) & (Q(ends_at__isnull=True) | Q(ends_at__gt=timezone.now()))

    boosts = list(
        Boost.objects.filter(not_over)
        .order_by("id")
        .values("id", "target_kind", "genre_id", "title_id", "multiplier", "starts_at", "ends_at", "priority")
    )
    boost_countries = _countries_by_rule(
        Boost.countries.through.objects.filter(boost_id__in=[b["id"] for b in boosts]).values_list(
            "boost_id", "country__code"
        )
    )
    tier_rules = list(
        TierRule.objects.filter(is_active=True)
        .order_by("id")
        .values("target_kind", "genre_id", "title_id", "allowed_tiers")
    )
    suppressions = list(
        Suppression.objects.filter(not_over).order_by("id").values("id", "title_id", "starts_at", "ends_at")
    )
    suppression_countries = _countries_by_rule(
        Suppression.countries.through.objects.filter(suppression_id__in=[s["id"] for s in suppressions]).values_list(
            "suppression_id", "country__code"
        )
    )
    kids_cap = KidsPolicy.objects.order_by("pk").values_list("maturity_cap", flat=True).first()
    mmr_lambda = DiversityPolicy.objects.order_by("pk").values_list("mmr_lambda", flat=True).first()

    return RulesSnapshot(
        version=version,
        boost_target_kind=np.array([TARGET_CODES[b["target_kind"]] for b in boosts], dtype=np.int64),
        boost_target_id=np.array([_target_id(b) for b in boosts], dtype=np.int64),
        boost_multiplier=np.array([float(b["multiplier"]) for b in boosts], dtype=np.float64),
        boost_starts=np.array([_epoch(b["starts_at"], NO_START) for b in boosts], dtype=np.float64),
        boost_ends=np.array([_epoch(b["ends_at"], NO_END) for b in boosts], dtype=np.float64),
        boost_countries=tuple(boost_countries.get(b["id"], frozenset()) for b in boosts),
        boost_priority=np.array([b["priority"] for b in boosts], dtype=np.int64),
        tier_rule_target_kind=np.array([TARGET_CODES[r["target_kind"]] for r in tier_rules], dtype=np.int64),
        tier_rule_target_id=np.array([_target_id(r) for r in tier_rules], dtype=np.int64),
        tier_rule_tiers=np.array([r["allowed_tiers"] for r in tier_rules], dtype=np.int64),
        suppression_title_id=np.array([s["title_id"] for s in suppressions], dtype=np.int64),
        suppression_starts=np.array([_epoch(s["starts_at"], NO_START) for s in suppressions], dtype=np.float64),
        suppression_ends=np.array([_epoch(s["ends_at"], NO_END) for s in suppressions], dtype=np.float64),
        suppression_countries=tuple(suppression_countries.get(s["id"], frozenset()) for s in suppressions),
        **({"kids_maturity_cap": int(kids_cap)} if kids_cap is not None else {}),
        **({"mmr_lambda": float(mmr_lambda)} if mmr_lambda is not None else {}),
    )


class RulesCache:
    """This process's rules: `current()` returns the snapshot, reloading it when the published version changes."""

    def __init__(self, *, check_seconds: float | None = None, db_check_seconds: float = 60.0) -> None:
        self.check_seconds = settings.RECO_RULES_CHECK_SECONDS if check_seconds is None else check_seconds
        self.db_check_seconds = db_check_seconds
        self._db_checked_at = float("-inf")
        self._rules: VersionedSnapshot[str, RulesSnapshot] = VersionedSnapshot(
            "rules",
            read_version=self._version,
            build=lambda _version, _previous: self._load(),
            version_of=lambda snapshot: snapshot.version,  # read from the database, never ahead of the rules
            check_seconds=lambda: self.check_seconds,
            log=log,
        )

    def current(self) -> RulesSnapshot:
        """The rules to serve. Raises the database's error only when no snapshot was ever loaded."""
        return self._rules.get()

    def refresh(self) -> RulesSnapshot:
        """Reload now, whatever the version says."""
        snapshot = self._rules.refresh()
        self._db_checked_at = time.monotonic()
        return snapshot

    def _version(self) -> str:
        now = time.monotonic()
        if now - self._db_checked_at >= self.db_check_seconds:
            self._db_checked_at = now
            return rules_version_from_db()
        return rules_version()

    @staticmethod
    def _load() -> RulesSnapshot:
        snapshot = rules_snapshot_load()
        log.info("serving rules version %s", snapshot.version)
        try:
            if rules_version() != snapshot.version:
                # A lost publish, or a database restored behind the cache: republish what the database says now.
                rules_version_publish()
        except Exception:  # the new rules serve all the same; the next database check publishes again
            log.exception("could not compare the published rules version with %s", snapshot.version)
        return snapshot


rules_cache = RulesCache()
