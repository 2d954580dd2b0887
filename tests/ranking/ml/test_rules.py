"""apply_rules on hand-made catalogs: suppressions, tier rules and the kids cap filter; boosts re-score."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ranking.ml.rules import (
    NO_END,
    NO_START,
    TARGET_GENRE,
    TARGET_ORIGINALS,
    TARGET_TITLE,
    RulesSnapshot,
    apply_rules,
)
from tests.ranking.ml.handmade import make_catalog

NOW = 1_750_000_000.0
BASIC, STANDARD, PREMIUM = 1, 2, 3
DRAMA, COMEDY, HORROR = 10, 20, 30  # genre ids of bits 0, 1, 2

# Titles 101..106: genres drama, comedy, horror, drama+comedy, none, drama; 103 is an original, 105 is rated 16.
CATALOG = make_catalog(
    [101, 102, 103, 104, 105, 106],
    genre_masks=[0b001, 0b010, 0b100, 0b011, 0b000, 0b001],
    is_original=[False, False, True, False, False, False],
    maturity=[0, 7, 13, 7, 16, 0],
)
ROWS = np.arange(6)
SCORES = np.array([0.5, -1.0, -2.0, 1.5, 0.0, -0.5], dtype=np.float32)


def boosts(*entries: dict) -> dict:
    """Boost arrays from entries of kind, target, multiplier and optional priority, window and countries."""
    return {
        "boost_target_kind": np.array([e["kind"] for e in entries], dtype=np.int64),
        "boost_target_id": np.array([e.get("target", 0) for e in entries], dtype=np.int64),
        "boost_multiplier": np.array([e["multiplier"] for e in entries], dtype=np.float64),
        "boost_starts": np.array([e.get("starts", NO_START) for e in entries], dtype=np.float64),
        "boost_ends": np.array([e.get("ends", NO_END) for e in entries], dtype=np.float64),
        "boost_countries": tuple(frozenset(e.get("countries", ())) for e in entries),
        "boost_priority": np.array([e.get("priority", 0) for e in entries], dtype=np.int64),
    }


def suppressions(*entries: dict) -> dict:
    return {
        "suppression_title_id": np.array([e["title"] for e in entries], dtype=np.int64),
        "suppression_starts": np.array([e.get("starts", NO_START) for e in entries], dtype=np.float64),
        "suppression_ends": np.array([e.get("ends", NO_END) for e in entries], dtype=np.float64),
        "suppression_countries": tuple(frozenset(e.get("countries", ())) for e in entries),
    }


def tier_rules(*entries: tuple[int, int, int]) -> dict:
    """(target kind, target id, allowed tier mask) per rule."""
    kinds, targets, tiers = zip(*entries, strict=True) if entries else ((), (), ())
    return {
        "tier_rule_target_kind": np.array(kinds, dtype=np.int64),
        "tier_rule_target_id": np.array(targets, dtype=np.int64),
        "tier_rule_tiers": np.array(tiers, dtype=np.int64),
    }


def run(snapshot: RulesSnapshot, *, country="US", tier=PREMIUM, is_kids=False, cap=18, now=NOW, scores=SCORES, **kw):
    return apply_rules(
        snapshot,
        CATALOG,
        ROWS,
        scores,
        country=country,
        tier=tier,
        is_kids=is_kids,
        maturity_cap=cap,
        now_epoch=now,
        **kw,
    )


def test_no_rules_keep_every_available_title_and_leave_scores_alone():
    scores, keep, boosted = run(RulesSnapshot())

    assert scores.dtype == np.float32
    np.testing.assert_array_equal(scores, SCORES)
    assert keep.all()
    assert not boosted.any()


def test_catalog_availability_still_applies():
    catalog = make_catalog([1, 2, 3], available_tiers=[0b100, 0b111, 0b111], country_only={"GB": [2]})

    _, keep, _ = apply_rules(
        RulesSnapshot(),
        catalog,
        np.arange(3),
        np.zeros(3),
        country="US",
        tier=BASIC,
        is_kids=False,
        maturity_cap=18,
        now_epoch=NOW,
    )

    assert keep.tolist() == [False, True, False]


def test_suppression_applies_only_in_its_countries():
    snapshot = RulesSnapshot(**suppressions({"title": 102, "countries": {"US", "CA"}}))

    assert run(snapshot, country="US").keep.tolist() == [True, False, True, True, True, True]
    assert run(snapshot, country="GB").keep.all()


def test_suppression_without_countries_applies_everywhere():
    snapshot = RulesSnapshot(**suppressions({"title": 104}))

    for country in ("US", "BR", "JP"):
        assert run(snapshot, country=country).keep.tolist() == [True, True, True, False, True, True]


def test_suppression_applies_only_inside_its_window():
    snapshot = RulesSnapshot(**suppressions({"title": 101, "starts": NOW - 10, "ends": NOW + 10}))

    assert not run(snapshot, now=NOW).keep[0]
    assert run(snapshot, now=NOW - 11).keep[0]
    assert run(snapshot, now=NOW + 10).keep[0]  # windows are half-open: the end is outside


def test_genre_tier_rule_hides_its_titles_from_other_tiers():
    snapshot = RulesSnapshot(**tier_rules((TARGET_GENRE, DRAMA, 0b100)))  # drama: premium only

    assert run(snapshot, tier=BASIC).keep.tolist() == [False, True, True, False, True, False]
    assert run(snapshot, tier=PREMIUM).keep.all()


def test_every_matching_tier_rule_must_allow_the_tier():
    snapshot = RulesSnapshot(**tier_rules((TARGET_GENRE, COMEDY, 0b110), (TARGET_TITLE, 104, 0b101)))

    assert run(snapshot, tier=STANDARD).keep.tolist() == [True, True, True, False, True, True]
    assert run(snapshot, tier=BASIC).keep.tolist() == [True, False, True, False, True, True]
    assert run(snapshot, tier=PREMIUM).keep.all()


def test_originals_tier_rule():
    snapshot = RulesSnapshot(**tier_rules((TARGET_ORIGINALS, 0, 0b110)))

    assert run(snapshot, tier=BASIC).keep.tolist() == [True, True, False, True, True, True]


def test_kids_profiles_are_capped_by_the_kids_policy():
    snapshot = RulesSnapshot(kids_maturity_cap=7)

    assert run(snapshot, is_kids=True, cap=13).keep.tolist() == [True, True, False, True, False, True]
    assert run(snapshot, is_kids=True, cap=0).keep.tolist() == [True, False, False, False, False, True]
    assert run(snapshot, is_kids=False, cap=13).keep.tolist() == [True, True, True, True, False, True]


def test_boost_adds_the_log_of_its_multiplier_to_ranker_scores():
    snapshot = RulesSnapshot(**boosts({"kind": TARGET_ORIGINALS, "multiplier": 4.0}))

    scores, keep, boosted = run(snapshot)

    assert boosted.tolist() == [False, False, True, False, False, False]
    assert scores[2] == pytest.approx(-2.0 + math.log(4.0))
    np.testing.assert_array_equal(np.delete(scores, 2), np.delete(SCORES, 2))
    assert keep.all()


def test_boost_of_a_negative_score_still_raises_it_and_a_demotion_lowers_it():
    snapshot = RulesSnapshot(
        **boosts(
            {"kind": TARGET_TITLE, "target": 102, "multiplier": 3.0},
            {"kind": TARGET_TITLE, "target": 101, "multiplier": 0.5},
        )
    )
    scores, _, boosted = run(snapshot)

    assert scores[1] > SCORES[1]  # -1.0 was boosted up, not down
    assert scores[0] < SCORES[0]
    assert boosted.tolist() == [True, True, False, False, False, False]


def test_genre_boost_matches_every_title_with_that_genre():
    snapshot = RulesSnapshot(**boosts({"kind": TARGET_GENRE, "target": COMEDY, "multiplier": 2.0}))

    assert run(snapshot).boosted.tolist() == [False, True, False, True, False, False]


def test_boost_of_a_genre_the_catalog_does_not_know_matches_nothing():
    snapshot = RulesSnapshot(**boosts({"kind": TARGET_GENRE, "target": 999, "multiplier": 2.0}))

    assert not run(snapshot).boosted.any()


def test_only_the_highest_priority_boost_counts():
    snapshot = RulesSnapshot(
        **boosts(
            {"kind": TARGET_GENRE, "target": DRAMA, "multiplier": 10.0, "priority": 1},
            {"kind": TARGET_TITLE, "target": 104, "multiplier": 2.0, "priority": 5},
        )
    )
    scores, _, _ = run(snapshot)

    assert scores[3] == pytest.approx(1.5 + math.log(2.0))  # drama too, but the title boost outranks it
    assert scores[0] == pytest.approx(0.5 + math.log(10.0))


def test_boosts_of_equal_priority_multiply():
    snapshot = RulesSnapshot(
        **boosts(
            {"kind": TARGET_GENRE, "target": DRAMA, "multiplier": 2.0, "priority": 3},
            {"kind": TARGET_GENRE, "target": COMEDY, "multiplier": 3.0, "priority": 3},
        )
    )

    assert run(snapshot).scores[3] == pytest.approx(1.5 + math.log(6.0))


def test_boost_applies_only_in_its_countries_and_window():
    snapshot = RulesSnapshot(
        **boosts(
            {"kind": TARGET_TITLE, "target": 101, "multiplier": 2.0, "countries": {"GB"}},
            {"kind": TARGET_TITLE, "target": 106, "multiplier": 2.0, "starts": NOW + 60},
        )
    )

    assert run(snapshot, country="US").boosted.tolist() == [False] * 6
    assert run(snapshot, country="GB").boosted.tolist() == [True, False, False, False, False, False]
    assert run(snapshot, country="US", now=NOW + 60).boosted.tolist() == [False] * 5 + [True]


def test_linear_scale_multiplies_non_negative_scores():
    snapshot = RulesSnapshot(**boosts({"kind": TARGET_ORIGINALS, "multiplier": 1.5}))
    positive = np.array([1, 2, 4, 8, 16, 32], dtype=np.float32)

    scores, _, _ = run(snapshot, scores=positive, score_scale="linear")

    assert scores.tolist() == [1, 2, 6, 8, 16, 32]
    with pytest.raises(ValueError, match="non-negative"):
        run(snapshot, score_scale="linear")


def test_suppressed_and_boosted_title_is_still_dropped():
    snapshot = RulesSnapshot(
        **boosts({"kind": TARGET_TITLE, "target": 101, "multiplier": 5.0}), **suppressions({"title": 101})
    )
    _, keep, boosted = run(snapshot)

    assert boosted[0] and not keep[0]


def test_candidates_can_be_any_subset_of_rows_in_any_order():
    snapshot = RulesSnapshot(
        **suppressions({"title": 103}), **boosts({"kind": TARGET_TITLE, "target": 106, "multiplier": 2.0})
    )
    rows = np.array([5, 2, 0])

    _scores, keep, boosted = apply_rules(
        snapshot,
        CATALOG,
        rows,
        SCORES[rows],
        country="US",
        tier=PREMIUM,
        is_kids=False,
        maturity_cap=18,
        now_epoch=NOW,
    )

    assert keep.tolist() == [True, False, True]
    assert boosted.tolist() == [True, False, False]
    assert (
        len(
            apply_rules(
                snapshot,
                CATALOG,
                rows[:0],
                SCORES[:0],
                country="US",
                tier=1,
                is_kids=False,
                maturity_cap=18,
                now_epoch=NOW,
            ).keep
        )
        == 0
    )


def test_mismatched_inputs_are_refused():
    with pytest.raises(ValueError, match="same length"):
        run(RulesSnapshot(), scores=SCORES[:3])
    with pytest.raises(ValueError, match="one entry per boost"):
        RulesSnapshot(boost_target_kind=np.array([0]))
    with pytest.raises(ValueError, match="> 0"):
        RulesSnapshot(**boosts({"kind": TARGET_ORIGINALS, "multiplier": 0.0}))


def test_next_window_edge_is_the_nearest_future_start_or_end():
    snapshot = RulesSnapshot(
        **boosts({"kind": TARGET_ORIGINALS, "multiplier": 2.0, "starts": NOW - 5, "ends": NOW + 100}),
        **suppressions({"title": 101, "starts": NOW + 30}),
    )

    assert snapshot.next_window_edge(NOW) == NOW + 30
    assert snapshot.next_window_edge(NOW + 100) is None
