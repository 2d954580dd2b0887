"""How the screen and the hour tilt a ranked list (pure numpy): 4K and HDR on a TV, series on a phone or tablet,
episodes by day and films in the evening.

The ranker has context features, yet a page barely changed with them: the histories it learns from carry no
context signal (the synthetic world draws titles whatever the device and hour; MovieLens has no device at all),
and a ranking query holds one context, so nothing teaches a tree that a TV viewer's 4K title is worth more. The
policy says so outright. Each multiplier m acts like a boost (ranking.ml.rules): on log-odds-like ranker scores
it adds log(m), on non-negative scores it multiplies.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recommendations.ml.catalog import CatalogIndex

TV, MOBILE, TABLET, WEB, CONSOLE = 1, 2, 3, 4, 5  # users.models.DeviceType
BIG_SCREENS = (TV, CONSOLE)
HANDHELDS = (MOBILE, TABLET)
DAYTIME = range(6, 17)  # commutes, breaks: an episode fits
EVENING = range(19, 24)  # a film night


@dataclass(frozen=True)
class ContextPolicy:
    big_screen_4k: float = 1.8
    big_screen_hdr: float = 1.25  # on top of 4K for a title with both
    handheld_series: float = 1.6
    daytime_series: float = 1.25
    evening_film: float = 1.25


DEFAULT_POLICY = ContextPolicy()


def context_multipliers(
    catalog: CatalogIndex, rows: np.ndarray, *, device_type: int, hour: int, policy: ContextPolicy = DEFAULT_POLICY
) -> np.ndarray:
    """float64 (n,): each candidate's multiplier for this device and local hour (1 where nothing applies)."""
    rows = np.asarray(rows, np.int64)
    factor = np.ones(len(rows))
    series = catalog.is_series[rows]
    if device_type in BIG_SCREENS:
        factor *= np.where(catalog.has_4k[rows], policy.big_screen_4k, 1.0)
        factor *= np.where(catalog.has_hdr[rows], policy.big_screen_hdr, 1.0)
    elif device_type in HANDHELDS:
        factor *= np.where(series, policy.handheld_series, 1.0)
    if hour in DAYTIME:
        factor *= np.where(series, policy.daytime_series, 1.0)
    elif hour in EVENING:
        factor *= np.where(series, 1.0, policy.evening_film)
    return factor


def context_tilt(scores: np.ndarray, multipliers: np.ndarray, *, log_scale: bool) -> np.ndarray:
    """The scores with the multipliers applied (a new array)."""
    scores = np.asarray(scores, np.float32)
    tilted: np.ndarray = (scores + np.log(multipliers) if log_scale else scores * multipliers).astype(np.float32)
    return tilted
