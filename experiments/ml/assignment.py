"""Deterministic arm assignment: a stable hash of (salt, profile id) picks an arm by its traffic share (pure)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

SHARES_TOLERANCE = 1e-6


def unit_interval(profile_id: int, salt: str) -> float:
    """A uniform number in [0, 1) fixed by the salt and the profile id: blake2b of f"{salt}:{profile_id}"."""
    digest = hashlib.blake2b(f"{salt}:{int(profile_id)}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64


def shares_check(shares: Sequence[float]) -> np.ndarray:
    """The shares as float64, or ValueError unless they are >= 0 and sum to 1."""
    values = np.asarray([float(share) for share in shares], dtype=np.float64)
    if not len(values):
        raise ValueError("an experiment needs at least one arm")
    if (values < 0).any() or (values > 1).any():
        raise ValueError(f"traffic shares must be between 0 and 1, not {values.tolist()}")
    if abs(values.sum() - 1.0) > SHARES_TOLERANCE:
        raise ValueError(f"traffic shares must sum to 1, not {values.sum():g}")
    return values


def assign_arm(profile_id: int, salt: str, shares: Sequence[float]) -> int:
    """The index of the profile's arm: the first whose cumulative share exceeds the profile's hash.

    The same (profile, salt, shares) always gives the same arm; a new salt reshuffles everyone. Changing the
    shares of a running experiment moves only the profiles near the boundaries that moved.
    """
    values = shares_check(shares)
    arm = int(np.searchsorted(np.cumsum(values), unit_interval(profile_id, salt), side="right"))
    return min(arm, len(values) - 1)  # cumulative float round-off below 1
