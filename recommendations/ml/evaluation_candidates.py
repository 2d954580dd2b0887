"""The offline "merged candidates": serving's own pipeline (candidate_pipeline.generate) over a data set's split.

Each evaluated user becomes a profile the way the importer stores one (users.ml.datasets.viewings: watch
share = rating / scale, last watched = the rating's time plus that share of a film), its newest
HISTORY_LIMIT viewings read as a request reads them, and `now` is the last train rating. The catalog is the
data set's titles (every tier, worldwide); a title's date added is its first train rating (as the importer
dates titles), else its release date. Trending is the titles ranked by decayed train ratings (the stand-in
for the feature store's list). The pipeline's candidates keep serving's quotas; train titles the sources may
list (continue watching offers unfinished viewings) are dropped before scoring, as the protocol removes them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from recommendations.ml import defaults, metrics, sources
from recommendations.ml.candidate_pipeline import (
    HISTORY_LIMIT,
    TOTAL_CANDIDATES,
    CandidateModels,
    CandidateSet,
    ProfileHistory,
    generate,
)
from recommendations.ml.catalog import GENRE_BITS, CatalogIndex
from recommendations.ml.constants import ITEM_COL, PAD_ID, USER_COL
from recommendations.ml.content import ContentSimilarity
from recommendations.ml.ease import EASE
from recommendations.ml.evaluation_scoring import Evaluation
from recommendations.ml.matrix_factorization import MatrixFactorization
from users.ml.datasets import RatingsDataset, viewings

ALL_TIERS = 0b111
TRENDING_DECAY = 0.99  # trending score of a title = Σ over its train ratings of decay ** days old
SECONDS_PER_DAY = 86_400
CANDIDATE_RECALL_TARGET = 0.90


@dataclass(frozen=True, eq=False)
class Aligned:
    model: Any
    alignment: sources.ItemAlignment


def dataset_catalog(data: RatingsDataset, train: pd.DataFrame) -> CatalogIndex:
    """The data set as the service's catalog: every title in every tier, worldwide, maturity 0; genre slot i =
    genre_names[i]; date added = first train rating, else release date (unknown: 1970-01-01, never new)."""
    n = len(data.items)
    ids = data.items[ITEM_COL].to_numpy(np.int64)
    genres = len(data.genre_names[:GENRE_BITS])
    bits = np.left_shift(np.uint32(1), np.arange(genres, dtype=np.uint32))
    masks = np.bitwise_or.reduce(
        np.where(data.genre_flags[:, :genres], bits, np.uint32(0)), axis=1, initial=np.uint32(0)
    ).astype(np.uint32)
    released = pd.Series(data.items["release_date"].to_numpy())
    release_days = ((released - pd.Timestamp("1970-01-01")).dt.days).fillna(0).to_numpy(np.int64)
    first = train.groupby(ITEM_COL)["timestamp"].min()
    first_days = pd.Series(ids).map(first // SECONDS_PER_DAY).to_numpy(np.float64)
    added = np.where(np.isnan(first_days), release_days, np.nan_to_num(first_days)).astype(np.int32)
    return CatalogIndex(
        content_ids=ids,
        names=data.items["title"].to_numpy(object),
        genre_masks=masks,
        genre_ids=np.arange(genres, dtype=np.int64),
        genre_names=tuple(data.genre_names[:genres]),
        maturity=np.zeros(n, np.int16),
        available_tiers=np.full(n, ALL_TIERS, np.uint8),
        worldwide=np.ones(n, bool),
        country_titles={},
        date_added_days=added,
        release_year=released.dt.year.fillna(0).to_numpy(np.int16),
        is_original=np.zeros(n, bool),
        has_4k=np.zeros(n, bool),
        has_hdr=np.zeros(n, bool),
        is_series=np.zeros(n, bool),
        version=f"{data.layout}-evaluation",
    )


def trending_list(
    catalog: CatalogIndex, train: pd.DataFrame, decay: float = TRENDING_DECAY
) -> tuple[np.ndarray, np.ndarray]:
    """Catalog rows with train ratings ranked by Σ decay ** days old (relative to the last train rating)."""
    rows, _ = catalog.positions(train[ITEM_COL].to_numpy())
    stamps = train["timestamp"].to_numpy(np.int64)
    days_old = (stamps.max() - stamps) / SECONDS_PER_DAY
    score = np.bincount(rows, weights=decay**days_old, minlength=len(catalog))
    ranked = np.flatnonzero(score > 0)
    ranked = ranked[np.argsort(-score[ranked], kind="stable")]
    return ranked, score[ranked].astype(np.float32)


class CandidateStage:
    """The serving pipeline's inputs for the users of one split, and its candidates for each of them."""

    def __init__(
        self,
        data: RatingsDataset,
        train: pd.DataFrame,
        *,
        als: MatrixFactorization,
        content: ContentSimilarity | None,
        ease: EASE | None,
    ) -> None:
        self.data, self.train = data, train
        self.catalog = catalog = dataset_catalog(data, train)
        self.allowed = np.ones(len(catalog), bool)
        rows, known = catalog.positions(train[ITEM_COL].to_numpy())
        if not known.all():
            raise ValueError("train names titles outside the catalog")
        self.models = CandidateModels(
            catalog=catalog,
            popularity=np.bincount(rows, minlength=len(catalog)).astype(np.float32),
            mf=Aligned(als, sources.ItemAlignment.build(als.item_map.ids, catalog.content_ids)),
            content=None
            if content is None
            else Aligned(content, sources.ItemAlignment.build(content.item_map.ids, catalog.content_ids)),
            ease=None
            if ease is None
            else Aligned(ease, sources.ItemAlignment.build(ease.item_map.ids, catalog.content_ids)),
        )
        self.trending = trending_list(catalog, train)
        self.now_seconds = float(train["timestamp"].max())
        percentage, _, last_watched = viewings(data, train)
        frame = pd.DataFrame(
            {
                USER_COL: train[USER_COL].to_numpy(),
                ITEM_COL: train[ITEM_COL].to_numpy(),
                "pct": percentage.astype(np.float32),
                "last": last_watched.astype("datetime64[s]").astype(np.int64).astype(np.float64),
            }
        )
        frame = frame.sort_values([USER_COL, "last", ITEM_COL], ascending=[True, False, True], kind="stable")
        self._histories = dict(list(frame.groupby(USER_COL, sort=False)))

    def profile(self, user: int) -> ProfileHistory:
        """The user as a request reads a profile: its newest HISTORY_LIMIT viewings, newest first."""
        part = self._histories.get(user)
        if part is None:
            return ProfileHistory(profile_id=int(user), allowed=self.allowed)
        part = part.iloc[:HISTORY_LIMIT]
        return ProfileHistory(
            profile_id=int(user),
            allowed=self.allowed,
            title_ids=part[ITEM_COL].to_numpy(np.int64),
            watch_percentage=part["pct"].to_numpy(),
            last_watched=part["last"].to_numpy(),
        )

    def candidates(self, user: int) -> CandidateSet:
        """The pipeline's CandidateSet for one user, exactly as serving would build it."""
        return generate(self.profile(user), self.models, self.trending, now_seconds=self.now_seconds)

    def merged(self, users: np.ndarray) -> tuple[np.ndarray, list[CandidateSet]]:
        """(n_users, TOTAL_CANDIDATES) candidate ids without the user's train titles, PAD_ID padded; the sets."""
        train_items = self.train.groupby(USER_COL)[ITEM_COL].unique()
        ids = np.full((len(users), TOTAL_CANDIDATES), PAD_ID, np.int64)
        sets = []
        for position, user in enumerate(users):
            found = self.candidates(int(user))
            kept = found.content_ids[~np.isin(found.content_ids, train_items.get(user, ()))]
            ids[position, : len(kept)] = kept
            sets.append(found)
        return ids, sets


def candidate_stage(
    data: RatingsDataset,
    train: pd.DataFrame,
    chosen: dict[str, dict[str, Any]],
    *,
    als: MatrixFactorization | None = None,
    ease: EASE | None = None,
    with_ease: bool = True,
    threads: int,
) -> tuple[CandidateStage, float]:
    """The candidate stage of one split (fitting what is not passed in) and the fit seconds of its models;
    without EASE as serving goes without it on a large catalog."""
    als = als or MatrixFactorization(**chosen["MF-ALS"], objective="als", num_threads=threads).fit(train)
    if with_ease and ease is None:
        ease = EASE(**chosen["EASE"]).fit(train)
    content = None
    if data.genre_names:  # no metadata, no content model: serving goes without it too (flagged)
        content = ContentSimilarity(**chosen["content similarity"]).fit(train, data.content_frame())
    stage = CandidateStage(data, train, als=als, content=content, ease=ease if with_ease else None)
    ease_seconds = ease.fit_seconds if ease is not None and with_ease else 0.0
    return stage, als.fit_seconds + ease_seconds + (content.fit_seconds if content is not None else 0.0)


def candidate_report(stage: CandidateStage, evaluation: Evaluation) -> dict[str, Any]:
    """recall@500 of the merged candidates on test, and per source: the users it served, the share of the
    candidates it lists and the recall of what it lists."""
    started = time.perf_counter()
    ids, sets = stage.merged(evaluation.users)
    seconds = time.perf_counter() - started
    per_source: dict[str, dict[str, Any]] = {}
    names = sorted({name for found in sets for name in found.merged.sources})
    total = max(sum(len(found.content_ids) for found in sets), 1)
    for name in names:
        listed = np.full_like(ids, PAD_ID)
        served, count = 0, 0
        for position, found in enumerate(sets):
            if name not in found.merged.sources:
                continue
            flags = found.merged.proposed[:, found.merged.sources.index(name)]
            count += int(flags.sum())
            served += int(flags.any())
            mine = found.content_ids[flags]
            mine = mine[np.isin(mine, ids[position])]
            listed[position, : len(mine)] = mine
        per_source[name] = {
            "users_served": served,
            "listed_share": count / total,
            "recall_of_listed": evaluation.recall(listed),
        }
    shown = ids[ids != PAD_ID]
    return {
        "label": "serving's candidate pipeline (recommendations.ml.candidate_pipeline.generate, its quotas) over "
        "the data set's catalog, train titles removed",
        "quotas": dict(defaults.CANDIDATE_QUOTAS),
        "recall_at_500": evaluation.recall(ids),
        "target": CANDIDATE_RECALL_TARGET,
        "mean_candidates_per_user": float((ids != PAD_ID).sum(axis=1).mean()),
        "coverage": float(len(np.unique(shown)) / len(stage.catalog)),
        "novelty": metrics.novelty(ids, evaluation.train),
        "per_source": per_source,
        "cold_users": int(sum(found.cold_start for found in sets)),
        "generate_and_merge_ms_per_user": 1000 * seconds / max(len(sets), 1),
    }
