"""Business rules on ranked candidates: suppressions, tier rules, the kids maturity cap and boosts (pure numpy).

The Django side (ranking.rules_cache) builds a `RulesSnapshot` from the rule tables; `apply_rules` runs it over one
request's candidates, vectorised over candidates (and over rules where it is cheap).

Semantics, in order:
- keep: the catalog's own availability (tier, country, maturity) AND no active suppression for the country AND
  every tier rule that matches the title lets the profile's tier see it. A kids profile is capped at
  min(its own cap, the kids policy cap).
- boosts: only active boosts (inside their window, for the country) count. If several match one title, only
  those of the highest priority apply, and boosts sharing that priority multiply.
- negative scores: ranker scores (LambdaMART) are log-odds-like, so with `score_scale="log"` (the default) a
  multiplier m adds log(m): the title's odds of being ranked above any other are multiplied by m, whatever the
  sign of its score. With `score_scale="linear"` (non-negative scores such as popularity) scores are multiplied.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, NamedTuple

import numpy as np

from recommendations.ml.catalog import CatalogIndex

TARGET_ORIGINALS, TARGET_GENRE, TARGET_TITLE = 0, 1, 2  # RulesSnapshot.*_target_kind codes
NO_START, NO_END = -np.inf, np.inf  # open window edges, as epoch seconds
DEFAULT_KIDS_MATURITY_CAP = 7
DEFAULT_MMR_LAMBDA = 0.7


def _int64(values: Sequence[int] | np.ndarray = ()) -> np.ndarray:
    return np.asarray(values, dtype=np.int64).reshape(-1)


def _float64(values: Sequence[float] | np.ndarray = ()) -> np.ndarray:
    return np.asarray(values, dtype=np.float64).reshape(-1)


@dataclass(frozen=True, eq=False)
class RulesSnapshot:
    """Every active rule as parallel arrays, one entry per rule. Countries: a frozenset of ISO codes, empty = all.

    boost_target_kind / tier_rule_target_kind: TARGET_* codes; *_target_id: a genre id for TARGET_GENRE, a title
    (content) id for TARGET_TITLE, 0 for TARGET_ORIGINALS. Windows are epoch seconds, half-open [starts, ends).
    tier_rule_tiers: the SubscriptionTier bit mask of tiers allowed to see matching titles.
    """

    version: str = ""
    boost_target_kind: np.ndarray = field(default_factory=_int64)  # int64 (b,)
    boost_target_id: np.ndarray = field(default_factory=_int64)  # int64 (b,)
    boost_multiplier: np.ndarray = field(default_factory=_float64)  # float64 (b,), > 0
    boost_starts: np.ndarray = field(default_factory=_float64)  # float64 (b,), NO_START when open
    boost_ends: np.ndarray = field(default_factory=_float64)  # float64 (b,), NO_END when open
    boost_countries: tuple[frozenset[str], ...] = ()
    boost_priority: np.ndarray = field(default_factory=_int64)  # int64 (b,)
    tier_rule_target_kind: np.ndarray = field(default_factory=_int64)  # int64 (t,)
    tier_rule_target_id: np.ndarray = field(default_factory=_int64)  # int64 (t,)
    tier_rule_tiers: np.ndarray = field(default_factory=_int64)  # int64 (t,) tier bit masks
    suppression_title_id: np.ndarray = field(default_factory=_int64)  # int64 (s,)
    suppression_starts: np.ndarray = field(default_factory=_float64)  # float64 (s,)
    suppression_ends: np.ndarray = field(default_factory=_float64)  # float64 (s,)
    suppression_countries: tuple[frozenset[str], ...] = ()
    kids_maturity_cap: int = DEFAULT_KIDS_MATURITY_CAP
    mmr_lambda: float = DEFAULT_MMR_LAMBDA  # the editors' relevance weight for diversification
    _country_cache: dict[tuple[str, str], np.ndarray] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        boosts = {
            len(self.boost_target_kind),
            len(self.boost_target_id),
            len(self.boost_multiplier),
            len(self.boost_starts),
            len(self.boost_ends),
            len(self.boost_countries),
            len(self.boost_priority),
        }
        tier_rules = {len(self.tier_rule_target_kind), len(self.tier_rule_target_id), len(self.tier_rule_tiers)}
        suppressions = {
            len(self.suppression_title_id),
            len(self.suppression_starts),
            len(self.suppression_ends),
            len(self.suppression_countries),
        }
        for name, lengths in (("boost", boosts), ("tier rule", tier_rules), ("suppression", suppressions)):
            if len(lengths) != 1:
                raise ValueError(f"every {name} array needs one entry per {name}; got lengths {sorted(lengths)}")
        if np.any(self.boost_multiplier <= 0) or not np.all(np.isfinite(self.boost_multiplier)):
            raise ValueError("boost multipliers must be finite and > 0")

    def _for_country(self, kind: str, country: str) -> np.ndarray:
        """bool per rule of `kind` ("boost" / "suppression"): whether it applies in `country` (cached)."""
        key = (kind, country)
        applies = self._country_cache.get(key)
        if applies is None:
            countries = self.boost_countries if kind == "boost" else self.suppression_countries
            applies = np.fromiter((not codes or country in codes for codes in countries), bool, len(countries))
            self._country_cache[key] = applies
        return applies

    def active_boosts(self, *, country: str, now_epoch: float) -> np.ndarray:
        """bool (b,): boosts that apply in `country` at `now_epoch`."""
        in_window = (self.boost_starts <= now_epoch) & (now_epoch < self.boost_ends)
        active: np.ndarray = in_window & self._for_country("boost", country)
        return active

    def active_suppressions(self, *, country: str, now_epoch: float) -> np.ndarray:
        """bool (s,): suppressions in force in `country` at `now_epoch`."""
        in_window = (self.suppression_starts <= now_epoch) & (now_epoch < self.suppression_ends)
        active: np.ndarray = in_window & self._for_country("suppression", country)
        return active

    def next_window_edge(self, now_epoch: float) -> float | None:
        """The next moment a window opens or closes (epoch seconds), or None: cached answers expire by then."""
        edges = np.concatenate([self.boost_starts, self.boost_ends, self.suppression_starts, self.suppression_ends])
        later = edges[np.isfinite(edges) & (edges > now_epoch)]
        return float(later.min()) if len(later) else None


class RulesResult(NamedTuple):
    scores: np.ndarray  # float32 (n,): scores after boosts (dropped candidates keep theirs; use `keep`)
    keep: np.ndarray  # bool (n,): the candidate may be shown
    boosted: np.ndarray  # bool (n,): a boost changed the score


def _target_matches(
    catalog: CatalogIndex, rows: np.ndarray, target_kind: np.ndarray, target_id: np.ndarray
) -> np.ndarray:
    """bool (rules, candidates): which candidate rows each rule targets."""
    matches = np.zeros((len(target_kind), len(rows)), dtype=bool)
    if not len(target_kind) or not len(rows):
        return matches
    originals = target_kind == TARGET_ORIGINALS
    matches[originals] = catalog.is_original[rows]
    genres = target_kind == TARGET_GENRE
    if genres.any():
        genre_ids = target_id[genres]
        slots = np.minimum(np.searchsorted(catalog.genre_ids, genre_ids), max(len(catalog.genre_ids) - 1, 0))
        known = catalog.genre_ids[slots] == genre_ids if len(catalog.genre_ids) else np.zeros(len(genre_ids), bool)
        bits = np.where(known, np.left_shift(np.uint32(1), slots.astype(np.uint32)), np.uint32(0)).astype(np.uint32)
        matches[genres] = (catalog.genre_masks[rows][None, :] & bits[:, None]) != 0
    titles = target_kind == TARGET_TITLE
    if titles.any():
        matches[titles] = catalog.content_ids[rows][None, :] == target_id[titles][:, None]
    return matches


def apply_rules(
    snapshot: RulesSnapshot,
    catalog: CatalogIndex,
    rows: np.ndarray,
    scores: np.ndarray,
    *,
    country: str,
    tier: int,
    is_kids: bool,
    maturity_cap: int,
    now_epoch: float,
    score_scale: Literal["log", "linear"] = "log",
) -> RulesResult:
    """Apply the rules to candidates: (scores float32 (n,), keep bool (n,), boosted bool (n,)).

    rows: int (n,) catalog rows of the candidates; scores: float (n,) their ranker scores. The module docstring
    gives the semantics.
    """
    rows = np.asarray(rows, dtype=np.int64).reshape(-1)
    scores = np.asarray(scores, dtype=np.float32).reshape(-1)
    if len(rows) != len(scores):
        raise ValueError(f"rows and scores need the same length; got {len(rows)} and {len(scores)}")
    if score_scale not in ("log", "linear"):
        raise ValueError(f"score_scale must be 'log' or 'linear', not {score_scale!r}")
    if score_scale == "linear" and np.any(scores < 0):
        raise ValueError("linear score_scale needs non-negative scores; use 'log' for ranker scores")

    cap = min(int(maturity_cap), snapshot.kids_maturity_cap) if is_kids else int(maturity_cap)
    keep = catalog.allowed(tier=tier, country=country, maturity_cap=cap)[rows].copy()

    suppressed = snapshot.active_suppressions(country=country, now_epoch=now_epoch)
    if suppressed.any():
        keep &= ~np.isin(catalog.content_ids[rows], snapshot.suppression_title_id[suppressed])

    if len(snapshot.tier_rule_tiers):
        matches = _target_matches(catalog, rows, snapshot.tier_rule_target_kind, snapshot.tier_rule_target_id)
        tier_denied = (snapshot.tier_rule_tiers & (1 << (int(tier) - 1))) == 0
        keep &= ~(matches & tier_denied[:, None]).any(axis=0)

    log_boost = np.zeros(len(rows), dtype=np.float64)
    active = snapshot.active_boosts(country=country, now_epoch=now_epoch)
    if active.any():
        matches = _target_matches(catalog, rows, snapshot.boost_target_kind[active], snapshot.boost_target_id[active])
        priority = snapshot.boost_priority[active]
        top_priority = np.where(matches, priority[:, None], np.iinfo(np.int64).min).max(axis=0)
        winners = matches & (priority[:, None] == top_priority[None, :])
        log_boost = (winners * np.log(snapshot.boost_multiplier[active])[:, None]).sum(axis=0)
    boosted = log_boost != 0
    boosted_scores: np.ndarray
    if score_scale == "log":
        boosted_scores = scores + log_boost
    else:
        boosted_scores = scores * np.exp(log_boost)
    return RulesResult(boosted_scores.astype(np.float32), keep, boosted)
