"""The catalog as in-process arrays for the request path: one row per title, in ascending id order.

Pure numpy (no Django): built by recommendations.serving.catalog_cache from the database, shared by the candidate
sources, the ranker's features, diversification and the business rules. Every per-title lookup is a
vectorised searchsorted or a boolean mask, never a loop over titles.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

GENRE_BITS = 32  # genre slots as bits of a uint32 mask (features.ml.definitions.GENRE_SLOTS)
WORLDWIDE = ""  # country code of titles with no country restriction


@dataclass(frozen=True, eq=False)
class CatalogIndex:
    """Arrays over the titles, ascending `content_ids`; `positions` maps ids to rows.

    genre_masks: uint32 bit i = the title has the genre in slot i (`genre_ids[i]`, ascending genre ids, as in
    the feature store's genre_indicator). available_tiers: the tier bit mask of catalog.Title.
    country_codes / country_titles: for each country, the sorted rows of titles restricted to it; titles
    with `worldwide` True are available everywhere.
    """

    content_ids: np.ndarray  # int64 (n,)
    names: np.ndarray  # object (n,) of str
    genre_masks: np.ndarray  # uint32 (n,)
    genre_ids: np.ndarray  # int64 (<= GENRE_BITS,)
    genre_names: tuple[str, ...]
    maturity: np.ndarray  # int16 (n,): MaturityRating value
    available_tiers: np.ndarray  # uint8 (n,)
    worldwide: np.ndarray  # bool (n,)
    country_titles: dict[str, np.ndarray]  # country code -> int64 rows restricted to (also) that country
    date_added_days: np.ndarray  # int32 (n,): days since 1970-01-01
    release_year: np.ndarray  # int16 (n,), 0 when unknown
    is_original: np.ndarray  # bool (n,)
    has_4k: np.ndarray  # bool (n,)
    has_hdr: np.ndarray  # bool (n,)
    is_series: np.ndarray  # bool (n,)
    version: str = ""
    _allowed_cache: dict[tuple[int, str, int], np.ndarray] = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return len(self.content_ids)

    def positions(self, content_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Rows of `content_ids` (clipped into range) and whether each id is in the catalog."""
        ids = np.asarray(content_ids, dtype=np.int64)
        rows = np.searchsorted(self.content_ids, ids)
        rows = np.minimum(rows, max(len(self.content_ids) - 1, 0))
        known = self.content_ids[rows] == ids if len(self.content_ids) else np.zeros(ids.shape, bool)
        return rows, known

    def allowed(self, *, tier: int, country: str, maturity_cap: int) -> np.ndarray:
        """Read-only bool (n,): titles a profile of this tier, country and maturity cap may be shown.

        Cached per (tier, country, cap): a handful of combinations serve every request.
        """
        key = (int(tier), country, int(maturity_cap))
        mask = self._allowed_cache.get(key)
        if mask is None:
            tier_bit = np.uint8(1 << (int(tier) - 1))
            in_country = self.worldwide.copy()
            restricted = self.country_titles.get(country)
            if restricted is not None:
                in_country[restricted] = True
            mask = in_country & ((self.available_tiers & tier_bit) != 0) & (self.maturity <= maturity_cap)
            mask.setflags(write=False)
            self._allowed_cache[key] = mask
        return mask

    def genre_mask_of(self, genre_ids: np.ndarray) -> np.uint32:
        """The bit mask of these genre ids (unknown ids ignored)."""
        ids = np.asarray(genre_ids, dtype=np.int64).ravel()
        slots = np.searchsorted(self.genre_ids, ids)
        known = slots < len(self.genre_ids)
        known[known] = self.genre_ids[slots[known]] == ids[known]
        bits = np.left_shift(np.uint32(1), slots[known].astype(np.uint32))
        return np.uint32(np.bitwise_or.reduce(bits, initial=np.uint32(0)))

    def genre_indicator(self, rows: np.ndarray) -> np.ndarray:
        """float32 (len(rows), GENRE_BITS) 0/1 genre slots of these rows."""
        bits = (self.genre_masks[rows, None] >> np.arange(GENRE_BITS, dtype=np.uint32)) & np.uint32(1)
        return bits.astype(np.float32)

    def main_genre_slot(self, rows: np.ndarray) -> np.ndarray:
        """Each row's lowest genre slot, int64; -1 for a title without genres."""
        masks = self.genre_masks[np.asarray(rows, np.int64)]
        lowest = masks & (~masks + np.uint32(1))  # isolate the lowest set bit
        return np.where(masks > 0, np.log2(np.maximum(lowest, 1)).astype(np.int64), -1)


def popcount32(values: np.ndarray) -> np.ndarray:
    """Number of set bits of each uint32 (genres per title)."""
    v = np.asarray(values, dtype=np.uint32)
    v = v - ((v >> np.uint32(1)) & np.uint32(0x55555555))
    v = (v & np.uint32(0x33333333)) + ((v >> np.uint32(2)) & np.uint32(0x33333333))
    v = (v + (v >> np.uint32(4))) & np.uint32(0x0F0F0F0F)
    return ((v * np.uint32(0x01010101)) >> np.uint32(24)).astype(np.int64)
