"""A progress bar for loaders that stays quiet when the command runs with --verbosity 0."""

from __future__ import annotations

from tqdm import tqdm


def progress_bar(*, total: int, desc: str, verbosity: int, unit: str = "rows") -> tqdm:
    return tqdm(total=total, desc=desc, unit=f" {unit}", unit_scale=True, disable=verbosity == 0, leave=True)
