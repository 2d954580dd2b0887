"""The offline evaluation core on a tiny MovieLens-100k-shaped directory (real file formats, synthetic ratings)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from recommendations.ml import defaults, evaluation_tuning, sources
from recommendations.ml.evaluation import EvaluationConfig, run_evaluation
from recommendations.ml.evaluation_candidates import dataset_catalog
from recommendations.ml.evaluation_scoring import CANDIDATES
from users.ml.datasets import GENRES_100K, DatasetError, load_dataset

DAY = 86_400
LAST_DAY = 10_000  # 1997-05-19: releases are dated around it


def write_tiny_ml100k(directory: Path, *, n_users: int = 40, n_items: int = 30, seed: int = 0) -> Path:
    """u.item and u.data in MovieLens 100k's formats: two tastes (genres 1-3 vs 4-6) that users mostly follow."""
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    item_lines = []
    for item in range(1, n_items + 1):
        flags = np.zeros(len(GENRES_100K), int)
        flags[1 + (item % 3) + (3 if item % 2 else 0)] = 1
        released = np.datetime64("1970-01-01") + np.timedelta64(LAST_DAY - 20 * item, "D")
        day = "" if item == n_items else released.astype(object).strftime("%d-%b-%Y")  # one unknown date
        item_lines.append(f"{item}|Movie {item} (1997)|{day}||http://example.org/{item}|" + "|".join(map(str, flags)))
    (directory / "u.item").write_text("\n".join(item_lines) + "\n", encoding="latin-1")
    data_lines = []
    for user in range(1, n_users + 1):
        liked = np.arange(1 + user % 2, n_items + 1, 2)  # odd or even items
        others = np.setdiff1d(np.arange(1, n_items + 1), liked)
        chosen = np.r_[rng.choice(liked, 10, replace=False), rng.choice(others, 2, replace=False)]
        for item in chosen:
            stamp = (LAST_DAY - int(rng.integers(0, 60))) * DAY + int(rng.integers(0, DAY))
            data_lines.append(f"{user}\t{item}\t{int(rng.integers(1, 6))}\t{stamp}")
    (directory / "u.data").write_text("\n".join(data_lines) + "\n")
    return directory


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory) -> Path:
    return write_tiny_ml100k(tmp_path_factory.mktemp("ml-100k"))


def quiet(data_dir: Path, **options) -> EvaluationConfig:
    # One implicit thread: on a 40 × 30 matrix a second one only adds synchronisation (2x slower here).
    return EvaluationConfig(dataset=data_dir, show_progress=False, log=lambda line: None, threads=1, **options)


@pytest.fixture(scope="module")
def quick_json(tiny_dir, tmp_path_factory) -> dict:
    """One quick run (no tuning) shared by the tests that read its results, as written to JSON."""
    path = tmp_path_factory.mktemp("results") / "eval.json"
    run_evaluation(quiet(tiny_dir, quick=True, json_path=path))
    return json.loads(path.read_text())


def test_loader_reads_ids_genres_and_release_dates(tiny_dir):
    data = load_dataset(tiny_dir)
    assert data.layout == "ml-100k" and "unknown" not in data.genre_names
    assert len(data.ratings) == 40 * 12 and data.genre_flags.shape == (30, 18)
    assert data.items["content_id"].tolist() == list(range(1, 31))
    assert data.items["release_date"].isna().sum() == 1


def test_catalog_index_follows_the_data_set(tiny_dir):
    data = load_dataset(tiny_dir)
    train = data.ratings[data.ratings["content_id"] != 1]  # title 1 has no train rating: dated by its release
    catalog = dataset_catalog(data, train)
    assert catalog.content_ids.tolist() == list(range(1, 31))
    flags = (catalog.genre_masks[:, None] >> np.arange(18, dtype=np.uint32)) & 1
    assert np.array_equal(flags.astype(bool), data.genre_flags)
    assert catalog.allowed(tier=1, country="FR", maturity_cap=0).all()
    assert catalog.release_year[-1] == 0  # unknown date
    assert catalog.date_added_days[0] == LAST_DAY - 20
    first = train[train["content_id"] == 2]["timestamp"].min() // DAY  # added when first rated, as imported
    assert catalog.date_added_days[1] == first


def test_quick_run_writes_every_row_with_sane_metrics(quick_json):
    written = quick_json
    names = [row["name"] for row in written["rows"]]
    assert names == [
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
    for row in written["rows"]:
        m = row["metrics"]
        for key in ("map", "ndcg", "precision", "recall", "coverage", "ild", "recall_at_500"):
            assert 0.0 <= m[key] <= 1.0, (row["name"], key)
        assert m["novelty"] > 0 and 1 <= m["genres_top20"] <= 19
    # Every user's unseen items fit in 500 slots, so any full list holds every test item.
    assert written["rows"][0]["metrics"]["recall_at_500"] == pytest.approx(1.0)
    assert written["quick"] and written["tuning"] == {} and written["training_time"] is None


def test_merged_candidates_come_from_the_serving_pipeline(quick_json):
    candidates = quick_json["candidates"]
    assert candidates["quotas"] == dict(defaults.CANDIDATE_QUOTAS)
    assert 0.8 <= candidates["recall_at_500"] <= 1.0  # tiny catalog: the sources reach nearly everything
    per_source = candidates["per_source"]
    assert {sources.COLLABORATIVE, sources.TRENDING, sources.SIMILAR_TO_WATCHED} <= set(per_source)
    assert sources.POPULAR_IN_GENRES not in per_source  # every evaluated user has a history
    assert per_source[sources.COLLABORATIVE]["recall_of_listed"] > 0.5
    assert candidates["cold_users"] == 0 and candidates["mean_candidates_per_user"] <= CANDIDATES


def test_tuning_picks_from_the_grids_on_validation(tiny_dir, monkeypatch):
    # Two points per grid and short NCF runs: the tuning path, not the search, is under test.
    grids = evaluation_tuning.GRIDS
    monkeypatch.setattr(
        evaluation_tuning,
        "GRIDS",
        {family: {name: values[:2] for name, values in grid.items()} for family, grid in grids.items()},
    )
    monkeypatch.setattr(evaluation_tuning, "NCF_MAX_EPOCHS", 2)
    monkeypatch.setattr(evaluation_tuning, "NCF_CHECK_EVERY", 1)
    result = run_evaluation(quiet(tiny_dir, tune_seconds=60))
    assert not result["quick"]
    assert set(result["tuning"]) == {"MF-ALS", "MF-BPR", "MF-SGD", "EASE", "content similarity", "NCF"}
    ncf = result["tuning"]["NCF"]
    assert len(ncf) == 2 * 2 and result["chosen_hyperparameters"]["NCF"] == max(ncf, key=lambda t: t["ndcg"])["params"]
    assert result["training_time"]["repeats"] == 3


def test_a_malformed_rating_line_names_file_and_line(tiny_dir, tmp_path):
    broken = write_tiny_ml100k(tmp_path / "broken")
    lines = (broken / "u.data").read_text().splitlines()
    lines[6] = "1\t2\tfive\t881250949"
    (broken / "u.data").write_text("\n".join(lines) + "\n")
    with pytest.raises(DatasetError, match=r"u\.data:7: rating is not an integer: 'five'") as error:
        load_dataset(broken)
    assert error.value.path.endswith("u.data") and error.value.line == 7


@pytest.mark.parametrize(
    ("file", "line", "message"),
    [
        ("u.data", "1\t2\t3", r"u\.data:1: expected 4 fields"),
        ("u.data", "1\t999\t3\t881250949", r"u\.data:1: movie id not in the movies file"),
        ("u.data", "1\t2\t9\t881250949", r"u\.data:1: rating must be 1 to 5, got 9"),
        ("u.item", "1|Movie|32-Jan-1995||url" + "|0" * 19, r"u\.item:1: release date"),
    ],
)
def test_other_malformed_lines_are_reported(tmp_path, file, line, message):
    directory = write_tiny_ml100k(tmp_path / "ml")
    lines = (directory / file).read_text(encoding="latin-1").splitlines()
    (directory / file).write_text("\n".join([line, *lines[1:]]) + "\n", encoding="latin-1")
    with pytest.raises(DatasetError, match=message):
        load_dataset(directory)


def test_missing_directory_and_file_are_reported(tmp_path):
    with pytest.raises(DatasetError, match="is not a directory"):
        load_dataset(tmp_path / "nowhere")
    (tmp_path / "u.item").write_text("")
    (tmp_path / "u.data").write_text("1\t1\t5\t881250949\n")
    with pytest.raises(DatasetError, match=r"u\.item: has no rows"):
        load_dataset(tmp_path)


def _other_layouts(source: Path, tmp_path: Path) -> dict[str, Path]:
    """The tiny ml-100k data written as ml-1m, ml-latest and a plain CSV."""
    data = load_dataset(source)
    genres = ["|".join(names) or "(no genres listed)" for names in data.item_genres()]
    years = data.items["release_date"].dt.year
    titles = [f"Movie {i} ({int(y) if y == y else 1997})" for i, y in zip(data.items["content_id"], years, strict=True)]
    r = data.ratings.astype({"rating": int})
    one_m, latest = tmp_path / "ml-1m", tmp_path / "ml-latest"
    one_m.mkdir()
    latest.mkdir()
    (one_m / "movies.dat").write_text(
        "".join(f"{i}::{t}::{g}\n" for i, t, g in zip(data.items["content_id"], titles, genres, strict=True))
    )
    (one_m / "ratings.dat").write_text("".join(f"{u}::{i}::{x}::{t}\n" for u, i, x, t in r.itertuples(index=False)))
    (latest / "movies.csv").write_text(
        "movieId,title,genres\n"
        + "".join(f'{i},"{t}",{g}\n' for i, t, g in zip(data.items["content_id"], titles, genres, strict=True))
    )
    (latest / "ratings.csv").write_text(
        "userId,movieId,rating,timestamp\n"
        + "".join(f"{u},{i},{x}.0,{t}\n" for u, i, x, t in r.itertuples(index=False))
    )
    plain = tmp_path / "ratings.csv"
    plain.write_text(
        "user,item,rating,timestamp\n" + "".join(f"{u},{i},{x},{t}\n" for u, i, x, t in r.itertuples(index=False))
    )
    return {"ml-1m": one_m, "ml-latest": latest, "csv": plain}


def test_every_layout_reads_the_same_ratings(tiny_dir, tmp_path):
    reference = load_dataset(tiny_dir)
    for layout, path in _other_layouts(tiny_dir, tmp_path).items():
        data = load_dataset(path)
        assert data.layout == layout
        assert data.ratings.equals(reference.ratings), layout
        if layout != "csv":
            present = {
                name
                for name, used in zip(reference.genre_names, reference.genre_flags.any(axis=0), strict=True)
                if used
            }
            assert set(data.genre_names) == present
            assert data.genre_flags.sum() == reference.genre_flags.sum()


def test_a_plain_csv_runs_the_whole_evaluation(tiny_dir, tmp_path):
    result = run_evaluation(quiet(_other_layouts(tiny_dir, tmp_path)["csv"], quick=True))
    assert result["layout"] == "csv" and result["reference"] == {}
    names = {row["name"] for row in result["rows"]}
    assert names >= {"popularity", "MF-ALS", "EASE"} and "content similarity" not in names  # no genres
    assert 0.0 < result["candidates"]["recall_at_500"] <= 1.0


def test_model_classes_training_and_evaluation_share_one_set_of_defaults():
    from recommendations.ml import defaults
    from recommendations.ml.content import ContentSimilarity
    from recommendations.ml.ease import EASE
    from recommendations.ml.evaluation import default_params
    from recommendations.ml.matrix_factorization import MatrixFactorization
    from recommendations.ml.ncf import NCFRecommender

    for objective, chosen in defaults.MF_BY_OBJECTIVE.items():
        model = MatrixFactorization(objective=objective)
        assert {name: getattr(model, name) for name in chosen} == chosen, objective
    ncf = NCFRecommender()
    assert (ncf.embedding_dim, ncf.hidden_layers, ncf.n_epochs) == tuple(defaults.NCF.values())
    assert ContentSimilarity().n_neighbors == defaults.CONTENT["n_neighbors"]
    assert EASE().regularization == defaults.EASE["regularization"]
    chosen = default_params()
    assert all(chosen[family].items() >= defaults.FAMILIES[family].items() for family in defaults.FAMILIES)


def test_candidate_quotas_name_pipeline_sources_and_fit_the_total():
    from recommendations.ml.candidate_pipeline import TOTAL_CANDIDATES

    assert set(defaults.CANDIDATE_QUOTAS) <= set(sources.SOURCES)
    assert sum(defaults.CANDIDATE_QUOTAS.values()) <= TOTAL_CANDIDATES
