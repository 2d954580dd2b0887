"""Hand-made CatalogIndex objects for the pure rules and diversification tests."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from recommendations.ml.catalog import CatalogIndex

ALL_TIERS = 0b111
DAY_2024_07_01 = 19905  # days since 1970-01-01


def make_catalog(
    content_ids: Sequence[int],
    *,
    genre_masks: Sequence[int] | None = None,
    genre_ids: Sequence[int] = (10, 20, 30, 40, 50, 60),
    maturity: Sequence[int] | None = None,
    available_tiers: Sequence[int] | None = None,
    is_original: Sequence[bool] | None = None,
    release_year: Sequence[int] | None = None,
    date_added_days: Sequence[int] | None = None,
    country_only: dict[str, Sequence[int]] | None = None,
) -> CatalogIndex:
    """A catalog of `content_ids` (ascending); genre bit i is genre id genre_ids[i]; worldwide unless in country_only.

    country_only: {country code: rows of titles restricted to that country}.
    """
    n = len(content_ids)
    restricted = {code: np.asarray(sorted(rows), dtype=np.int64) for code, rows in (country_only or {}).items()}
    worldwide = np.ones(n, dtype=bool)
    for rows in restricted.values():
        worldwide[rows] = False
    return CatalogIndex(
        content_ids=np.asarray(content_ids, dtype=np.int64),
        names=np.array([f"Title {i}" for i in content_ids], dtype=object),
        genre_masks=np.asarray(genre_masks if genre_masks is not None else [1] * n, dtype=np.uint32),
        genre_ids=np.asarray(genre_ids, dtype=np.int64),
        genre_names=tuple(f"Genre {g}" for g in genre_ids),
        maturity=np.asarray(maturity if maturity is not None else [0] * n, dtype=np.int16),
        available_tiers=np.asarray(available_tiers if available_tiers is not None else [ALL_TIERS] * n, dtype=np.uint8),
        worldwide=worldwide,
        country_titles=restricted,
        date_added_days=np.asarray(
            date_added_days if date_added_days is not None else [DAY_2024_07_01 - 1000] * n, dtype=np.int32
        ),
        release_year=np.asarray(release_year if release_year is not None else [2010] * n, dtype=np.int16),
        is_original=np.asarray(is_original if is_original is not None else [False] * n, dtype=bool),
        has_4k=np.zeros(n, dtype=bool),
        has_hdr=np.zeros(n, dtype=bool),
        is_series=np.zeros(n, dtype=bool),
        version="handmade",
    )
