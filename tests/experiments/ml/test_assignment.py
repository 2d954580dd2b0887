"""experiments.ml.assignment: deterministic, stable, and faithful to the traffic shares."""

from __future__ import annotations

import numpy as np
import pytest

from experiments.ml.assignment import assign_arm, unit_interval


def test_the_same_profile_always_gets_the_same_arm():
    shares = [0.5, 0.3, 0.2]
    first = [assign_arm(profile_id, "salt-a", shares) for profile_id in range(1000)]
    again = [assign_arm(profile_id, "salt-a", shares) for profile_id in range(1000)]
    assert first == again


def test_the_hash_is_fixed_across_processes_and_versions():
    # blake2b of "salt-a:42" (8 bytes, big-endian) / 2**64: a regression guard against a changed recipe.
    assert unit_interval(42, "salt-a") == pytest.approx(
        int.from_bytes(__import__("hashlib").blake2b(b"salt-a:42", digest_size=8).digest(), "big") / 2**64
    )
    assert 0.0 <= unit_interval(42, "salt-a") < 1.0


def test_arms_follow_the_shares_over_100k_profiles():
    shares = [0.1, 0.6, 0.3]
    arms = np.array([assign_arm(profile_id, "exp-7", shares) for profile_id in range(100_000)])
    observed = np.bincount(arms, minlength=3) / len(arms)
    # Binomial sd at n = 100K is at most 0.0016: 0.006 is well over three of them.
    assert observed == pytest.approx(shares, abs=0.006)


def test_another_salt_reshuffles_profiles_independently():
    a = np.array([assign_arm(i, "salt-a", [0.5, 0.5]) for i in range(20_000)])
    b = np.array([assign_arm(i, "salt-b", [0.5, 0.5]) for i in range(20_000)])
    assert np.mean(a == b) == pytest.approx(0.5, abs=0.02)


def test_growing_an_arm_moves_only_profiles_into_it():
    before = np.array([assign_arm(i, "salt", [0.5, 0.5]) for i in range(10_000)])
    after = np.array([assign_arm(i, "salt", [0.6, 0.4]) for i in range(10_000)])
    moved = before != after
    assert (after[moved] == 0).all() and moved.mean() == pytest.approx(0.1, abs=0.015)


def test_a_zero_share_arm_gets_nobody():
    arms = {assign_arm(i, "salt", [0.5, 0.0, 0.5]) for i in range(5000)}
    assert arms == {0, 2}


@pytest.mark.parametrize(
    ("shares", "message"), [([0.5, 0.4], "sum to 1"), ([1.2, -0.2], "between 0 and 1"), ([], "at least one arm")]
)
def test_invalid_shares_are_refused(shares, message):
    with pytest.raises(ValueError, match=message):
        assign_arm(1, "salt", shares)
