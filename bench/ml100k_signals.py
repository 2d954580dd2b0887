#!/usr/bin/env python
"""How much can second-stage signals add to MF-ALS on MovieLens 100k? Blends measured on validation only.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python bench/ml100k_signals.py             # about 2 minutes on 2 cores

The ranker issue asks the ranked list to beat the best single source (MF-ALS) by 5 % relative NDCG@10 under
the Recommenders split (ml100k_ranking.py reaches +2.4 %). This script measures the head-room: each signal
alone, and MF-ALS blended with it (per-user z-scores over unseen titles, MF + w × signal), with w chosen on
--carves validation carves of train (validation_split seeds 4242, ...) and then applied once to test. The
last rows blend every signal at once (coordinate ascent on validation). Signals:

- EASE, item-kNN (cosine co-occurrence) and user-kNN (50 cosine neighbours): other collaborative views;
- MF-ALS bagged: the mean score of five more ALS fits with other seeds (does averaging factorizations help?);
- co-visitation: titles rated within 10 positions of each other in a user's sequence ("watched next");
- same session: titles rated within 10 minutes of each other (75 % of ml-100k ratings share a timestamp
  with another of the same user: they were submitted a page at a time);
- hub correction: MF's score standardised per title across users (a title in everybody's top list is
  pushed down);
- availability: a title first rated after the user's last rating (it was not in the catalog yet).

Writes a table, --json and a bar plot (--png).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np
import pandas as pd
import scipy.sparse as sp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from recommendations.ml import metrics  # noqa: E402
from recommendations.ml.base import Recommender  # noqa: E402
from recommendations.ml.ease import EASE  # noqa: E402
from recommendations.ml.matrix_factorization import MatrixFactorization  # noqa: E402
from recommendations.ml.split import VALIDATION_SEED, stratified_split, validation_split  # noqa: E402

K = 10
ALS_PARAMS = {"n_factors": 64, "n_epochs": 20, "regularization": 50.0, "alpha": 2.0}  # as ml100k_ranking.py
EASE_LAMBDA = 250.0
USER_NEIGHBOURS = 50
SEQUENCE_WINDOW = 10  # positions
SESSION_SECONDS = 600
WEIGHTS = (0.1, 0.25, 0.5, 1.0)  # w of MF + w × signal
GOAL = 0.05  # the relative NDCG@10 gain over the best single source


class Phase:
    """One fit/truth pair over a dense (users × titles) grid: ml-100k is 943 × 1,682."""

    def __init__(self, name: str, fit: pd.DataFrame, truth: pd.DataFrame, n_users: int, n_titles: int) -> None:
        self.name, self.fit, self.truth = name, fit, truth
        self.shape = (n_users + 1, n_titles + 1)  # raw ids index rows and columns directly; row/column 0 unused
        self.users = np.intersect1d(fit["user_id"].unique(), truth["user_id"].unique())
        self.rated = sp.csr_matrix(
            (np.ones(len(fit), np.float32), (fit["user_id"].to_numpy(), fit["content_id"].to_numpy())),
            shape=self.shape,
        )
        self.unseen = self.rated.toarray() == 0
        self.unseen[0, :] = False
        self.unseen[:, 0] = False

    def ndcg(self, scores: np.ndarray) -> float:
        masked = np.where(self.unseen, np.nan_to_num(scores, nan=-np.inf), -np.inf)[self.users]
        top = np.argsort(-masked, axis=1, kind="stable")[:, :K]
        return metrics.ndcg_at_k(*metrics.relevance(self.users, top, self.truth), K)

    def z(self, scores: np.ndarray) -> np.ndarray:
        """Per-user z-scores over unseen titles (0 elsewhere, which ndcg masks)."""
        values = np.where(self.unseen, scores, np.nan).astype(np.float64)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows: users with nothing unseen
            z = (values - np.nanmean(values, axis=1, keepdims=True)) / (np.nanstd(values, axis=1, keepdims=True) + 1e-9)
        return np.nan_to_num(z)


def model_scores(model: Recommender, phase: Phase) -> np.ndarray:
    out = np.zeros(phase.shape, np.float32)
    users = np.arange(1, phase.shape[0])
    known = model.user_map.contains(users)
    out[np.ix_(users[known], model.content_ids)] = model._scores(model.user_map.to_index(users[known]))
    return out


def cosine_neighbourhood(co: np.ndarray, rated: sp.csr_matrix) -> np.ndarray:
    """Scores of titles from a title × title count matrix, cosine-normalised by the titles' totals."""
    np.fill_diagonal(co, 0.0)
    totals = np.sqrt(co.sum(axis=1)) + 1e-9
    return np.asarray(rated @ (co / totals[:, None] / totals[None, :]))


def pair_counts(
    fit: pd.DataFrame, shape: tuple[int, int], close: Callable[[np.ndarray, np.ndarray], np.ndarray], max_offset: int
) -> np.ndarray:
    """Title × title counts of pairs a user rated close together in time order (`close(offset, seconds)`)."""
    ordered = fit.sort_values(["user_id", "timestamp", "content_id"])
    user, title = ordered["user_id"].to_numpy(), ordered["content_id"].to_numpy()
    seconds = ordered["timestamp"].to_numpy()
    rows, columns = [], []
    for offset in range(1, max_offset + 1):
        keep = (user[offset:] == user[:-offset]) & close(
            np.full(len(user) - offset, offset), seconds[offset:] - seconds[:-offset]
        )
        if not keep.any():
            break
        rows += [title[:-offset][keep], title[offset:][keep]]
        columns += [title[offset:][keep], title[:-offset][keep]]
    rows_all, columns_all = np.concatenate(rows), np.concatenate(columns)
    return sp.csr_matrix((np.ones(len(rows_all)), (rows_all, columns_all)), shape=(shape[1], shape[1])).toarray()


def signals(phase: Phase, threads: int) -> dict[str, np.ndarray]:
    fit, rated = phase.fit, phase.rated
    out = {
        "MF-ALS": model_scores(MatrixFactorization(**ALS_PARAMS, objective="als", num_threads=threads).fit(fit), phase)
    }
    out["MF-ALS bagged"] = np.mean(
        [
            model_scores(
                MatrixFactorization(**ALS_PARAMS, objective="als", num_threads=threads, random_state=seed).fit(fit),
                phase,
            )
            for seed in range(1, 6)
        ],
        axis=0,
    )
    out["EASE"] = model_scores(EASE(EASE_LAMBDA).fit(fit), phase)
    out["item-kNN"] = cosine_neighbourhood((rated.T @ rated).toarray(), rated)
    overlap = (rated @ rated.T).toarray()  # titles two users share; the diagonal is each user's count
    norms = np.sqrt(np.diag(overlap)) + 1e-9
    np.fill_diagonal(overlap, 0.0)
    similarity = overlap / norms[:, None] / norms[None, :]
    cut = -np.sort(-similarity, axis=1)[:, USER_NEIGHBOURS - 1 : USER_NEIGHBOURS]
    out["user-kNN"] = np.where(similarity >= cut, similarity, 0.0) @ rated.toarray()
    out["co-visitation"] = cosine_neighbourhood(
        pair_counts(fit, phase.shape, lambda offset, _: offset <= SEQUENCE_WINDOW, SEQUENCE_WINDOW), rated
    )
    out["same session"] = cosine_neighbourhood(
        pair_counts(fit, phase.shape, lambda _, seconds: seconds <= SESSION_SECONDS, 500), rated
    )
    mf = np.where(phase.unseen, out["MF-ALS"], np.nan).astype(np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        out["hub correction"] = np.nan_to_num((mf - np.nanmean(mf, axis=0)) / (np.nanstd(mf, axis=0) + 1e-9))
    first_rated = fit.groupby("content_id")["timestamp"].min().reindex(range(phase.shape[1])).to_numpy()
    last_seen = fit.groupby("user_id")["timestamp"].max().reindex(range(phase.shape[0])).to_numpy()
    out["availability"] = -(first_rated[None, :] > last_seen[:, None] + 86_400).astype(np.float32)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "ml-100k")
    parser.add_argument("--carves", type=int, default=3, help="validation carves the weights are chosen on")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path, default=ROOT / "bench/results/ml100k_signals.json")
    parser.add_argument("--png", type=Path, default=ROOT / "bench/results/ml100k_signals.png")
    args = parser.parse_args()
    started = time.perf_counter()
    ratings = pd.read_csv(args.data / "u.data", sep="\t", names=["user_id", "content_id", "rating", "timestamp"])
    n_users, n_titles = int(ratings["user_id"].max()), int(ratings["content_id"].max())
    train, test = stratified_split(ratings)
    phases = [
        Phase(f"carve {VALIDATION_SEED + c}", *validation_split(train, seed=VALIDATION_SEED + c), n_users, n_titles)
        for c in range(args.carves)
    ] + [Phase("test", train, test, n_users, n_titles)]
    scored = []
    for phase in phases:
        tick = time.perf_counter()
        scored.append((phase, {name: phase.z(values) for name, values in signals(phase, args.threads).items()}))
        print(f"{phase.name}: signals in {time.perf_counter() - tick:.1f}s", flush=True)
    *validation, (test_phase, test_z) = scored

    def mean_validation(weights: dict[str, float]) -> float:
        return float(np.mean([phase.ndcg(sum(w * z[name] for name, w in weights.items())) for phase, z in validation]))

    base_validation = mean_validation({"MF-ALS": 1.0})
    base_test = test_phase.ndcg(test_z["MF-ALS"])
    rows = []
    for name in test_z:
        alone = {"validation": mean_validation({name: 1.0}), "test": test_phase.ndcg(test_z[name])}
        if name == "MF-ALS":
            rows.append({"signal": name, "alone": alone, "weight": None, "blend": alone})
            continue
        best = max(WEIGHTS, key=lambda w: mean_validation({"MF-ALS": 1.0, name: w}))
        blend = {
            "validation": mean_validation({"MF-ALS": 1.0, name: best}),
            "test": test_phase.ndcg(test_z["MF-ALS"] + best * test_z[name]),
        }
        rows.append({"signal": name, "alone": alone, "weight": best, "blend": blend})
        print(f"  {name}: w {best}", flush=True)

    # Every signal at once: coordinate ascent over the weights, on validation only.
    weights = {"MF-ALS": 1.0} | {name: 0.0 for name in test_z if name != "MF-ALS"}
    current = mean_validation(weights)
    for _ in range(2):
        for name in list(weights)[1:]:
            for w in (0.0, *WEIGHTS):
                trial = mean_validation(weights | {name: w})
                if trial > current + 1e-6:
                    weights, current = weights | {name: w}, trial
    together = {"validation": current, "test": test_phase.ndcg(sum(w * test_z[n] for n, w in weights.items()))}
    rows.append(
        {"signal": "all signals", "alone": None, "weight": {n: w for n, w in weights.items() if w}, "blend": together}
    )

    print(
        f"\nNDCG@10: validation = mean of {args.carves} carves; test once with the validation weight. "
        f"Gain = blend over MF-ALS (goal +{GOAL:.0%})."
    )
    print(
        f"{'signal':<16}{'alone val':>10}{'alone test':>11}{'w':>6}{'blend val':>11}{'gain':>8}{'blend test':>12}{'gain':>8}"
    )
    for row in rows:
        alone = {part: f"{row['alone'][part]:.4f}" if row["alone"] else "-" for part in ("validation", "test")}
        weight = row["weight"] if isinstance(row["weight"], float) else "-"
        row["gain"] = {
            "validation": row["blend"]["validation"] / base_validation - 1,
            "test": row["blend"]["test"] / base_test - 1,
        }
        print(
            f"{row['signal']:<16}{alone['validation']:>10}{alone['test']:>11}{weight!s:>6}"
            f"{row['blend']['validation']:>11.4f}{row['gain']['validation']:>+8.1%}{row['blend']['test']:>12.4f}"
            f"{row['gain']['test']:>+8.1%}"
        )
    print(f"all-signal weights: {rows[-1]['weight']}")
    result = {
        "protocol": "Recommenders ml-100k split (stratified by item, 75/25, seed 42); per-user z-score blends "
        f"MF + w x signal, w from {WEIGHTS} chosen on {args.carves} validation carves of train",
        "goal_relative_ndcg_gain": GOAL,
        "rows": rows,
        "seconds": round(time.perf_counter() - started, 1),
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    plot(rows, args.png)
    print(f"wrote {args.json} and {args.png} in {result['seconds']:.0f}s")


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [row["signal"] for row in rows if row["signal"] != "MF-ALS"]
    gains = {
        part: [100 * row["gain"][part] for row in rows if row["signal"] != "MF-ALS"] for part in ("validation", "test")
    }
    figure, axis = plt.subplots(figsize=(9, 4.5))
    x = np.arange(len(names))
    axis.bar(x - 0.2, gains["validation"], 0.4, label="validation (weights chosen here)")
    axis.bar(x + 0.2, gains["test"], 0.4, label="test")
    axis.axhline(100 * GOAL, color="crimson", linestyle="--", label=f"goal +{GOAL:.0%}")
    axis.axhline(0, color="black", linewidth=0.8)
    axis.set_xticks(x, names, rotation=25, ha="right")
    axis.set_ylabel("NDCG@10 gain over MF-ALS (%)")
    axis.set_title("MF-ALS + one signal (per-user z-score blend), ml-100k")
    axis.legend()
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
