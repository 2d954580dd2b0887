"""Content similarity: TF-IDF vectors, blockwise top-k cosine, cold-start reach."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recommendations.ml.content import ContentSimilarity, cosine_top_k, tfidf_vectors
from tests.recommendations.ml.handmade import (
    ACTION_TITLES,
    ACTION_USERS,
    DRAMA_TITLES,
    NEW_ACTION_TITLE,
    catalog,
    taste_groups,
)


@pytest.fixture(scope="module")
def model():
    return ContentSimilarity(n_neighbors=50).fit(taste_groups(), catalog())


def test_vectors_are_l2_normalised_and_rare_terms_weigh_more():
    titles = pd.DataFrame({"content_id": [1, 2, 3], "genres": [["Drama", "War"], ["Drama"], "Drama|Comedy"]})
    vectors = tfidf_vectors(titles, {"genres": 1.0}).toarray()
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-6)
    assert vectors.shape == (3, 3)
    assert vectors[0].max() > vectors[0][vectors[0] > 0].min()  # "War" (1 title) outweighs "Drama" (3)


def test_blockwise_top_k_equals_the_dense_computation():
    rng = np.random.default_rng(0)
    titles = pd.DataFrame(
        {
            "content_id": np.arange(40),
            "genres": [list(rng.choice(list("abcdefgh"), 3, replace=False)) for _ in range(40)],
            "cast": [list(rng.choice(list("pqrstuvwxyz"), 2, replace=False)) for _ in range(40)],
        }
    )
    vectors = tfidf_vectors(titles, {"genres": 1.0, "cast": 0.5})
    blockwise = cosine_top_k(vectors, k=5, block_rows=7).toarray()
    dense = (vectors @ vectors.T).toarray()
    np.fill_diagonal(dense, 0)
    assert ((blockwise > 0).sum(axis=1) <= 5).all() and np.diag(blockwise).max() == 0
    for row in range(40):  # each kept value is the true cosine, and nothing better was left out
        kept = blockwise[row] > 0
        np.testing.assert_allclose(blockwise[row, kept], dense[row, kept], rtol=1e-5)
        assert dense[row, ~kept].max(initial=0) <= blockwise[row, kept].min() + 1e-6


def test_a_new_title_with_no_views_is_reachable(model):
    reached = {item for item, _ in model.recommend(int(ACTION_USERS[0]), n=3)}
    assert NEW_ACTION_TITLE in reached
    assert NEW_ACTION_TITLE in {item for item, _ in model.similar(int(ACTION_TITLES[0]), n=20)}


def test_similar_titles_share_metadata(model):
    similar = model.similar(int(DRAMA_TITLES[0]), n=5)
    assert len(similar) == 5 and all(item in DRAMA_TITLES for item, _ in similar)
    assert all(score == pytest.approx(1.0) for _, score in similar)


def test_recommend_from_a_history_given_at_serving_time(model):
    ids, scores = model.recommend_from_history(np.array([DRAMA_TITLES[0], 999_999]), np.array([5.0, 5.0]), n=12)
    reached = ids[ids >= 0]
    assert len(reached) == 9 and set(reached) <= set(DRAMA_TITLES) - {DRAMA_TITLES[0]}
    assert np.isneginf(scores[9:]).all()


def test_catalog_needs_content_ids_and_a_known_field():
    with pytest.raises(ValueError, match="content_id"):
        ContentSimilarity().fit(taste_groups(), pd.DataFrame({"genres": [["a"]]}))
    with pytest.raises(ValueError, match="content fields"):
        ContentSimilarity().fit(taste_groups(), pd.DataFrame({"content_id": [1], "plot": ["x"]}))
