"""Distinct title names for the synthetic world: repeats of a drawn name get a subtitle, so no two titles share
a name and editors never need "Name (year)" to tell them apart. Uses no random draws: the world's other data
(and every seeded figure measured on it) stays what it was."""

from __future__ import annotations

import numpy as np
import pandas as pd

SUBTITLE_FIRST = (
    "Winter Summer Autumn Spring First Long Red Blue Black White Deep High Open Dark Old New Far Late Early "
    "Green Silver Stone Salt Sun Moon"
).split()
SUBTITLE_SECOND = (
    "Road Light Song Night Tide Fire Season Chapter Line Map Gate Wind Rain Dawn Dusk Sky Sea Field House "
    "Year Game Call Trail Circle Harvest"
).split()
SUBTITLES = np.asarray([f"{first} {second}" for first in SUBTITLE_FIRST for second in SUBTITLE_SECOND], dtype=object)
SPREAD = 7919  # a prime: each name's repeats start at another subtitle, so no subtitle is everywhere
STRIDE = 27  # coprime with len(SUBTITLES) (625): a name's repeats differ in both words, and never twice the same


def distinct_title_names(names: np.ndarray) -> np.ndarray:
    """The first title of each name keeps it; the k-th repeat becomes "Name: Subtitle" (a different subtitle
    for each repeat of that name, and ", Part N" past len(SUBTITLES) repeats). Names hold no ":", so a
    subtitled name never meets a drawn one. Returns a new object array."""
    names = np.asarray(names, dtype=object)
    codes, _ = pd.factorize(names)
    repeat = pd.Series(codes).groupby(codes).cumcount().to_numpy()
    again = repeat > 0
    if not again.any():
        return names.copy()
    turn = repeat[again] - 1
    subtitle = SUBTITLES[(codes[again] * SPREAD + turn * STRIDE) % len(SUBTITLES)]
    part = turn // len(SUBTITLES)
    suffix = np.where(part > 0, ", Part " + (part + 1).astype(str).astype(object), "")
    out = names.copy()
    out[again] = names[again] + ": " + subtitle + suffix
    return out
