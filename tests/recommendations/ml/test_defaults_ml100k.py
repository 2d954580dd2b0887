"""`MatrixFactorization()` with its own defaults is the tuned production model: on MovieLens 100k under the
Recommenders protocol it scores within 1 % of the MF-ALS figure of bench/results/ml100k_eval.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from recommendations.ml.evaluation_scoring import Evaluation
from recommendations.ml.matrix_factorization import MatrixFactorization
from recommendations.ml.split import stratified_split
from users.ml.datasets import load_dataset

ROOT = Path(__file__).resolve().parents[3]
ML100K = ROOT.parent / "shared" / "data" / "ml-100k"
EVAL_JSON = ROOT / "bench" / "results" / "ml100k_eval.json"


@pytest.mark.slow
def test_matrix_factorization_defaults_score_the_tuned_figure():
    assert ML100K.is_dir(), f"MovieLens 100k is expected at {ML100K}"
    tuned = next(row for row in json.loads(EVAL_JSON.read_text())["rows"] if row["name"] == "MF-ALS")
    data = load_dataset(ML100K)
    train, test = stratified_split(data.ratings)
    model = MatrixFactorization(num_threads=2).fit(train)  # threads only: every hyper-parameter its own default
    evaluation = Evaluation(train, test, data)
    top, _ = model.recommend_many(evaluation.users, 10)
    ndcg = evaluation.accuracy(top)["ndcg"]
    assert ndcg >= 0.99 * tuned["metrics"]["ndcg"], (ndcg, tuned["metrics"]["ndcg"])
