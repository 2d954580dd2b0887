"""The genre-taste model: W learned from completions, per-title residual posteriors, Thompson draws."""

from __future__ import annotations

import numpy as np
import pytest

from recommendations.ml import taste


def _world(seed: int = 0, viewers: int = 400, per_viewer: int = 30, slots: int = 6):
    """Viewers who like one genre and complete titles of genre (favourite + 1) % slots."""
    rng = np.random.default_rng(seed)
    favourite = rng.integers(0, slots, viewers)
    viewer = np.repeat(np.arange(viewers), per_viewer)
    genre = np.where(rng.random(len(viewer)) < 0.6, favourite[viewer], rng.integers(0, slots, len(viewer)))
    genres = np.eye(slots, dtype=np.float32)[genre]
    titles = 1 + genre * 10 + rng.integers(0, 10, len(viewer))
    liked = genre == (favourite[viewer] + 1) % slots
    completed = rng.random(len(viewer)) < np.where(liked, 0.9, 0.3)
    return viewer, genres, completed, titles, favourite


def test_the_fit_learns_which_genre_taste_carries_over_to_which_titles():
    viewer, genres, completed, _titles, _ = _world()
    model = taste.fit(viewer, genres, completed)

    w = model.weights
    assert w.shape == (6, 6) and model.viewings == len(viewer)
    for a in range(6):  # a taste for genre a finishes titles of genre a + 1 best
        assert np.argmax(w[a]) == (a + 1) % 6
    shares = np.eye(6, dtype=np.float32)[2]
    scores = model.score(shares, np.eye(6, dtype=np.float32))
    assert np.argmax(scores) == 3


def test_the_outcome_posterior_is_widest_for_titles_never_shown_and_thompson_draws_explore_them():
    rng = np.random.default_rng(0)
    ids = np.repeat([1, 2, 3], 400)
    positions = rng.integers(1, 21, len(ids))
    looked = rng.random(len(ids)) < taste.examination(positions)
    clicked = looked & (rng.random(len(ids)) < np.select([ids == 1, ids == 2], [0.6, 0.2], 0.05))
    outcomes = taste.title_outcomes(ids, positions, clicked)

    mean = outcomes.draw(np.array([1, 2, 3, 99]), None)
    assert mean[0] > 1.0 > mean[1] > mean[2] and mean[3] == pytest.approx(1.0)  # 99: never shown: the prior
    draws = np.stack([outcomes.draw(np.array([1, 99]), np.random.default_rng(s)) for s in range(300)])
    spread = draws.std(axis=0) / draws.mean(axis=0)
    assert spread[1] > 3 * spread[0]
    assert taste.title_outcomes(np.empty(0), np.empty(0), np.empty(0, bool)) is None


def test_viewer_shares_identity_prior_and_a_round_trip(tmp_path):
    assert taste.viewer_shares(np.zeros((0, 4))) is None
    np.testing.assert_allclose(taste.viewer_shares(np.array([[1, 1, 0, 0], [1, 0, 0, 0]])), [2 / 3, 1 / 3, 0, 0])
    np.testing.assert_allclose(taste.title_vectors(np.array([[1, 1, 0], [0, 0, 0]])), [[0.5, 0.5, 0], [0, 0, 0]])
    assert taste.fit(np.empty(0), np.zeros((0, 4)), np.empty(0, bool)).weights.tolist() == np.eye(4).tolist()
    assert taste.GenreTaste.load(tmp_path) is None

    viewer, genres, completed, titles, _ = _world(seed=1)
    model = taste.fit(viewer, genres, completed)
    model.save(tmp_path)
    np.testing.assert_array_equal(taste.GenreTaste.load(tmp_path).weights, model.weights)
    outcomes = taste.title_outcomes(titles, np.ones(len(titles)), completed)
    outcomes.save(tmp_path)
    np.testing.assert_array_equal(
        taste.TitleOutcomes.load(tmp_path).draw(titles[:20], None), outcomes.draw(titles[:20], None)
    )
