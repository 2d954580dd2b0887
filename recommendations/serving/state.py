"""What the request path holds in memory: the catalog arrays and the active models aligned to them.

`serving_models()` returns one immutable ServingModels; it is rebuilt (alignments, ALS Gram matrix,
popularity over the catalog) only when the catalog or an active model version changes, so a request
does no per-model set-up. Trending is read from the feature store, kept for TRENDING_CACHE_SECONDS.
"""

from __future__ import annotations

import gc
import logging
import time
from dataclasses import dataclass, field

import numpy as np

from config.reloading import VersionedSnapshot
from features.services import TRENDING
from features.store import FeatureStore
from recommendations.ml.catalog import CatalogIndex
from recommendations.ml.sources import ItemAlignment
from recommendations.models import ModelKind
from recommendations.registry import registry
from recommendations.serving.catalog_cache import catalog_cache

log = logging.getLogger(__name__)

TRENDING_CACHE_SECONDS = 10.0
POPULAR_LIST_SIZE = 1_000


@dataclass(frozen=True, eq=False)
class AlignedModel:
    """An active model, its version and its item index mapped onto catalog rows."""

    version: str
    model: object
    alignment: ItemAlignment


@dataclass(frozen=True, eq=False)
class ServingModels:
    catalog: CatalogIndex
    models: dict[str, AlignedModel]  # by ModelKind, active and loadable ones only
    mf_gram: np.ndarray | None  # YᵀY of the MF item factors, for folding in unseen profiles
    popularity: np.ndarray  # float32 over catalog rows (0 where unknown): the popularity model's counts
    popular_rows: np.ndarray  # catalog rows by popularity, best first (POPULAR_LIST_SIZE)
    key: tuple

    def get(self, kind: str) -> AlignedModel | None:
        return self.models.get(kind)

    @property
    def versions(self) -> dict[str, str]:
        return {kind: aligned.version for kind, aligned in sorted(self.models.items())}


@dataclass(frozen=True, eq=False)
class TrendingList:
    rows: np.ndarray  # catalog rows, best first
    scores: np.ndarray
    from_store: bool  # False: the feature store was unreachable or empty; popularity stood in


@dataclass(frozen=True)
class _Inputs:
    """What ServingModels are built from, compared by `key` and `serials` only."""

    key: tuple
    # Not in the key (which response cache keys shared by all processes include): the same version loaded
    # again from a new private copy (registry.verify_served) must replace the old arrays all the same.
    serials: tuple
    catalog: CatalogIndex = field(compare=False)
    loaded: dict = field(compare=False)  # {kind: registry.LoadedModel}, active and loadable ones


def _inputs() -> _Inputs:
    catalog = catalog_cache.current()
    loaded = {kind: m for kind in ModelKind.values if (m := registry.get(kind)) is not None}
    key = (catalog.version, tuple(sorted((k, m.version_id) for k, m in loaded.items())))
    return _Inputs(key, tuple(sorted((k, m.serial) for k, m in loaded.items())), catalog, loaded)


def _build(inputs: _Inputs, _previous: ServingModels | None) -> ServingModels:
    started = time.perf_counter()
    models = build_serving_models(inputs.catalog, inputs.loaded, inputs.key)
    _freeze_long_lived_objects()
    log.info("serving models %s ready in %.2f s", models.versions, time.perf_counter() - started)
    return models


class ServingState:
    def __init__(self) -> None:
        # Checked on every call (the catalog and the registry keep their own intervals).
        self._models: VersionedSnapshot[_Inputs, ServingModels] = VersionedSnapshot(
            "serving models", read_version=_inputs, build=_build, check_seconds=0, log=log
        )
        self._trending: tuple[float, tuple, TrendingList] | None = None

    def models(self) -> ServingModels:
        return self._models.get()

    def trending(self, models: ServingModels, store: FeatureStore) -> TrendingList:
        cached = self._trending
        now = time.monotonic()
        if cached is not None and now - cached[0] < TRENDING_CACHE_SECONDS and cached[1] == models.key:
            return cached[2]
        ranking = store.get_ranking(TRENDING)
        rows, known = models.catalog.positions(ranking.ids)
        if known.any():
            trending = TrendingList(rows[known], ranking.scores[known], True)
        else:  # none stored, or none of it in this catalog (a list left by another catalog): the model's own
            popular = models.popular_rows
            trending = TrendingList(popular, models.popularity[popular], False)
        if not ranking.store_unavailable:  # retry a down store on the next request, not in 10 s
            self._trending = (now, models.key, trending)
        return trending

    def clear(self) -> None:
        self._models.clear()
        self._trending = None


def _freeze_long_lived_objects() -> None:
    """Move every object alive now (Django, the models, the catalog) out of the cyclic collector's view.

    A full collection over a web worker's ~190K tracked objects stalls whatever request triggers it for
    ~120 ms (measured at 100K titles); frozen objects are never traversed again. Each rebuild (a model swap
    or catalog edit, already seconds of work) first unfreezes and collects everything, so cycles among the
    replaced models' objects are still reclaimed."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()


def build_serving_models(catalog: CatalogIndex, loaded: dict, key: tuple) -> ServingModels:
    """ServingModels from loaded models ({kind: registry.LoadedModel}) over `catalog`."""
    models = {kind: AlignedModel(m.version, m.model, _alignment(m.model, catalog)) for kind, m in loaded.items()}
    gram = None
    mf = models.get(ModelKind.MATRIX_FACTORIZATION)
    if mf is not None:
        factors = np.asarray(mf.model.item_factors, np.float64)
        gram = factors.T @ factors
    popularity = np.zeros(len(catalog), np.float32)
    pop = models.get(ModelKind.POPULARITY)
    if pop is not None:
        known = pop.alignment.rows >= 0
        popularity[pop.alignment.rows[known]] = np.asarray(pop.model.item_scores)[known]
    elif mf is not None:  # no popularity model: titles by how many profiles the MF model saw watch them
        counts = np.diff(mf.model.user_items.tocsc().indptr).astype(np.float32)
        known = mf.alignment.rows >= 0
        popularity[mf.alignment.rows[known]] = counts[known]
    n = min(POPULAR_LIST_SIZE, int((popularity > 0).sum()))
    popular_rows = np.argsort(-popularity, kind="stable")[:n].astype(np.int64)
    return ServingModels(catalog, models, gram, popularity, popular_rows, key)


def _alignment(model: object, catalog: CatalogIndex) -> ItemAlignment:
    ids = getattr(model, "content_ids", None)  # the ranker scores feature rows, not items: nothing to align
    return ItemAlignment.build(np.empty(0, np.int64) if ids is None else ids, catalog.content_ids)


serving_state = ServingState()


def warm_up() -> ServingModels | None:
    """Load the catalog and the active models now, for a process about to fork its web workers.

    gunicorn's master calls this once (config/gunicorn.py, with preload_app) so that every worker starts
    with the serving state already built, frozen out of the collector, and shared copy-on-write with the
    others instead of each worker building a private copy on its first request. The database connections
    it opened are closed before the fork (a socket must not be shared between processes; redis-py's pools
    notice a fork by themselves). Never raises, so that the web server starts whatever happens: on a failure
    (logged) it returns None and the workers build their state on their first request, as without a warm-up.
    """
    from django.db import connections

    started = time.perf_counter()
    try:
        models = serving_state.models()
    except Exception:
        log.exception("warm-up skipped: the serving state could not be read; workers will build their own")
        models = None
    finally:
        connections.close_all()
    if models is not None:
        log.info(
            "warm-up: %d titles and models %s in %.2f s",
            len(models.catalog),
            models.versions,
            time.perf_counter() - started,
        )
    return models
