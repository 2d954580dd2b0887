"""The catalog as in-process arrays (CatalogIndex), rebuilt when the catalog changes.

Title saves, deletions and genre/country edits bump a version in the shared cache (Redis in production);
each process checks it at most every RECO_CATALOG_CHECK_SECONDS and rebuilds its arrays when it moved.
Bulk imports, which send no signals, show in the title count and largest id, checked every
RECO_CATALOG_TABLE_CHECK_SECONDS.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
import uuid

import numpy as np
import pandas as pd
from django.conf import settings
from django.core.cache import cache
from django.db.models import Count, Max
from django.db.models.signals import m2m_changed, post_delete, post_save
from django.dispatch import receiver

from catalog.models import Genre, Title
from config.reloading import VersionedSnapshot
from recommendations.ml.catalog import GENRE_BITS, CatalogIndex

log = logging.getLogger(__name__)

VERSION_KEY = "reco:catalog:version"
EPOCH = dt.date(1970, 1, 1)


def catalog_version_bump() -> str:
    """Mark the catalog changed for every process (called on title edits and after imports)."""
    version = uuid.uuid4().hex[:12]
    try:
        cache.set(VERSION_KEY, version, timeout=None)
    except Exception:  # the cache being down must not fail an editor's save; processes rebuild on their timer
        log.warning("could not bump the catalog version", exc_info=True)
    return version


def catalog_index_build(version: str = "") -> CatalogIndex:
    """Read the whole catalog in four queries and build the arrays (about a second at 100K titles)."""
    rows = list(
        Title.objects.order_by("id").values_list(
            "id",
            "name",
            "maturity_rating",
            "available_tiers",
            "date_added",
            "release_date",
            "is_original",
            "has_4k",
            "has_hdr",
            "kind",
        )
    )
    columns = ["id", "name", "maturity", "tiers", "added", "released", "original", "has_4k", "has_hdr", "kind"]
    titles = pd.DataFrame(rows, columns=columns)
    ids = titles["id"].to_numpy(np.int64)
    genres = list(Genre.objects.order_by("id").values_list("id", "name")[:GENRE_BITS])
    genre_ids = np.array([g for g, _ in genres], np.int64)
    links = np.array(list(Title.genres.through.objects.values_list("title_id", "genre_id")), np.int64).reshape(-1, 2)
    masks = np.zeros(len(ids), np.uint32)
    if len(links) and len(genre_ids):
        title_rows = np.searchsorted(ids, links[:, 0])
        slots = np.searchsorted(genre_ids, links[:, 1])
        known = (slots < len(genre_ids)) & (title_rows < len(ids))
        known[known] = genre_ids[slots[known]] == links[known, 1]
        np.bitwise_or.at(masks, title_rows[known], np.left_shift(np.uint32(1), slots[known].astype(np.uint32)))
    countries = pd.DataFrame(
        list(Title.available_countries.through.objects.values_list("title_id", "country__code")),
        columns=["title_id", "code"],
    )
    country_rows = np.searchsorted(ids, countries["title_id"].to_numpy(np.int64))
    restricted = np.zeros(len(ids), bool)
    restricted[country_rows] = True
    country_titles = {code: np.sort(country_rows[group]) for code, group in countries.groupby("code").indices.items()}
    added = pd.to_datetime(titles["added"]).to_numpy("datetime64[D]").astype(np.int64)
    released = pd.to_datetime(titles["released"])
    return CatalogIndex(
        content_ids=ids,
        names=titles["name"].to_numpy(object),
        genre_masks=masks,
        genre_ids=genre_ids,
        genre_names=tuple(name for _, name in genres),
        maturity=titles["maturity"].to_numpy(np.int16),
        available_tiers=titles["tiers"].to_numpy(np.uint8),
        worldwide=~restricted,
        country_titles=country_titles,
        date_added_days=added.astype(np.int32),
        release_year=released.dt.year.fillna(0).to_numpy(np.int16),
        is_original=titles["original"].to_numpy(bool),
        has_4k=titles["has_4k"].to_numpy(bool),
        has_hdr=titles["has_hdr"].to_numpy(bool),
        is_series=(titles["kind"] == Title.Kind.SERIES).to_numpy(bool),
        version=version,
    )


def _edit_version() -> str:
    try:
        return cache.get(VERSION_KEY) or ""
    except Exception:  # Redis down: the database part still notices imports
        log.warning("catalog version unreadable from the cache", exc_info=True)
        return ""


def _table_summary() -> str:
    """The title count and largest id: bulk imports send no signals. A count over 100K titles takes ~8 ms,
    so processes run it less often than the cache check."""
    summary = Title.objects.aggregate(count=Count("id"), last=Max("id"))
    return f"{summary['count']}:{summary['last']}"


class CatalogCache:
    """This process's CatalogIndex; `current()` rebuilds it when the shared version moved."""

    def __init__(self, *, check_seconds: float | None = None, table_check_seconds: float | None = None) -> None:
        self.check_seconds = settings.RECO_CATALOG_CHECK_SECONDS if check_seconds is None else check_seconds
        self.table_check_seconds = (
            settings.RECO_CATALOG_TABLE_CHECK_SECONDS if table_check_seconds is None else table_check_seconds
        )
        self._table_checked_at = float("-inf")
        self._table_summary = ""
        self._index: VersionedSnapshot[str, CatalogIndex] = VersionedSnapshot(
            "catalog", read_version=self._version, build=_build, check_seconds=lambda: self.check_seconds, log=log
        )

    def current(self) -> CatalogIndex:
        return self._index.get()

    def clear(self) -> None:
        self._index.clear()
        self._table_checked_at = float("-inf")

    def _version(self) -> str:
        now = time.monotonic()
        if now - self._table_checked_at >= self.table_check_seconds:
            self._table_checked_at, self._table_summary = now, _table_summary()
        return f"{_edit_version()}:{self._table_summary}"


def _build(version: str, _previous: CatalogIndex | None) -> CatalogIndex:
    started = time.perf_counter()
    index = catalog_index_build(version)
    log.info("catalog %s: %d titles in %.2f s", version, len(index), time.perf_counter() - started)
    return index


catalog_cache = CatalogCache()


@receiver(post_save, sender=Title)
@receiver(post_delete, sender=Title)
def _title_changed(**_: object) -> None:
    catalog_version_bump()


@receiver(m2m_changed, sender=Title.genres.through)
@receiver(m2m_changed, sender=Title.available_countries.through)
def _title_links_changed(action: str, **_: object) -> None:
    if action.startswith("post_"):
        catalog_version_bump()
