"""Calibrated recommendations (Steck, RecSys 2018): a list whose genre mix matches the viewer's (pure numpy).

Greedy: each step adds the candidate maximising (1 - λ)·(sum of relevance) - λ·KL(p ‖ q̃), where p is the
viewer's genre distribution (from their history), q the list's (the mean of its items' genre distributions)
and q̃ = (1 - α)·q + α·p keeps the divergence finite.
"""

from __future__ import annotations

import numpy as np


def calibrated_order(
    relevance: np.ndarray, item_genres: np.ndarray, target: np.ndarray, k: int, *, lam: float = 0.5, alpha: float = 0.01
) -> np.ndarray:
    """Positions of the k picks, in pick order. relevance (m,), scaled to [0, 1] inside; item_genres (m, g)
    bool or weights; target (g,) the viewer's genre mix (any scale: normalised here)."""
    relevance = np.asarray(relevance, np.float64)
    m = len(relevance)
    k = min(int(k), m)
    if k <= 0:
        return np.empty(0, np.int64)
    spread = relevance.max() - relevance.min()
    relevance = (relevance - relevance.min()) / spread if spread > 0 else np.zeros(m)
    genres = np.asarray(item_genres, np.float64)
    genres = genres / np.maximum(genres.sum(axis=1, keepdims=True), 1e-12)
    p = np.asarray(target, np.float64)
    p = p / p.sum() if p.sum() > 0 else np.full(len(p), 1 / len(p))
    picked = np.zeros(m, bool)
    order = np.empty(k, np.int64)
    mix, total = np.zeros(genres.shape[1]), 0.0
    for step in range(k):
        q = (mix[None, :] + genres) / (step + 1)  # the list's mix with each candidate added
        q_tilde = (1 - alpha) * q + alpha * p[None, :]
        with np.errstate(divide="ignore", invalid="ignore"):
            kl = np.where(p > 0, p * np.log(p / q_tilde), 0.0).sum(axis=1)
        objective = (1 - lam) * (total + relevance) - lam * kl
        objective[picked] = -np.inf
        best = int(np.argmax(objective))
        order[step], picked[best] = best, True
        mix += genres[best]
        total += relevance[best]
    return order
