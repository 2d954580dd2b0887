"""The request path: profile → response cache → candidates → features → ranking → rules → MMR → rows.

`RecommendationEngine().recommend(user_id, context=UserContext(...), n=20)` is the design's entry point;
the API is a thin layer over it. Every dependency failure (Redis, a missing or corrupt model, no ranker)
falls back to a simpler path and is named in `degraded`; nothing on this path raises for it.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from config.observability import metrics
from features.store import FeatureStore
from ranking.ml import postprocess
from ranking.ml.calibration import calibrated_order
from ranking.ml.context_policy import context_multipliers, context_tilt
from ranking.ml.diversify import diversify_titles
from ranking.ml.features import assemble
from ranking.ml.rules import apply_rules
from ranking.rules_cache import rules_cache
from recommendations.ml import sources
from recommendations.ml.candidates import MergedCandidates, merge_candidates
from recommendations.models import ModelKind
from recommendations.registry import registry
from recommendations.serving.candidate_inputs import CandidateSet, candidates_generate
from recommendations.serving.context import (
    ProfileHead,
    ProfileState,
    UserContext,
    completed_titles,
    profile_head_load,
    profile_state_load,
)
from recommendations.serving.ranking_input import blend_sources, ranking_input_build, user_vector_of
from recommendations.serving.state import ServingModels, serving_state
from recommendations.serving.taste_arm import TASTE, taste_candidates
from users.models import Profile

log = logging.getLogger(__name__)

CACHE_PREFIX = "recs:v5"  # bump when the cached answers change shape or content (v5: the JSON body's bytes)
MAX_N = 100
STAGES = ("profile", "models", "cache", "candidates", "features", "ranking", "rules", "diversification", "postprocess")
SECONDS_PER_DAY = 86_400
EXPLORATION_POOL = 100  # the bandit picks among the candidates ranked just below the shown ones
# Degradations the cache key already covers (it holds the model versions): an answer flagged only with these is
# as good as it gets until a model is activated, so it is cached; any other flag is a passing fault.
CACHEABLE_DEGRADATIONS = frozenset({"no_ranker", "no_collaborative_model", "no_content_model"})


class ProfileNotFound(LookupError):
    pass


def _feature_gaps(read, *, has_history: bool) -> list[str]:
    """What the feature read lacked: the store itself, or the entries (an emptied Redis, a refresh not run)."""
    if read.user.store_unavailable:
        return ["feature_store_unavailable"]
    gaps = []
    if has_history and read.user.computed_at is None:
        gaps.append("user_features_missing")  # a profile with history always has features once refreshed
    if len(read.content.found) and not read.content.found.any():
        gaps.append("content_features_missing")
    return gaps


@dataclass(frozen=True)
class Variant:
    """How one request is served. Experiment arms and the staff preview's toggles set these."""

    experiment: str = ""
    arm: str = ""
    ranker: bool = True  # False: order by the candidates' source ranks
    ranker_version: str = ""  # "": the active ranker; else that registered version
    mmr_lambda: float | None = None  # None: the editors' diversity policy
    diversify: bool = True
    rules: bool = True
    bandit: bool = False
    popularity_only: bool = False  # the non-personalised baseline: popular allowed titles, by popularity
    oracle: bool = False  # simulations' ceiling: allowed titles ordered by the engine's oracle_scorer (true affinity)
    calibration: float = 0.0  # Steck's λ (0: off): the top n's genre mix moves towards the viewer's watch time
    taste: bool = False  # candidates and scores from the genre-taste model (recommendations.serving.taste_arm)
    taste_explore: float = 1.0  # weight of a Thompson draw of each title's attractiveness (0: the taste score alone)


DEFAULT_VARIANT = Variant()


@dataclass(frozen=True)
class RankedItem:
    rank: int
    content_id: int
    title: str
    score: float
    reason: str
    sources: tuple[str, ...]
    policy: str = "ranker"  # what placed it: ranker, popularity, bandit
    propensity: float = 1.0  # the probability it was shown at this position (1 for deterministic picks)


@dataclass(frozen=True)
class Row:
    key: str
    title: str
    items: tuple[RankedItem, ...]


@dataclass
class Recommendations:
    request_id: str
    profile_id: int
    items: list[RankedItem]
    rows: list[Row]
    model_versions: dict[str, str]
    rules_version: str
    degraded: list[str] = field(default_factory=list)
    timings_ms: dict[str, float] = field(default_factory=dict)
    cached: bool = False
    experiment: str = ""
    arm: str = ""
    explanations: dict[int, dict[str, Any]] | None = None  # by content id, when asked to explain

    def __iter__(self) -> Iterator[RankedItem]:
        """The top-n items in rank order (the design iterates the answer: `for rec in recs`)."""
        return iter(self.items)

    def to_dict(self) -> dict[str, Any]:
        """What dataclasses.asdict gives, built directly (asdict deep-copies: 0.9 ms for a homepage)."""
        body = {name: getattr(self, name) for name in self.__dataclass_fields__}
        body["items"] = [dict(item.__dict__) for item in self.items]
        body["rows"] = [
            {"key": row.key, "title": row.title, "items": tuple(dict(item.__dict__) for item in row.items)}
            for row in self.rows
        ]
        body["model_versions"], body["degraded"] = dict(self.model_versions), list(self.degraded)
        body["timings_ms"] = dict(self.timings_ms)
        if self.explanations is not None:
            body["explanations"] = copy.deepcopy(self.explanations)
        return body


@dataclass
class RenderedRecommendations:
    """An answer as GET /api/recs sends it: the JSON body, and what its headers and metrics read."""

    body: bytes  # UTF-8 JSON: Recommendations.to_dict() without timings_ms and explanations
    request_id: str
    cached: bool
    degraded: list[str]
    timings_ms: dict[str, float]


# The body's fields that a cached answer shares with the miss that stored it (request_id and cached differ).
_SHARED_FIELDS = ("profile_id", "items", "rows", "model_versions", "rules_version", "degraded", "experiment", "arm")


def response_body(result: Recommendations) -> bytes:
    """The shared fields as JSON bytes, rendered as DRF's JSONRenderer does (UTF-8, compact, no NaN)."""
    body = {name: getattr(result, name) for name in _SHARED_FIELDS}
    body["items"] = [item.__dict__ for item in result.items]
    body["rows"] = [{"key": r.key, "title": r.title, "items": [i.__dict__ for i in r.items]} for r in result.rows]
    text = json.dumps(body, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029").encode()


def _with_request(body: bytes, request_id: str, *, cached: bool) -> bytes:
    """The whole body: this answer's request_id and cached flag, then the shared fields."""
    head = f'{{"request_id":{json.dumps(request_id)},"cached":{"true" if cached else "false"},'
    return head.encode() + body[1:]


def _from_body(body: bytes, request_id: str) -> Recommendations:
    """A cached answer as the object `recommend` returns (lists back to the tuples they were)."""
    data = json.loads(body)

    def ranked(item: dict[str, Any]) -> RankedItem:
        item["sources"] = tuple(item["sources"])
        return _ranked_item(*map(item.__getitem__, _ITEM_FIELDS))

    items = [ranked(item) for item in data["items"]]
    rows = [Row(row["key"], row["title"], tuple(ranked(i) for i in row["items"])) for row in data["rows"]]
    return Recommendations(
        request_id,
        data["profile_id"],
        items,
        rows,
        data["model_versions"],
        data["rules_version"],
        data["degraded"],
        cached=True,
        experiment=data["experiment"],
        arm=data["arm"],
    )


_ITEM_FIELDS = tuple(RankedItem.__dataclass_fields__)


def _ranked_item(*values: Any) -> RankedItem:
    """RankedItem(*values) without the frozen dataclass's __init__ (one object.__setattr__ per field): a page
    builds ~200 of them. The same object: equal, hashable, frozen."""
    made = object.__new__(RankedItem)
    made.__dict__.update(zip(_ITEM_FIELDS, values, strict=True))
    return made


class _Clock:
    def __init__(self) -> None:
        self.timings: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.timings[stage] = round(self.timings.get(stage, 0.0) + (now - self._last) * 1000, 3)
        self._last = now


class RecommendationEngine:
    def __init__(
        self,
        *,
        store: FeatureStore | None = None,
        use_cache: bool | None = None,
        variant_for: Callable[[int], Variant | None] | None = None,
        bandit_for: Callable[[], Any] | None = None,
        exploration_logger: Callable[..., Any] | None = None,
        oracle_scorer: Callable[[int, np.ndarray], np.ndarray] | None = None,
    ) -> None:
        """use_cache: None follows RECO_RESPONSE_CACHE_SECONDS (0 turns the response cache off);
        variant_for: profile id -> its experiment arm's Variant (None: no experiments);
        oracle_scorer: (profile id, title ids) -> scores, for Variant(oracle=True) (a simulation's ground truth)."""
        self.store = store or FeatureStore()
        self._use_cache = use_cache
        self.variant_for = variant_for
        self.bandit_for = bandit_for or _homepage_bandit
        self.exploration_logger = exploration_logger or _exploration_log
        self.oracle_scorer = oracle_scorer

    @property
    def use_cache(self) -> bool:
        return settings.RECO_RESPONSE_CACHE_SECONDS > 0 if self._use_cache is None else self._use_cache

    # --- the design's API ------------------------------------------------------------------------
    def recommend(
        self,
        user_id: int | None = None,
        context: UserContext | None = None,
        n: int = 20,
        *,
        with_rows: bool = True,
        variant: Variant | None = None,
        explain: bool = False,
        request_id: str | None = None,
    ) -> Recommendations:
        """Top-n for a profile. `context.profile_id` names it (else `user_id` is taken as the profile id);
        a `context.user_id` must own the profile. ProfileNotFound if it does not exist (or is not theirs).

        variant: how to serve (default: the profile's experiment arm, if any, else the standard path);
        explain: attach per-item explanations (sources, ranker score, top features, rules) and skip the cache;
        request_id: the answer's id (default: a new one), e.g. the HTTP request's."""
        return self._serve(user_id, context, n, with_rows, variant, explain, request_id, rendered=False)

    def recommend_json(
        self, context: UserContext, n: int = 20, *, with_rows: bool = True, request_id: str | None = None
    ) -> RenderedRecommendations:
        """What GET /api/recs sends: `recommend`'s answer as its JSON body. A cache hit is the stored bytes with
        this request's id spliced in, no object built."""
        return self._serve(None, context, n, with_rows, None, False, request_id, rendered=True)

    def _serve(self, user_id, context, n, with_rows, variant, explain, request_id, *, rendered: bool):
        context = context or UserContext(profile_id=user_id)
        profile_id = context.profile_id if context.profile_id is not None else user_id
        if profile_id is None:
            raise ValueError("name a profile: context.profile_id or user_id")
        if not 1 <= n <= MAX_N:
            raise ValueError(f"n must be 1..{MAX_N}")
        clock = _Clock()
        request_id = request_id or uuid.uuid4().hex
        degraded: list[str] = []
        try:
            head = profile_head_load(profile_id=int(profile_id))
        except Profile.DoesNotExist:
            raise ProfileNotFound(f"profile {profile_id} does not exist") from None
        if context.user_id is not None and context.user_id != head.account_id:
            raise ProfileNotFound(f"profile {profile_id} does not belong to account {context.user_id}")
        if context.country and context.country != head.country:
            head = replace(head, country=context.country)  # where the viewer is decides country availability
        clock.lap("profile")
        models = serving_state.models()  # a process's first request may load them (seconds): a stage of its own
        clock.lap("models")

        if variant is None:
            variant = self._assigned_variant(head.profile_id, degraded)
        rules = rules_cache.current()
        key = self._cache_key(head, context, n, with_rows, models, rules.version, variant)
        fresh = explain or variant.bandit  # a bandit response logs its own picks: never served from the cache
        cached = None if fresh else self._cache_get(key, degraded)
        clock.lap("cache")
        if cached is not None:
            cached_degraded, body = cached
            hit: Recommendations | RenderedRecommendations
            if rendered:
                body = _with_request(body, request_id, cached=True)
                hit = RenderedRecommendations(body, request_id, True, list(cached_degraded), clock.timings)
            else:
                hit = _from_body(body, request_id)
                hit.timings_ms = clock.timings
            metrics.recommendation_observe(clock.timings, cache_state="hit", degraded=list(cached_degraded))
            metrics.models_served(models)
            return hit
        # Seeds and reasons come only from titles the profile may see: the items' maturity filter, on its history.
        state = profile_state_load(profile_id=head.profile_id, head=head).within_maturity_cap(models.catalog)
        clock.lap("profile")

        now = timezone.now()
        trending = serving_state.trending(models, self.store)
        if variant.oracle:
            candidates = _oracle_candidates(state, models, self.oracle_scorer)
        elif variant.popularity_only:
            candidates = _popular_candidates(state, models, trending)
        else:
            tasted = taste_candidates(state, models, explore=variant.taste_explore) if variant.taste else None
            candidates = tasted or candidates_generate(state, models, trending, now=now)
        degraded += list(candidates.degraded)
        clock.lap("candidates")

        read = self.store.get_request_features(state.profile_id, candidates.content_ids)
        degraded += _feature_gaps(read, has_history=state.has_history)
        _observe_inputs(candidates, read, models)
        clock.lap("features")

        features = None
        if variant.popularity_only or variant.oracle or candidates.merged.sources == (TASTE,):
            scores = candidates.merged.scores[:, 0].copy()
        elif variant.ranker:
            scores, features = self._rank(state, context, candidates, models, read, now, degraded, variant)
        else:
            scores = blend_sources(candidates.merged)
        clock.lap("ranking")

        rows = candidates.rows
        if variant.rules:
            ruled = apply_rules(
                rules,
                models.catalog,
                rows,
                scores,
                country=state.country,
                tier=state.tier,
                is_kids=state.is_kids,
                maturity_cap=state.maturity_cap,
                now_epoch=now.timestamp(),
            )
            final, keep, boosted = ruled.scores, ruled.keep, ruled.boosted
        else:  # the preview's "without rules": entitlements still apply (the sources only propose allowed titles)
            final, keep, boosted = scores, np.ones(len(rows), bool), np.zeros(len(rows), bool)
        keep = keep & ~_completed(state, candidates)
        if not (variant.popularity_only or variant.oracle):  # the screen and the hour (the ranker learns neither)
            hour = context.time_of_day if context.time_of_day is not None else now.hour
            tilt = context_multipliers(models.catalog, rows, device_type=int(context.device_type), hour=int(hour))
            final = context_tilt(final, tilt, log_scale=features is not None)
        clock.lap("rules")

        if variant.diversify and not (variant.popularity_only or variant.oracle):
            lam = rules.mmr_lambda if variant.mmr_lambda is None else variant.mmr_lambda
            order = self._diversify(state, candidates, models, final, keep, now, lam, n)
        else:
            positions = np.flatnonzero(keep)
            order = positions[np.argsort(-final[positions], kind="stable")]
        clock.lap("diversification")

        if variant.calibration and not (variant.popularity_only or variant.oracle):
            order = _calibrated(order, final, candidates, models, read, n, variant.calibration)
        policy = "oracle" if variant.oracle else "popularity" if variant.popularity_only else "ranker"
        explored: dict[int, float] = {}
        if variant.bandit and not (variant.popularity_only or variant.oracle):
            order, explored = self._explore(
                request_id, state, context, candidates, models, read, final, order, n, now, degraded
            )
        result = self._page(request_id, state, candidates, models, final, keep, order, n, with_rows, policy, explored)
        result.model_versions = models.versions
        result.rules_version = rules.version
        result.experiment, result.arm = variant.experiment, variant.arm
        if explain:
            result.explanations = self._explain(result, candidates, models, scores, final, keep, boosted, features)
        result.degraded = sorted(set(degraded))
        clock.lap("postprocess")
        body = None
        if not fresh and self.use_cache and CACHEABLE_DEGRADATIONS.issuperset(degraded):
            body = response_body(result)  # rendered once: the cached bytes are the response's
            self._cache_set(key, (tuple(result.degraded), body))
        result.timings_ms = clock.timings
        cache_state = "miss" if self.use_cache and not fresh else "off"
        metrics.recommendation_observe(clock.timings, cache_state=cache_state, degraded=result.degraded)
        if rendered:
            body = _with_request(body or response_body(result), request_id, cached=False)
            return RenderedRecommendations(body, request_id, False, result.degraded, clock.timings)
        return result

    # --- stages ----------------------------------------------------------------------------------
    def _rank(self, state, context, candidates: CandidateSet, models: ServingModels, read, now, degraded, variant):
        """(scores, the feature matrix or None): the ranker's, else the source-rank blend (flagged)."""
        ranker = models.get(ModelKind.RANKER)
        if variant.ranker_version and (ranker is None or ranker.version != variant.ranker_version):
            ranker = registry.get_version(ModelKind.RANKER, variant.ranker_version)  # an arm's own ranker
            if ranker is None:
                degraded.append("arm_ranker_unavailable")
                ranker = models.get(ModelKind.RANKER)
        if ranker is None:
            degraded.append("no_ranker")
            return blend_sources(candidates.merged), None
        hour = context.time_of_day if context.time_of_day is not None else now.hour
        ranking_input = ranking_input_build(
            state=state,
            candidates=candidates,
            models=models,
            user=user_vector_of(read.user),
            content=np.asarray(read.content.values, np.float32),
            hour=int(hour),
            device_type=int(context.device_type),
            now=now,
        )
        try:
            features = assemble(ranking_input)
            return np.asarray(ranker.model.predict(features), np.float32), features
        except Exception:
            log.exception("ranker %s failed; ranking by source scores", ranker.version)
            degraded.append("ranker_failed")
            return blend_sources(candidates.merged), None

    def _assigned_variant(self, profile_id: int, degraded: list[str]) -> Variant:
        """The profile's experiment arm as a Variant; the standard path when none runs (or lookup fails)."""
        if self.variant_for is None:
            return DEFAULT_VARIANT
        try:
            return self.variant_for(profile_id) or DEFAULT_VARIANT
        except Exception:
            log.warning("experiment assignment failed; serving the standard path", exc_info=True)
            degraded.append("experiment_assignment_failed")
            return DEFAULT_VARIANT

    def _diversify(self, state, candidates, models, scores, keep, now, lam: float, n: int) -> np.ndarray:
        positions = np.flatnonzero(keep)
        if not len(positions):
            return positions
        pool = positions[np.argsort(-scores[positions], kind="stable")][: max(n * 5, 100)]
        mf = models.get(ModelKind.MATRIX_FACTORIZATION)
        factors = None
        if mf is not None:
            items = mf.alignment.items[candidates.rows[pool]]
            if (items >= 0).all():
                factors = np.asarray(mf.model.item_factors[items], np.float32)
        picked = diversify_titles(
            models.catalog,
            candidates.rows[pool],
            scores[pool],
            k=min(len(pool), max(n, 40)),
            today_days=int(now.timestamp() // SECONDS_PER_DAY),
            usual_genres=int(candidates.favourite_genres),
            item_factors=factors,
            lam=lam,
        )
        rest = np.setdiff1d(pool, pool[picked], assume_unique=True)
        rest = rest[np.argsort(-scores[rest], kind="stable")]
        return np.concatenate([pool[picked], rest])

    def _page(
        self, request_id, state, candidates, models, scores, keep, order, n, with_rows, policy, explored
    ) -> Recommendations:
        catalog = models.catalog
        merged = candidates.merged
        flag = {
            name: merged.proposed[:, merged.sources.index(name)]
            if name in merged.sources
            else np.zeros(len(merged), bool)
            for name in sources.SOURCES
        }
        because = np.full(len(merged), -1, np.int64)
        content = models.get(ModelKind.CONTENT)
        show = order[: max(n, 200) if with_rows else n]
        if with_rows:  # Continue Watching holds every title in progress, wherever the ranking and the context put it
            resumable = np.flatnonzero(keep & flag[sources.CONTINUE_WATCHING])
            resumable = resumable[~np.isin(resumable, show)]
            show = np.concatenate([show, resumable[np.argsort(-scores[resumable], kind="stable")]])
        if content is not None and len(candidates.history_rows) and len(show):
            similar = show[flag[sources.SIMILAR_TO_WATCHED][show]]
            anchors, _ = sources.because_watched(
                content.model.similarity, content.alignment, candidates.history_rows[:50], candidates.rows[similar]
            )
            because[similar] = anchors
        # Only anchors within the cap may be named (the history is already filtered; postprocess shows no other).
        names = {
            int(r): str(catalog.names[r])
            for r in np.unique(because[because >= 0])
            if catalog.maturity[r] <= state.maturity_cap
        }
        page = postprocess.PageInput(
            ordered=show,
            in_progress=flag[sources.CONTINUE_WATCHING],
            new_release=flag[sources.NEW_RELEASES],
            trending=flag[sources.TRENDING],
            similar=flag[sources.SIMILAR_TO_WATCHED],
            because_rows=because,
            because_names=names,
            genre_slot=catalog.main_genre_slot(candidates.rows),
            genre_names=catalog.genre_names,
            personal=flag[sources.COLLABORATIVE] | flag[sources.EASE_SOURCE] | flag[sources.POPULAR_IN_GENRES],
        )

        # What an item shows of each candidate on the page, read once per page as Python values.
        shown = show.tolist()
        codes = (merged.proposed[show] @ (1 << np.arange(len(merged.sources)))).tolist()  # a flag pattern's number
        proposed_sets: dict[int, tuple[str, ...]] = {}  # the sources of each distinct flag pattern, once
        for code in set(codes):
            proposed_sets[code] = tuple(s for bit, s in enumerate(merged.sources) if code >> bit & 1)
        names_shown = catalog.names[candidates.rows[show]].tolist()
        static = {
            position: (content_id, str(name), round(score, 5), proposed_sets[code])
            for position, content_id, name, score, code in zip(
                shown, merged.content_ids[show].tolist(), names_shown, scores[show].tolist(), codes, strict=True
            )
        }
        made: dict[tuple[int, int, str], RankedItem] = {}  # rows repeat the top items: one (immutable) object each

        def item(position: int, rank: int, reason: str) -> RankedItem:
            ranked = made.get((position, rank, reason))
            if ranked is None:
                content_id, title, score, proposed = static[position]
                picked = explored.get(position)
                ranked = made[(position, rank, reason)] = _ranked_item(
                    rank,
                    content_id,
                    title,
                    score,
                    reason,
                    proposed,
                    "bandit" if picked is not None else policy,
                    1.0 if picked is None else picked,
                )
            return ranked

        top = order[:n]
        items = [
            item(p, i + 1, r) for i, (p, r) in enumerate(zip(top.tolist(), postprocess.reasons(page, top), strict=True))
        ]
        rows = []
        if with_rows:
            for row in postprocess.build_rows(page):
                reasons = postprocess.reasons(page, np.array(row.positions, np.int64), row.key)
                rows.append(
                    Row(
                        row.key,
                        row.title,
                        tuple(item(p, i + 1, r) for i, (p, r) in enumerate(zip(row.positions, reasons, strict=True))),
                    )
                )
        return Recommendations(request_id, state.profile_id, items, rows, {}, "")

    def _explore(self, request_id, state, context, candidates, models, read, scores, order, n, now, degraded):
        """The bandit fills the exploration slots of the top n from the candidates just below it; its picks and
        their propensities are logged for learning and off-policy evaluation. Returns (order, {position: p})."""
        from ranking.ml.bandit import bandit_context, bandit_item_features, exploration_slots

        slots = exploration_slots(min(n, len(order)))
        pool = order[n : n + EXPLORATION_POOL]
        if not len(slots) or not len(pool):
            return order, {}
        try:
            bandit = self.bandit_for()
            hour = context.time_of_day if context.time_of_day is not None else now.hour
            affinity = np.asarray(read.user.values["genre_affinity"], np.float32)
            ctx = bandit_context(int(context.device_type), int(hour), affinity)
            rows = candidates.rows[pool]
            items = bandit_item_features(
                models.catalog.genre_indicator(rows),
                models.popularity[rows],
                now.timestamp() / SECONDS_PER_DAY - models.catalog.date_added_days[rows],
                scores[pool],
            )
            chosen, propensities = bandit.policy.select(ctx, items, len(slots), np.random.default_rng())
        except Exception:
            log.warning("bandit unavailable; serving without exploration", exc_info=True)
            degraded.append("bandit_unavailable")
            return order, {}
        page = list(order[:n])
        picked = pool[chosen]
        for slot, position in zip(slots, picked, strict=True):
            page.insert(int(slot), int(position))  # the ranker's items it displaces move just below the top n
        rest = order[n:][~np.isin(order[n:], picked)]  # keeps the ranked order (setdiff1d would sort)
        new_order = np.concatenate([np.array(page, np.int64), rest])
        try:
            self.exploration_logger(
                request_id=request_id,
                profile_id=state.profile_id,
                bandit=bandit,
                title_ids=candidates.content_ids[picked].tolist(),
                positions=(slots + 1).tolist(),
                propensities=propensities,
                context=ctx,
                item_features=items[chosen],
                candidate_count=len(pool),
            )
        except Exception:
            log.warning("could not log the bandit's picks", exc_info=True)
            degraded.append("exploration_not_logged")
        return new_order, {int(p): float(q) for p, q in zip(picked, propensities, strict=True)}

    def _explain(self, result, candidates, models, ranker_scores, final, keep, boosted, features) -> dict[int, dict]:
        """Why each shown title is there: sources and their scores, ranker and final scores, rules, top features."""
        merged = candidates.merged
        shown = {item.content_id for item in result.items} | {i.content_id for row in result.rows for i in row.items}
        positions = np.flatnonzero(np.isin(merged.content_ids, list(shown)))
        by_relevance = np.empty(len(final), np.int64)
        ranked = np.flatnonzero(keep)[np.argsort(-final[keep], kind="stable")]
        by_relevance[ranked] = np.arange(1, len(ranked) + 1)
        contributions = self._contributions(models, features, positions)
        out = {}
        for number, p in enumerate(positions):
            sources_scores = {
                name: round(float(merged.scores[p, j]), 5)
                for j, name in enumerate(merged.sources)
                if merged.proposed[p, j]
            }
            out[int(merged.content_ids[p])] = {
                "sources": sources_scores,
                "ranker_score": round(float(ranker_scores[p]), 5),
                "final_score": round(float(final[p]), 5),
                "boosted": bool(boosted[p]),
                "rank_by_relevance": int(by_relevance[p]) if keep[p] else None,
                "top_features": contributions[number] if contributions else [],
            }
        out[-1] = {
            "candidates": len(merged),
            "removed_by_rules_or_watched": int((~keep).sum()),
            "boosted": int(boosted.sum()),
        }
        return out

    def _contributions(self, models, features, positions, top: int = 5) -> list[list[dict]]:
        ranker = models.get(ModelKind.RANKER)
        if ranker is None or features is None or not len(positions):
            return []
        try:
            contrib = ranker.model.booster.predict(features[positions], pred_contrib=True, num_threads=1)[
                :, :-1
            ]  # last: bias
        except Exception:
            log.warning("feature contributions unavailable", exc_info=True)
            return []
        names = ranker.model.feature_names
        out = []
        for row, values in zip(contrib, features[positions], strict=True):
            best = np.argsort(-np.abs(row))[:top]
            out.append(
                [
                    {
                        "feature": names[j],
                        "value": None if np.isnan(values[j]) else round(float(values[j]), 4),
                        "contribution": round(float(row[j]), 4),
                    }
                    for j in best
                ]
            )
        return out

    # --- the response cache ----------------------------------------------------------------------
    def _cache_key(self, head: ProfileHead, context: UserContext, n, with_rows, models, rules_version, variant):
        """Stale as soon as the profile watches something, a rule or the catalog changes, or a model swaps."""
        parts = (
            head.profile_id,
            head.country,
            head.tier,
            head.maturity_cap,
            context.device_type,
            context.time_of_day,
            n,
            with_rows,
            head.newest_viewing,
            rules_version,
            models.key,
            variant,
        )
        return f"{CACHE_PREFIX}:{head.profile_id}:{hashlib.sha1(repr(parts).encode()).hexdigest()}"

    def _cache_get(self, key: str, degraded: list[str]) -> tuple[tuple[str, ...], bytes] | None:
        """(the answer's degradations, its JSON body without request_id and cached), or None."""
        if not self.use_cache:
            return None
        try:
            cached = cache.get(key)
        except Exception:
            log.warning("response cache unavailable", exc_info=True)
            degraded.append("cache_unavailable")
            return None
        if isinstance(cached, tuple) and len(cached) == 2 and isinstance(cached[1], bytes):
            return cached
        return None

    def _cache_set(self, key: str, value: tuple[tuple[str, ...], bytes]) -> None:
        """Only answers whose degradations CACHEABLE_DEGRADATIONS covers: a passing fault (Redis, features, a
        failed stage) must not outlive itself in the cache."""
        try:
            cache.set(key, value, settings.RECO_RESPONSE_CACHE_SECONDS or 600)
        except Exception:
            log.warning("response cache unavailable", exc_info=True)


# --- helpers ------------------------------------------------------------------------------------
def _homepage_bandit():
    from experiments.services import bandit_load

    return bandit_load()


def _exploration_log(**kwargs: Any) -> int:
    from experiments.services import exploration_log

    return exploration_log(**kwargs)


def experiment_variant(profile_id: int) -> Variant | None:
    """The Variant of the profile's arm in the running experiment, if any (experiments.services)."""
    from experiments.services import assignment_for

    assignment = assignment_for(profile_id)
    if assignment is None:
        return None
    return Variant(
        experiment=assignment.experiment,
        arm=assignment.arm,
        ranker_version=assignment.ranker_version,
        mmr_lambda=assignment.mmr_lambda,
        bandit=assignment.bandit_enabled,
        popularity_only=assignment.popularity_only,
    )


def _popular_candidates(state: ProfileState, models: ServingModels, trending) -> CandidateSet:
    """The baseline arm's pool: the most popular titles the profile may watch, scored by popularity."""
    allowed = models.catalog.allowed(tier=state.tier, country=state.country, maturity_cap=state.maturity_cap)
    rows, scores = sources.ranked_list(
        trending.rows, trending.scores, 500, allowed=allowed, exclude_rows=np.empty(0, np.int64)
    )
    return _one_source_candidates(state, models, sources.TRENDING, rows, scores)


def _calibrated(order, scores, candidates, models, read, n: int, lam: float) -> np.ndarray:
    """The top n re-picked from the best 3n (Steck 2018) so that its genre mix matches the profile's genre
    affinity (watch time per genre); the rest keeps its order below."""
    target = np.asarray(read.user.values["genre_affinity"], np.float64)
    pool = order[: max(3 * n, 60)]
    if not len(pool) or not target.sum() > 0:
        return order
    genres = models.catalog.genre_indicator(candidates.rows[pool])
    picked = pool[calibrated_order(scores[pool], genres, target, n, lam=lam)]
    return np.concatenate([picked, order[~np.isin(order, picked)]])


def _oracle_candidates(state: ProfileState, models: ServingModels, scorer) -> CandidateSet:
    """The oracle arm's pool: the allowed titles the scorer rates highest (the same 500 as the baseline's)."""
    if scorer is None:
        raise ValueError("Variant(oracle=True) needs an engine built with an oracle_scorer")
    rows = np.flatnonzero(
        models.catalog.allowed(tier=state.tier, country=state.country, maturity_cap=state.maturity_cap)
    )
    scores = np.asarray(scorer(state.profile_id, models.catalog.content_ids[rows]), np.float32)
    best = np.argsort(-scores, kind="stable")[:500]
    return _one_source_candidates(state, models, "oracle", rows[best], scores[best])


def _one_source_candidates(
    state: ProfileState, models: ServingModels, source: str, rows: np.ndarray, scores: np.ndarray
) -> CandidateSet:
    """A CandidateSet of one source's ranked catalog rows (the baseline's and the oracle's pools): no history
    seeds, no favourite genres."""
    merged = merge_candidates({source: (rows, scores)}, {source: len(rows)}, len(rows))
    ids = models.catalog.content_ids[merged.content_ids]
    return CandidateSet(
        merged.content_ids,
        MergedCandidates(ids, merged.sources, merged.proposed, merged.scores),
        np.empty(0, np.int64),
        0,
        not state.has_history,
    )


def _observe_inputs(candidates: CandidateSet, read, models: ServingModels) -> None:
    """Metrics of what one request worked from: the models served; in sampled answers, candidates per source
    and the features' age."""
    metrics.models_served(models)
    if not metrics.inputs_sampled():
        return
    merged = candidates.merged
    metrics.candidates_observe(tuple(merged.sources), merged.proposed.sum(axis=0))
    metrics.feature_age_observe("user", read.user.computed_at.timestamp() if read.user.computed_at else None)
    ages = read.content.computed_at
    metrics.feature_age_observe("content", float(np.nanmin(ages)) if read.content.found.any() else None)


def _completed(state: ProfileState, candidates: CandidateSet) -> np.ndarray:
    """Candidates the profile has finished, however long ago (never shown again)."""
    return completed_titles(state, candidates.content_ids)
