"""The one source of default hyper-parameters: model classes, training from the database, the offline
evaluation and the benchmarks all read them from here.

Chosen on a validation split carved out of MovieLens 100k's train part (bench/ml100k_eval.py, full run),
never on its test part. Families are named as the evaluation's rows.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

MF_ALS: dict[str, Any] = {"n_factors": 64, "n_epochs": 20, "regularization": 50.0, "alpha": 2.0}
MF_BPR: dict[str, Any] = {"n_factors": 128, "n_epochs": 100, "learning_rate": 0.005, "regularization": 0.01}
MF_SGD: dict[str, Any] = {"n_factors": 64, "n_epochs": 20, "learning_rate": 0.01, "regularization": 0.005}
NCF: dict[str, Any] = {"embedding_dim": 16, "hidden_layers": [64, 32, 16], "n_epochs": 14}
# 100 neighbours: at 100K titles that is 10M stored similarities. Fields: the class's CONTENT_FIELDS (the
# evaluation passes those its data set has).
CONTENT: dict[str, Any] = {"n_neighbors": 100}
EASE: dict[str, Any] = {"regularization": 500.0, "binary": True}
EASE_MAX_ITEMS = 20_000  # EASE inverts an items × items matrix: 20K items is 1.6 GB of float32

# Candidate quotas per source out of the ~500 candidates of a request (candidate_pipeline.TOTAL_CANDIDATES),
# taken in this order; what overlaps is backfilled from each source's list by relative depth. The ranker
# ranks mostly by the collaborative scores, so collaborative gets most slots; trending, similar to watched
# and new releases keep enough to bring what MF under-scores (new, niche and cold titles, many in a
# 100K-title catalog); continue watching needs few. Without a history popular-in-genres takes the
# collaborative quota; EASE (small catalogs only) backfills. Chosen on ml-100k validation carves of train
# (bench/ml100k_ranking.py): merged recall@500 0.850 at 200/100/10/100/50, 0.883 at 300/75/10/75/40,
# 0.898 here; the ranker's cross-fitted NDCG@10 (4 carves) 0.2884 at 300/75/..., 0.2888 here.
CANDIDATE_QUOTAS: MappingProxyType[str, int] = MappingProxyType(
    {
        "collaborative": 350,
        "trending": 60,
        "continue_watching": 10,
        "similar_to_watched": 50,
        "new_releases": 30,
    }
)

FAMILIES: MappingProxyType[str, dict[str, Any]] = MappingProxyType(
    {
        "MF-ALS": MF_ALS,
        "MF-BPR": MF_BPR,
        "MF-SGD": MF_SGD,
        "NCF": NCF,
        "content similarity": CONTENT,
        "EASE": EASE,
    }
)
MF_BY_OBJECTIVE: MappingProxyType[str, dict[str, Any]] = MappingProxyType({"als": MF_ALS, "bpr": MF_BPR, "sgd": MF_SGD})


def params(family: str) -> dict[str, Any]:
    """A fresh copy of one family's defaults (callers may change it)."""
    chosen = FAMILIES[family]
    return {
        key: (dict(value) if isinstance(value, dict) else list(value) if isinstance(value, list) else value)
        for key, value in chosen.items()
    }
