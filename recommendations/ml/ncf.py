"""Neural collaborative filtering (NeuMF: GMF and MLP towers fused), its trainer and its recommender wrapper."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
from torch import nn

from recommendations.ml import defaults
from recommendations.ml.base import Recommender
from recommendations.ml.data import IdMap

WEIGHTS_FILE = "network.pt"


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


class NeuralCollaborativeFiltering(nn.Module):
    """NeuMF (He et al. 2017): logit = h · [GMF(p_u ⊙ q_i), MLP([p'_u, q'_i])].

    The MLP's user and item embeddings are hidden_layers[0] // 2 wide each; the GMF's embedding_dim wide.
    `user_map` / `item_map` translate raw ids to embedding rows for `predict`; without them the ids are the rows,
    as `forward` takes them (the design's manual training loop).
    """

    def __init__(
        self,
        n_users: int,
        n_items: int,
        embedding_dim: int = 16,
        hidden_layers: Sequence[int] = (64, 32, 16),
        *,
        user_map: IdMap | None = None,
        item_map: IdMap | None = None,
    ) -> None:
        super().__init__()
        if len(hidden_layers) < 1 or hidden_layers[0] % 2:
            raise ValueError("hidden_layers needs at least one layer, and an even first width")
        self.user_map, self.item_map = user_map, item_map
        self.gmf_user = nn.Embedding(n_users, embedding_dim)
        self.gmf_item = nn.Embedding(n_items, embedding_dim)
        self.mlp_user = nn.Embedding(n_users, hidden_layers[0] // 2)
        self.mlp_item = nn.Embedding(n_items, hidden_layers[0] // 2)
        layers: list[nn.Module] = []
        for width_in, width_out in itertools.pairwise(hidden_layers):
            layers += [nn.Linear(width_in, width_out), nn.ReLU()]
        self.mlp = nn.Sequential(*layers)
        self.output = nn.Linear(embedding_dim + hidden_layers[-1], 1)
        for embedding in (self.gmf_user, self.gmf_item, self.mlp_user, self.mlp_item):
            nn.init.normal_(embedding.weight, std=0.01)

    def forward(self, user_idx: torch.Tensor, item_idx: torch.Tensor) -> torch.Tensor:
        """Logits, float (B,), for int64 user and item rows (B,)."""
        gmf = self.gmf_user(user_idx) * self.gmf_item(item_idx)
        mlp = self.mlp(torch.cat([self.mlp_user(user_idx), self.mlp_item(item_idx)], dim=-1))
        return self.output(torch.cat([gmf, mlp], dim=-1)).squeeze(-1)

    @torch.no_grad()
    def score_all(self, user_idx: np.ndarray, chunk_pairs: int = 1 << 20) -> np.ndarray:
        """Logits of every item for these user rows: float32 (len(user_idx), n_items)."""
        was_training = self.training
        self.eval()
        device = self.output.weight.device
        n_items = self.gmf_item.num_embeddings
        out = np.empty((len(user_idx), n_items), np.float32)
        items = torch.arange(n_items, device=device)
        users_per_chunk = max(1, chunk_pairs // n_items)
        for start in range(0, len(user_idx), users_per_chunk):
            rows = torch.as_tensor(user_idx[start : start + users_per_chunk], device=device)
            logits = self(rows.repeat_interleave(n_items), items.repeat(len(rows)))
            out[start : start + len(rows)] = logits.view(len(rows), n_items).float().cpu().numpy()
        self.train(was_training)
        return out

    @torch.no_grad()
    def predict(self, user_id: int | np.ndarray, item_id: int | np.ndarray) -> float | np.ndarray:
        """Probability of interaction for raw ids (scalars, or broadcastable int arrays → float32 array).

        Ids go through `user_map` / `item_map` when set (KeyError for an unknown one), else they are embedding
        rows (ValueError outside 0..n_users-1 / 0..n_items-1)."""
        users, items = np.broadcast_arrays(
            _rows(self.user_map, user_id, self.gmf_user.num_embeddings, "user_id"),
            _rows(self.item_map, item_id, self.gmf_item.num_embeddings, "item_id"),
        )
        was_training = self.training
        self.eval()
        device = self.output.weight.device
        logits = self(torch.as_tensor(users.ravel(), device=device), torch.as_tensor(items.ravel(), device=device))
        self.train(was_training)
        values = torch.sigmoid(logits).cpu().numpy().reshape(users.shape)
        return float(values) if values.ndim == 0 else values


def _rows(id_map: IdMap | None, ids: int | np.ndarray, n_rows: int, name: str) -> np.ndarray:
    if id_map is not None:
        return id_map.to_index(ids)
    rows = np.asarray(ids)
    if not np.issubdtype(rows.dtype, np.integer):
        raise ValueError(f"{name} must be integers, not {rows.dtype}")
    if rows.size and (rows.min() < 0 or rows.max() >= n_rows):
        raise ValueError(f"{name} must be embedding rows 0..{n_rows - 1} (no id map given)")
    return rows.astype(np.int64)


def sample_negatives(
    positives: sp.csr_matrix, users: np.ndarray, n_negatives: int, rng: np.random.Generator, max_rounds: int = 20
) -> np.ndarray:
    """Items, int64 (len(users), n_negatives), drawn uniformly among each user's non-positives.

    Vectorised rejection sampling: redraw only the clashes, a few rounds (a user with most of the catalog
    positive may keep a positive after max_rounds; harmless noise).
    """
    n_items = positives.shape[1]
    coo = positives.tocoo()
    positive_keys = np.sort(coo.row.astype(np.int64) * n_items + coo.col)
    negatives = rng.integers(0, n_items, size=(len(users), n_negatives))
    for _ in range(max_rounds):
        keys = users[:, None] * n_items + negatives
        position = np.minimum(np.searchsorted(positive_keys, keys), len(positive_keys) - 1)
        clash = positive_keys[position] == keys
        if not clash.any():
            break
        negatives[clash] = rng.integers(0, n_items, size=int(clash.sum()))
    return negatives


def train_ncf(
    network: NeuralCollaborativeFiltering,
    positives: sp.csr_matrix,
    *,
    n_epochs: int = 20,
    batch_size: int = 1024,
    learning_rate: float = 1e-3,
    weight_decay: float = 0.0,
    n_negatives: int = 4,
    seed: int = 42,
    device: torch.device | None = None,
    on_epoch_end: Callable[[int, float], None] | None = None,
) -> list[float]:
    """Train with BCE on each positive plus n_negatives fresh negatives per epoch, Adam, shuffled mini-batches.

    positives: user × item CSR (rows/columns = embedding rows). on_epoch_end(epoch, mean loss) is called
    after each epoch (1-based), e.g. to evaluate checkpoints. Returns the mean loss of each epoch.
    """
    device = device or default_device()
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    network.to(device).train()
    optimizer = torch.optim.Adam(network.parameters(), lr=learning_rate, weight_decay=weight_decay)
    loss_fn = nn.BCEWithLogitsLoss()
    coo = positives.tocoo()
    pos_users, pos_items = coo.row.astype(np.int64), coo.col.astype(np.int64)
    losses = []
    for _ in range(n_epochs):
        negatives = sample_negatives(positives, pos_users, n_negatives, rng)
        users = np.concatenate([pos_users, np.repeat(pos_users, n_negatives)])
        items = np.concatenate([pos_items, negatives.ravel()])
        labels = np.concatenate([np.ones(len(pos_users)), np.zeros(negatives.size)]).astype(np.float32)
        order = torch.as_tensor(rng.permutation(len(users)), device=device)
        users_t = torch.as_tensor(users, device=device)[order]
        items_t = torch.as_tensor(items, device=device)[order]
        labels_t = torch.as_tensor(labels, device=device)[order]
        total = torch.zeros((), device=device)  # summed on the device: no host sync per step on a GPU
        for start in range(0, len(users), batch_size):
            end = start + batch_size
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(network(users_t[start:end], items_t[start:end]), labels_t[start:end])
            loss.backward()
            optimizer.step()
            total += loss.detach() * (min(end, len(users)) - start)
        losses.append(float(total) / len(users))
        if on_epoch_end is not None:
            on_epoch_end(len(losses), losses[-1])
    network.eval()
    return losses


class NCFRecommender(Recommender):
    """The Recommender interface around NeuralCollaborativeFiltering: fit, recommend, save, load."""

    params = (
        "embedding_dim",
        "hidden_layers",
        "n_epochs",
        "batch_size",
        "learning_rate",
        "weight_decay",
        "n_negatives",
        "seed",
    )

    def __init__(
        self,
        embedding_dim: int = defaults.NCF["embedding_dim"],
        hidden_layers: Sequence[int] = tuple(defaults.NCF["hidden_layers"]),
        n_epochs: int = defaults.NCF["n_epochs"],
        batch_size: int = 1024,
        learning_rate: float = 1e-3,
        weight_decay: float = 0.0,
        n_negatives: int = 4,
        seed: int = 42,
    ) -> None:
        self.embedding_dim = int(embedding_dim)
        self.hidden_layers = [int(width) for width in hidden_layers]
        self.n_epochs = int(n_epochs)
        self.batch_size = int(batch_size)
        self.learning_rate = float(learning_rate)
        self.weight_decay = float(weight_decay)
        self.n_negatives = int(n_negatives)
        self.seed = int(seed)
        self.losses: list[float] = []

    def _network(self) -> NeuralCollaborativeFiltering:
        return NeuralCollaborativeFiltering(
            len(self.user_map),
            len(self.item_map),
            self.embedding_dim,
            self.hidden_layers,
            user_map=self.user_map,
            item_map=self.item_map,
        )

    def fit(
        self,
        interactions: pd.DataFrame,
        *,
        device: torch.device | None = None,
        on_epoch_end: Callable[[int, float], None] | None = None,
    ) -> NCFRecommender:
        """Fit on a frame with user_id, content_id, rating: every row is a positive (the rating is ignored).

        device: default cuda when available, else cpu. on_epoch_end: see train_ncf (the model can
        already recommend inside it).
        """
        started = time.perf_counter()
        self._index(interactions)
        torch.manual_seed(self.seed)  # the initial weights too
        self.network = self._network()
        self.losses = train_ncf(
            self.network,
            self.user_items,
            n_epochs=self.n_epochs,
            batch_size=self.batch_size,
            learning_rate=self.learning_rate,
            weight_decay=self.weight_decay,
            n_negatives=self.n_negatives,
            seed=self.seed,
            device=device,
            on_epoch_end=on_epoch_end,
        )
        self.fit_seconds = time.perf_counter() - started
        return self

    def _scores(self, user_index: np.ndarray) -> np.ndarray:
        return self.network.score_all(user_index)

    def predict(self, user_id: int | np.ndarray, content_id: int | np.ndarray) -> float | np.ndarray:
        """Probability of interaction for raw ids; see NeuralCollaborativeFiltering.predict."""
        self._check_fitted()
        return self.network.predict(user_id, content_id)

    def _save_extra(self, directory: Path) -> list[str]:
        state = {name: tensor.detach().cpu() for name, tensor in self.network.state_dict().items()}
        torch.save(state, directory / WEIGHTS_FILE)
        return [WEIGHTS_FILE]

    def _restore(self, arrays: dict[str, np.ndarray], path: Path, mmap: bool) -> None:
        self.network = self._network()
        # weights_only: the unpickler accepts tensors and plain containers only, so loading runs no code.
        state = torch.load(path / WEIGHTS_FILE, map_location=default_device(), weights_only=True)
        self.network.load_state_dict(state)
        self.network.to(default_device()).eval()
