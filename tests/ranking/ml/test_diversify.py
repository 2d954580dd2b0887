"""MMR and the homepage mix targets on hand-made candidates whose right answer is obvious."""

from __future__ import annotations

import numpy as np
import pytest

from ranking.ml.diversify import (
    DiversityReport,
    DiversityTargets,
    blend_vectors,
    diversify,
    diversify_titles,
    diversity_report,
    genre_vectors,
    mmr,
    recent_titles,
    usual_genre_mask,
)
from tests.ranking.ml.handmade import DAY_2024_07_01, make_catalog

A, B, C, D, E, F, G = (np.uint32(1 << slot) for slot in range(7))


def genre_spread_candidates():
    """Relevance favours genre A strongly: items 0-5 are A, 6-8 B, 9-11 C."""
    masks = np.array([A] * 6 + [B] * 3 + [C] * 3, dtype=np.uint32)
    relevance = np.linspace(1.0, 0.0, len(masks))
    return relevance, masks


def narrow_top_candidates(n_top: int = 30, n_tail: int = 30):
    """The most relevant items are all usual genres (A, B) and mostly older; the tail has five other genres."""
    top_masks = [A if i % 2 == 0 else B for i in range(n_top)]
    tail_masks = [(C, D, E, F, G)[i % 5] for i in range(n_tail)]
    masks = np.array(top_masks + tail_masks, dtype=np.uint32)
    relevance = np.concatenate([np.linspace(3.0, 2.0, n_top), np.linspace(1.0, 0.0, n_tail)])
    recent = np.array([i % 10 == 9 for i in range(n_top)] + [i % 2 == 1 for i in range(n_tail)])
    return relevance, masks, recent


def test_lambda_one_is_pure_relevance_order():
    rng = np.random.default_rng(3)
    relevance = rng.normal(size=40)
    vectors = genre_vectors(rng.integers(1, 2**6, size=40).astype(np.uint32))

    expected = np.argsort(-relevance, kind="stable")[:15]
    np.testing.assert_array_equal(mmr(relevance, vectors, 1.0, 15), expected)
    np.testing.assert_array_equal(mmr(relevance, vectors @ vectors.T, 1.0, 15), expected)


def test_lambda_zero_spreads_genres():
    relevance, masks = genre_spread_candidates()

    order = mmr(relevance, genre_vectors(masks), 0.0, 3)

    assert {int(masks[i]) for i in order} == {int(A), int(B), int(C)}
    assert order[0] == 0  # with no relevance to separate them, the first pick is the first candidate


def test_mmr_trades_relevance_for_novelty_in_between():
    relevance, masks = genre_spread_candidates()

    order = mmr(relevance, genre_vectors(masks), 0.5, 4)

    assert order[0] == 0
    assert {int(masks[i]) for i in order[:3]} == {int(A), int(B), int(C)}


def test_matrix_and_vectors_give_the_same_order():
    rng = np.random.default_rng(7)
    vectors = rng.normal(size=(50, 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    relevance = rng.random(50)

    np.testing.assert_array_equal(mmr(relevance, vectors, 0.6, 20), mmr(relevance, vectors @ vectors.T, 0.6, 20))


def test_square_vectors_can_be_named_as_vectors():
    vectors = np.eye(4, dtype=np.float32)[:, ::-1].copy()  # n == d: would read as a matrix
    relevance = np.array([0.9, 0.8, 0.7, 0.6])

    assert mmr(relevance, vectors, 0.5, 4, similarity_kind="vectors").tolist() == [0, 1, 2, 3]


def test_mmr_returns_at_most_n_distinct_candidates():
    relevance, masks = genre_spread_candidates()

    order = mmr(relevance, genre_vectors(masks), 0.7, 100)

    assert sorted(order.tolist()) == list(range(len(masks)))
    assert len(mmr(relevance, genre_vectors(masks), 0.7, 0)) == 0
    assert len(mmr(np.zeros(0), np.zeros((0, 32)), 0.7, 5)) == 0


def test_mmr_refuses_bad_arguments():
    relevance, masks = genre_spread_candidates()
    with pytest.raises(ValueError, match="lam"):
        mmr(relevance, genre_vectors(masks), 1.5, 3)
    with pytest.raises(ValueError, match="shape"):
        mmr(relevance, genre_vectors(masks)[:5], 0.5, 3)


def test_diversify_meets_every_target_when_the_candidates_allow():
    relevance, masks, recent = narrow_top_candidates()
    usual = int(A | B)
    before = diversity_report(np.argsort(-relevance), masks, recent, usual_genres=usual)
    assert (before.distinct_genres, before.share_outside_usual) == (2, 0.0)  # the plain ranking misses them

    for lam in (1.0, 0.7):
        order = diversify(relevance, masks, recent, k=30, usual_genres=usual, lam=lam)
        report = diversity_report(order, masks, recent, usual_genres=usual)

        assert report.distinct_genres >= 5
        assert 0.2 <= report.share_recent <= 0.8
        assert 0.1 <= report.share_outside_usual <= 0.2
        assert len(set(order.tolist())) == len(order) == 30


def test_repair_keeps_the_most_relevant_items_on_top():
    relevance, masks, recent = narrow_top_candidates()

    order = diversify(relevance, masks, recent, k=30, usual_genres=int(A | B), lam=1.0)

    assert order[:5].tolist() == [0, 1, 2, 3, 4]  # swaps replace the lowest-ranked items first


def test_diversify_pulls_back_when_too_much_is_outside_the_usual_genres():
    relevance, masks, recent = narrow_top_candidates()
    usual = int(C | D | E | F | G | B)  # the top items in A are now "outside": 50 % of the plain top 20

    order = diversify(relevance, masks, recent, k=30, usual_genres=usual, lam=1.0)

    assert 0.1 <= diversity_report(order, masks, recent, usual_genres=usual).share_outside_usual <= 0.2


def test_diversify_degrades_gracefully_when_candidates_cannot_meet_the_targets():
    masks = np.array([A, B, C] * 10, dtype=np.uint32)  # three genres, nothing recent
    relevance = np.linspace(1, 0, 30)
    recent = np.zeros(30, dtype=bool)

    order = diversify(relevance, masks, recent, k=25, usual_genres=int(A))
    report = diversity_report(order, masks, recent, usual_genres=int(A))

    assert report.distinct_genres == 3
    assert report.share_recent == 0.0
    assert report.share_outside_usual >= 0.1  # B and C are outside; the 20 % cap cannot hold with A scarce
    assert len(set(order.tolist())) == 25


def test_without_usual_genres_there_is_no_outside_target():
    relevance, masks, recent = narrow_top_candidates()

    order = diversify(relevance, masks, recent, k=20, usual_genres=0, lam=1.0)

    assert diversity_report(order, masks, recent, usual_genres=0).distinct_genres >= 5


def test_short_lists_scale_the_targets():
    relevance, masks, recent = narrow_top_candidates()

    order = diversify(relevance, masks, recent, k=5, usual_genres=int(A | B), lam=1.0)

    # Quotas of 5 items: 1 recent, 1 older, exactly 1 outside; so 3 genres, not 5 (which needs 3 outsiders).
    assert diversity_report(order, masks, recent, usual_genres=int(A | B)) == DiversityReport(5, 3, 0.2, 0.2)


def test_custom_targets():
    relevance, masks, recent = narrow_top_candidates()
    targets = DiversityTargets(
        window=10, min_genres=3, min_recent_share=0.0, min_older_share=0.0, outside_usual_share=(0.0, 1.0)
    )

    order = diversify(relevance, masks, recent, k=10, usual_genres=int(A | B), lam=1.0, targets=targets)

    assert diversity_report(order, masks, recent, usual_genres=int(A | B), window=10).distinct_genres == 3


def test_diversity_report_counts_the_top_window():
    masks = np.array([A, A | B, C, 0, D], dtype=np.uint32)
    recent = np.array([True, False, False, True, True])

    report = diversity_report(np.array([0, 1, 2, 3, 4]), masks, recent, usual_genres=int(A), window=4)

    assert report.window == 4
    assert report.distinct_genres == 3
    assert report.share_recent == 0.5
    assert report.share_outside_usual == 0.25  # C only: the genre-less title is neither inside nor out


def test_usual_genre_mask_covers_most_of_the_affinity():
    affinity = np.zeros(32)
    affinity[[0, 1, 2, 3]] = [0.5, 0.3, 0.1, 0.1]

    assert usual_genre_mask(affinity) == 0b11
    assert usual_genre_mask(affinity, coverage=0.95) == 0b1111
    assert usual_genre_mask(affinity, coverage=1.0, max_genres=3) == 0b111
    assert usual_genre_mask(np.zeros(32)) == 0


def test_blended_vectors_mix_genre_and_factor_cosines():
    genre_unit = genre_vectors(np.array([A, A | B, C], dtype=np.uint32))
    factors = np.array([[1.0, 0.0], [0.6, 0.8], [0.0, 3.0]], dtype=np.float32)

    blended = blend_vectors(genre_unit, factors, 0.25)

    genre_cos = genre_unit @ genre_unit.T
    unit = factors / np.linalg.norm(factors, axis=1, keepdims=True)
    np.testing.assert_allclose(blended @ blended.T, 0.75 * genre_cos + 0.25 * unit @ unit.T, atol=1e-6)


def test_diversify_titles_reads_genres_and_recency_from_the_catalog():
    catalog = make_catalog(
        list(range(1, 31)),
        genre_masks=[A] * 20 + [B, C, D, E, F] * 2,
        release_year=[2010] * 16 + [2024] * 4 + [2023, 1990] * 5,
    )
    rows = np.arange(30)
    relevance = np.linspace(1, 0, 30)

    order = diversify_titles(catalog, rows, relevance, k=20, today_days=DAY_2024_07_01, usual_genres=int(A))
    recent = recent_titles(catalog, rows, today_days=DAY_2024_07_01)

    assert recent.sum() == 9
    report = diversity_report(order, catalog.genre_masks, recent, usual_genres=int(A))
    assert report.distinct_genres >= 5 and report.share_recent >= 0.2


def test_recent_titles_fall_back_to_date_added_without_a_release_year():
    catalog = make_catalog([1, 2], release_year=[0, 0], date_added_days=[DAY_2024_07_01 - 30, DAY_2024_07_01 - 5000])

    assert recent_titles(catalog, np.arange(2), today_days=DAY_2024_07_01).tolist() == [True, False]
