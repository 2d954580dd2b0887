"""NeuMF network, negative sampling and training."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from recommendations.ml.data import IdMap
from recommendations.ml.ncf import NCFRecommender, NeuralCollaborativeFiltering, sample_negatives, train_ncf
from tests.recommendations.ml.handmade import ACTION_TITLES, ACTION_USERS, DRAMA_TITLES, taste_groups


def test_forward_gives_one_logit_per_pair():
    network = NeuralCollaborativeFiltering(5, 7, embedding_dim=4, hidden_layers=(8, 4))
    logits = network(torch.tensor([0, 1, 4]), torch.tensor([6, 0, 3]))
    assert logits.shape == (3,)
    assert network.score_all(np.array([0, 2])).shape == (2, 7)


def test_negatives_are_never_positives_of_their_user():
    positives = sp.csr_matrix(np.array([[1, 1, 1, 0, 0, 0], [0, 0, 0, 1, 1, 0]], dtype=np.float32))
    users = np.array([0, 0, 1, 1, 1])
    negatives = sample_negatives(positives, users, 50, np.random.default_rng(0))
    assert negatives.shape == (5, 50)
    assert np.isin(negatives[:2], [3, 4, 5]).all() and np.isin(negatives[2:], [0, 1, 2, 5]).all()


def test_training_lowers_the_loss_and_is_deterministic():
    positives = sp.random(30, 40, density=0.2, format="csr", dtype=np.float32, random_state=1)
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        network = NeuralCollaborativeFiltering(30, 40, 4, (8, 4))
        runs.append(train_ncf(network, positives, n_epochs=5, batch_size=64, learning_rate=0.01, seed=3))
    assert runs[0] == runs[1]
    assert runs[0][-1] < runs[0][0]


def test_predict_takes_raw_ids_through_the_id_maps():
    model = NCFRecommender(2, (4,), n_epochs=60, batch_size=64, learning_rate=0.01).fit(taste_groups())
    assert isinstance(model.network.user_map, IdMap)
    liked = model.predict(int(ACTION_USERS[0]), int(ACTION_TITLES[0]))
    other = model.predict(int(ACTION_USERS[0]), int(DRAMA_TITLES[0]))
    assert 0.0 <= other < liked <= 1.0
    both = model.network.predict(np.array([ACTION_USERS[0]]), np.array([ACTION_TITLES[0], DRAMA_TITLES[0]]))
    assert both.shape == (2,)


def test_epoch_callback_sees_every_epoch():
    seen = []
    NCFRecommender(2, (4,), n_epochs=3, batch_size=64).fit(taste_groups(), on_epoch_end=lambda e, loss: seen.append(e))
    assert seen == [1, 2, 3]
