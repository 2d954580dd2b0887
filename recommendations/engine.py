"""The request path: profile → response cache → candidates → features → ranking → rules → MMR → rows.

`RecommendationEngine().recommend(user_id, context=UserContext(...), n=20)` is the design's entry point;
the API is a thin layer over it. Every dependency failure (Redis, a missing or corrupt model, no ranker)
falls back to a simpler path and is named in `degraded`; nothing on this path raises for it.
"""
from __future__ import annotations

import hashlib
import logging
import time
import uuid
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from features.store import FeatureStore
from ranking.ml import postprocess
from ranking.ml.diversify import diversify_titles
from ranking.ml.features import assemble
from ranking.ml.rules import apply_rules
from ranking.rules import rules_cache
from recommendations.candidates import CandidateSet, candidates_generate
from recommendations.context import ProfileHead, ProfileState, UserContext, profile_head_load, profile_state_load
from recommendations.ml import sources
from recommendations.ml.matrix_factorization import MatrixFactorization
from recommendations.models import ModelKind, ModelVersion
from recommendations.ranking_input import blend_sources, ranking_input_build, user_vector_of
from recommendations.serving import ServingModels, serving_state
from users.models import Profile

log = logging.getLogger(__name__)

CACHE_PREFIX = "recs:v1"
MAX_N = 100
STAGES = ("profile", "cache", "candidates", "features", "ranking", "rules", "diversification", "postprocess")
SECONDS_PER_DAY = 86_400
COMPLETED_SHARE = 0.9


class ProfileNotFound(LookupError):
    pass


@dataclass(frozen=True)
class RankedItem:
    rank: int
    content_id: int
    title: str
    score: float
    reason: str
    sources: tuple[str, ...]


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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Recommendations:
        items = [RankedItem(**{**i, "sources": tuple(i["sources"])}) for i in data["items"]]
        rows = [Row(r["key"], r["title"], tuple(RankedItem(**{**i, "sources": tuple(i["sources"])}) for i in r["items"]))
                for r in data["rows"]]  # fmt: skip
        return cls(**{**data, "items": items, "rows": rows})


class _Clock:
    def __init__(self) -> None:
        self.timings: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.timings[stage] = round(self.timings.get(stage, 0.0) + (now - self._last) * 1000, 3)
        self._last = now


class RecommendationEngine:
    def __init__(self, *, store: FeatureStore | None = None, use_cache: bool | None = None) -> None:
        """use_cache: None follows RECO_RESPONSE_CACHE_SECONDS (0 turns the response cache off)."""
        self.store = store or FeatureStore()
        self._use_cache = use_cache

    @property
    def use_cache(self) -> bool:
        return settings.RECO_RESPONSE_CACHE_SECONDS > 0 if self._use_cache is None else self._use_cache

    # --- the design's API ------------------------------------------------------------------------
    def recommend(
        self, user_id: int | None = None, context: UserContext | None = None, n: int = 20, *, with_rows: bool = True
    ) -> Recommendations:
        """Top-n for a profile. `context.profile_id` names it (else `user_id` is taken as the profile id);
        a `context.user_id` must own the profile. ProfileNotFound if it does not exist (or is not theirs)."""
        context = context or UserContext(profile_id=user_id)
        profile_id = context.profile_id if context.profile_id is not None else user_id
        if profile_id is None:
            raise ValueError("name a profile: context.profile_id or user_id")
        if not 1 <= n <= MAX_N:
            raise ValueError(f"n must be 1..{MAX_N}")
        clock = _Clock()
        request_id = uuid.uuid4().hex
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

        models = serving_state.models()
        rules = rules_cache.current()
        key = self._cache_key(head, context, n, with_rows, models, rules.version)
        cached = self._cache_get(key, degraded)
        clock.lap("cache")
        if cached is not None:
            cached.request_id, cached.cached = request_id, True
            cached.timings_ms = clock.timings
            return cached
        state = profile_state_load(profile_id=head.profile_id, head=head)
        clock.lap("profile")

        now = timezone.now()
        trending = serving_state.trending(models, self.store)
        candidates = candidates_generate(state, models, trending, now=now)
        degraded += list(candidates.degraded)
        clock.lap("candidates")

        read = self.store.get_request_features(state.profile_id, candidates.content_ids)
        if read.user.store_unavailable:
            degraded.append("feature_store_unavailable")
        clock.lap("features")

        scores = self._rank(state, context, candidates, models, read, now, degraded)
        clock.lap("ranking")

        rows = candidates.rows
        ruled = apply_rules(rules, models.catalog, rows, scores, country=state.country, tier=state.tier,
                            is_kids=state.is_kids, maturity_cap=state.maturity_cap, now_epoch=now.timestamp())  # fmt: skip
        keep = ruled.keep & ~_completed(state, candidates)
        clock.lap("rules")

        order = self._diversify(state, candidates, models, ruled.scores, keep, now, rules, n)
        clock.lap("diversification")

        result = self._page(request_id, state, candidates, models, ruled.scores, keep, order, n, with_rows)
        result.model_versions = models.versions
        result.rules_version = rules.version
        result.degraded = sorted(set(degraded))
        clock.lap("postprocess")
        self._cache_set(key, result, degraded)
        result.timings_ms = clock.timings
        return result

    def train_collaborative_filtering(
        self, interactions: pd.DataFrame, *, params: dict[str, Any] | None = None, activate: bool = True
    ) -> ModelVersion:
        """Fit matrix factorization on a frame of user_id, content_id, rating; register it (and activate it)."""
        import tempfile
        from pathlib import Path

        from recommendations.services import model_version_activate, model_version_register
        from recommendations.training import DEFAULT_PARAMS

        params = {**DEFAULT_PARAMS[ModelKind.MATRIX_FACTORIZATION], **(params or {})}
        model = MatrixFactorization(**params).fit(interactions)
        with tempfile.TemporaryDirectory(prefix="reco-mf-") as scratch:
            saved = model.save(Path(scratch) / "model")
            version = model_version_register(kind=ModelKind.MATRIX_FACTORIZATION, saved_model_dir=saved,
                                             metrics={}, params=params)  # fmt: skip
        return model_version_activate(version_id=version.pk) if activate else version

    # --- stages ----------------------------------------------------------------------------------
    def _rank(self, state, context, candidates: CandidateSet, models: ServingModels, read, now, degraded) -> np.ndarray:  # noqa: ANN001, E501
        ranker = models.get(ModelKind.RANKER)
        if ranker is None:
            degraded.append("no_ranker")
            return blend_sources(candidates.merged)
        hour = context.time_of_day if context.time_of_day is not None else now.hour
        ranking_input = ranking_input_build(
            state=state, candidates=candidates, models=models, user=user_vector_of(read.user),
            content=np.asarray(read.content.values, np.float32), hour=int(hour), device_type=int(context.device_type),
            now=now,
        )  # fmt: skip
        try:
            return np.asarray(ranker.model.predict(assemble(ranking_input)), np.float32)
        except Exception:
            log.exception("ranker %s failed; ranking by source scores", ranker.version)
            degraded.append("ranker_failed")
            return blend_sources(candidates.merged)

    def _diversify(self, state, candidates, models, scores, keep, now, rules, n) -> np.ndarray:  # noqa: ANN001
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
            models.catalog, candidates.rows[pool], scores[pool], k=min(len(pool), max(n, 40)),
            today_days=int(now.timestamp() // SECONDS_PER_DAY), usual_genres=int(candidates.favourite_genres),
            item_factors=factors, lam=rules.mmr_lambda,
        )  # fmt: skip
        rest = np.setdiff1d(pool, pool[picked], assume_unique=True)
        rest = rest[np.argsort(-scores[rest], kind="stable")]
        return np.concatenate([pool[picked], rest])

    def _page(self, request_id, state, candidates, models, scores, keep, order, n, with_rows) -> Recommendations:  # noqa: ANN001
        catalog = models.catalog
        merged = candidates.merged
        flag = {name: merged.proposed[:, merged.sources.index(name)] if name in merged.sources
                else np.zeros(len(merged), bool) for name in sources.SOURCES}  # fmt: skip
        because = np.full(len(merged), -1, np.int64)
        content = models.get(ModelKind.CONTENT)
        show = order[: max(n, 200) if with_rows else n]
        if content is not None and len(candidates.history_rows) and len(show):
            similar = show[flag[sources.SIMILAR_TO_WATCHED][show]]
            anchors, _ = sources.because_watched(content.model.similarity, content.alignment,
                                                 candidates.history_rows[:50], candidates.rows[similar])  # fmt: skip
            because[similar] = anchors
        names = {int(r): str(catalog.names[r]) for r in np.unique(because[because >= 0])}
        page = postprocess.PageInput(
            ordered=show, in_progress=flag[sources.CONTINUE_WATCHING], new_release=flag[sources.NEW_RELEASES],
            trending=flag[sources.TRENDING], similar=flag[sources.SIMILAR_TO_WATCHED], because_rows=because,
            because_names=names, genre_slot=catalog.main_genre_slot(candidates.rows),
            genre_names=catalog.genre_names,
        )  # fmt: skip

        def item(position: int, rank: int, reason: str) -> RankedItem:
            proposed = tuple(s for s, on in zip(merged.sources, merged.proposed[position], strict=True) if on)
            return RankedItem(rank, int(merged.content_ids[position]), str(catalog.names[candidates.rows[position]]),
                              round(float(scores[position]), 5), reason, proposed)  # fmt: skip

        top = order[:n]
        items = [item(p, i + 1, r) for i, (p, r) in enumerate(zip(top, postprocess.reasons(page, top), strict=True))]
        rows = []
        if with_rows:
            for row in postprocess.build_rows(page):
                positions = np.array(row.positions, np.int64)
                reasons = postprocess.reasons(page, positions)
                rows.append(Row(row.key, row.title, tuple(item(p, i + 1, r) for i, (p, r) in
                                                          enumerate(zip(positions, reasons, strict=True)))))  # fmt: skip
        return Recommendations(request_id, state.profile_id, items, rows, {}, "")

    # --- the response cache ----------------------------------------------------------------------
    def _cache_key(self, head: ProfileHead, context: UserContext, n: int, with_rows: bool, models, rules_version):  # noqa: ANN001, ANN202
        """Stale as soon as the profile watches something, a rule or the catalog changes, or a model swaps."""
        parts = (head.profile_id, head.country, head.tier, head.maturity_cap, context.device_type, context.time_of_day,
                 n, with_rows, head.newest_viewing, rules_version, models.key)  # fmt: skip
        return f"{CACHE_PREFIX}:{head.profile_id}:{hashlib.sha1(repr(parts).encode()).hexdigest()}"

    def _cache_get(self, key: str, degraded: list[str]) -> Recommendations | None:
        if not self.use_cache:
            return None
        try:
            data = cache.get(key)
        except Exception:
            log.warning("response cache unavailable", exc_info=True)
            degraded.append("cache_unavailable")
            return None
        return Recommendations.from_dict(data) if data else None

    def _cache_set(self, key: str, result: Recommendations, degraded: list[str]) -> None:
        if not self.use_cache or "cache_unavailable" in degraded:
            return
        try:
            cache.set(key, result.to_dict() | {"timings_ms": {}}, settings.RECO_RESPONSE_CACHE_SECONDS or 600)
        except Exception:
            log.warning("response cache unavailable", exc_info=True)


# --- helpers ------------------------------------------------------------------------------------
def _completed(state: ProfileState, candidates: CandidateSet) -> np.ndarray:
    """Candidates the profile has finished (never shown again)."""
    done = state.history_title_ids[(state.history_watch_percentage >= COMPLETED_SHARE) | state.history_completed]
    return np.isin(candidates.content_ids, done)


