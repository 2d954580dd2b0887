"""Offline evaluation of every model and the merged candidates on a rating data set, under the Microsoft
Recommenders protocol (pure: no Django).

Data: any layout users.ml.datasets reads (MovieLens 100k, 1M, the `latest` CSVs, a plain CSV). Split: all
ratings, stratified by item, 75/25, seed 42. Hyper-parameters are chosen on a validation split carved out of
train (same procedure, another seed), never on test; each family's grid stops at `tune_seconds`
(evaluation_tuning). Every model is then refitted on the whole train split and scored on test
(evaluation_scoring): top-10 per user with train items removed, every test rating relevant, users present in
both train and test. The "merged candidates" row is serving's own pipeline (evaluation_candidates).
`bench/ml100k_eval.py` and `manage.py evaluate` are thin command lines over `run_evaluation`.
"""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from recommendations.ml import defaults
from recommendations.ml.base import Recommender
from recommendations.ml.content import ContentSimilarity
from recommendations.ml.ease import EASE
from recommendations.ml.evaluation_candidates import candidate_report, candidate_stage
from recommendations.ml.evaluation_report import (
    REFERENCE,
    TARGETS,
    EvaluationError,
    format_table,
    json_default,
    require_matplotlib,
    write_plot,
)
from recommendations.ml.evaluation_scoring import CANDIDATES, Evaluation
from recommendations.ml.evaluation_tuning import (
    NCF_TUNE_FACTOR,
    Log,
    implicit_direct,
    training_times,
    tune,
    tune_ncf,
)
from recommendations.ml.matrix_factorization import MatrixFactorization
from recommendations.ml.ncf import NCFRecommender
from recommendations.ml.popularity import PopularityRecommender
from recommendations.ml.split import stratified_split, validation_split
from users.ml.datasets import DatasetError, RatingsDataset, load_dataset

__all__ = ["DatasetError", "EvaluationConfig", "EvaluationError", "default_params", "format_table", "run_evaluation"]

PROTOCOL = (
    "Microsoft Recommenders: all ratings, stratified by item 75/25, seed 42; top-10, train items removed, every "
    "test rating relevant; users in both test and predictions"
)
ROW_ORDER = [
    "popularity",
    "MF-ALS",
    "MF-BPR",
    "MF-SGD",
    "implicit ALS direct",
    "implicit BPR direct",
    "NCF",
    "content similarity",
    "EASE",
]
CONTENT_FIELDS = {"genres": 1.0}  # what every layout has (ContentSimilarity's default also wants cast etc.)


def default_params() -> dict[str, dict[str, Any]]:
    """recommendations.ml.defaults per family, content similarity over the data set's genres."""
    chosen = {family: defaults.params(family) for family in defaults.FAMILIES}
    chosen["content similarity"].setdefault("fields", dict(CONTENT_FIELDS))
    return chosen


@dataclass(frozen=True)
class EvaluationConfig:
    """What `run_evaluation` does. tune_seconds <= 0 or quick: no tuning, recommendations.ml.defaults."""

    dataset: Path  # a directory of any MovieLens layout, or a CSV file
    json_path: Path | None = None
    png_path: Path | None = None
    tune_seconds: float = 60.0
    quick: bool = False
    threads: int = 2
    torch_threads: int = 1
    show_progress: bool = True
    log: Log = field(default=print, repr=False)

    @property
    def tuning(self) -> bool:
        return not self.quick and self.tune_seconds > 0


def run_evaluation(config: EvaluationConfig) -> dict[str, Any]:
    """Load, split, tune on validation, refit on train, score every row on test; write JSON and plot if asked.

    Returns the result dict that is written as JSON. Raises DatasetError for a missing or malformed data set.
    """
    data = load_dataset(config.dataset)
    if config.png_path is not None:
        require_matplotlib()
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(config.torch_threads)
    try:
        result = _evaluate(data, config)
    finally:
        torch.set_num_threads(previous_threads)
    if config.json_path is not None:
        config.json_path.parent.mkdir(parents=True, exist_ok=True)
        config.json_path.write_text(json.dumps(result, indent=2, default=json_default))
    if config.png_path is not None:
        write_plot(result, config.png_path)
    return result


def _evaluate(data: RatingsDataset, config: EvaluationConfig) -> dict[str, Any]:
    started = time.perf_counter()
    log, threads = config.log, config.threads
    ratings = data.ratings
    train, test = stratified_split(ratings)
    fit_part, validation = validation_split(train)
    on_test = Evaluation(train, test, data)
    on_validation = Evaluation(fit_part, validation, data)
    if not len(on_validation.users):
        raise DatasetError(config.dataset, None, "too few ratings: no user is in both parts of a split")
    content_frame = data.content_frame()
    log(
        f"ratings {len(ratings)}: train {len(train)}, test {len(test)}; evaluated users {len(on_test.users)}; "
        f"validation: fit {len(fit_part)}, held out {len(validation)}"
    )

    def mf(objective: str) -> Callable[[dict[str, Any]], MatrixFactorization]:
        return lambda params: MatrixFactorization(**params, objective=objective, num_threads=threads)

    chosen = default_params()
    tuning: dict[str, list[dict[str, Any]]] = {}
    if config.tuning:
        log(f"tuning on the validation split ({config.tune_seconds:g} s per family, NCF x{NCF_TUNE_FACTOR})")
        for family, objective in (("MF-ALS", "als"), ("MF-BPR", "bpr"), ("MF-SGD", "sgd")):
            chosen[family], tuning[family] = tune(
                family, mf(objective), lambda model: model.fit(fit_part), on_validation, config.tune_seconds, log
            )
        chosen["EASE"], tuning["EASE"] = tune(
            "EASE",
            lambda params: EASE(**params),
            lambda model: model.fit(fit_part),
            on_validation,
            config.tune_seconds,
            log,
        )
        if data.genre_names:
            chosen["content similarity"], tuning["content similarity"] = tune(
                "content similarity",
                lambda params: ContentSimilarity(**params),
                lambda model: model.fit(fit_part, content_frame),
                on_validation,
                config.tune_seconds,
                log,
            )
        chosen["NCF"], tuning["NCF"] = tune_ncf(on_validation, config.tune_seconds * NCF_TUNE_FACTOR, log)
    else:
        log("no tuning: recommendations.ml.defaults")
    tuning_seconds = time.perf_counter() - started

    log("refitting on train, scoring on test")
    # (row, model, how it is fitted, its parameters); fit signatures differ (content also takes the catalog)
    builders: list[tuple[str, Recommender, Callable[[Any], Any], dict[str, Any]]] = [
        ("popularity", PopularityRecommender(), lambda m: m.fit(train), {}),
        ("MF-ALS", mf("als")(chosen["MF-ALS"]), lambda m: m.fit(train), chosen["MF-ALS"]),
        ("MF-BPR", mf("bpr")(chosen["MF-BPR"]), lambda m: m.fit(train), chosen["MF-BPR"]),
        ("MF-SGD", mf("sgd")(chosen["MF-SGD"]), lambda m: m.fit(train), chosen["MF-SGD"]),
        ("NCF", NCFRecommender(**chosen["NCF"]), lambda m: m.fit(train), chosen["NCF"]),
    ]
    if data.genre_names:
        builders.append(
            (
                "content similarity",
                ContentSimilarity(**chosen["content similarity"]),
                lambda m: m.fit(train, content_frame),
                chosen["content similarity"],
            )
        )
    else:
        log("  content similarity skipped: the data set has no genres")
    with_ease = len(data.items) <= defaults.EASE_MAX_ITEMS
    if with_ease:
        builders.append(("EASE", EASE(**chosen["EASE"]), lambda m: m.fit(train), chosen["EASE"]))
    else:
        log(f"  EASE skipped: {len(data.items):,} titles is over {defaults.EASE_MAX_ITEMS:,} (items x items inverse)")
    rows, fitted = [], {}
    for name, model, fit, params in tqdm(
        builders, desc="models", unit="model", disable=not config.show_progress, leave=False
    ):
        fit(model)
        fitted[name] = model
        ids, _ = model.recommend_many(on_test.users, CANDIDATES)
        rows.append(
            {"name": name, "params": params, "metrics": on_test.all_metrics(ids), "fit_seconds": model.fit_seconds}
        )
        log(f"  {name:20s} fit {model.fit_seconds:6.2f}s  NDCG@10 {rows[-1]['metrics']['ndcg']:.4f}")
    for objective, name in (("als", "implicit ALS direct"), ("bpr", "implicit BPR direct")):
        params = chosen[f"MF-{objective.upper()}"]
        ids, seconds = implicit_direct(objective, params, train, on_test.users, threads)
        rows.append({"name": name, "params": params, "metrics": on_test.all_metrics(ids), "fit_seconds": seconds})
        log(f"  {name:20s} fit {seconds:6.2f}s  NDCG@10 {rows[-1]['metrics']['ndcg']:.4f}")
    rows.sort(key=lambda row: ROW_ORDER.index(row["name"]))

    log("merged candidates from serving's pipeline")
    stage, source_fit_seconds = candidate_stage(
        data, train, chosen, als=fitted["MF-ALS"], ease=fitted.get("EASE"), with_ease=with_ease, threads=threads
    )
    candidates = candidate_report(stage, on_test)
    candidates["fit_seconds"] = source_fit_seconds
    timing = training_times(train, chosen, threads) if config.tuning else None

    by_name = {row["name"]: row for row in rows}
    return {
        "protocol": PROTOCOL,
        "dataset": str(config.dataset),
        "layout": data.layout,
        "quick": not config.tuning,
        "split": {
            "train": len(train),
            "test": len(test),
            "evaluated_users": len(on_test.users),
            "validation_fit": len(fit_part),
            "validation_held_out": len(validation),
        },
        "rows": rows,
        "candidates": candidates,
        "chosen_hyperparameters": chosen,
        "tuning": tuning,
        "tuning_seconds": round(tuning_seconds, 1),
        "reference": REFERENCE if data.layout == "ml-100k" else {},
        "targets": {
            name: {key: {"target": value, "measured": by_name[name]["metrics"][key]} for key, value in target.items()}
            for name, target in TARGETS.items()
        }
        if data.layout == "ml-100k"
        else {},
        "training_time": timing,
        "environment": {
            "python": platform.python_version(),
            "numpy": np.__version__,
            "pandas": pd.__version__,
            "torch": torch.__version__,
            "implicit_threads": threads,
            "torch_threads": config.torch_threads,
            "device": "cuda" if torch.cuda.is_available() else "cpu",
        },
        "total_seconds": round(time.perf_counter() - started, 1),
    }
