"""The offline evaluation core on a tiny MovieLens-100k-shaped directory (real file formats, synthetic ratings)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from recommendations.ml import evaluation, sources
from recommendations.ml.evaluation import (
    CANDIDATES,
    GENRES_100K,
    CandidateKnobs,
    DatasetError,
    EvaluationConfig,
    load_ml100k,
    ml100k_catalog,
    run_evaluation,
)

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
    return EvaluationConfig(data_dir=data_dir, show_progress=False, log=lambda line: None, threads=1, **options)


@pytest.fixture(scope="module")
def quick_json(tiny_dir, tmp_path_factory) -> dict:
    """One quick run (no tuning) shared by the tests that read its results, as written to JSON."""
    path = tmp_path_factory.mktemp("results") / "eval.json"
    run_evaluation(quiet(tiny_dir, quick=True, json_path=path))
    return json.loads(path.read_text())


def test_loader_reads_ids_genres_and_release_dates(tiny_dir):
    data = load_ml100k(tiny_dir)
    assert len(data.ratings) == 40 * 12 and data.genre_flags.shape == (30, 19)
    assert data.items["content_id"].tolist() == list(range(1, 31))
    assert data.items["release_date"].isna().sum() == 1


def test_catalog_index_follows_u_item(tiny_dir):
    data = load_ml100k(tiny_dir)
    catalog = ml100k_catalog(data)
    assert catalog.content_ids.tolist() == list(range(1, 31))
    flags = (catalog.genre_masks[:, None] >> np.arange(19, dtype=np.uint32)) & 1
    assert np.array_equal(flags.astype(bool), data.genre_flags)
    assert catalog.allowed(tier=1, country="FR", maturity_cap=0).all()
    assert catalog.date_added_days[-1] == 0 and catalog.release_year[-1] == 0  # unknown date: never new
    assert catalog.date_added_days[0] == LAST_DAY - 20


def test_quick_run_writes_every_row_with_sane_metrics(quick_json):
    written = quick_json
    names = [row["name"] for row in written["rows"]]
    assert names == ["popularity", "MF-ALS", "MF-BPR", "MF-SGD", "implicit ALS direct", "implicit BPR direct", "NCF",
                     "content similarity", "EASE"]  # fmt: skip
    for row in written["rows"]:
        m = row["metrics"]
        for key in ("map", "ndcg", "precision", "recall", "coverage", "ild", "recall_at_500"):
            assert 0.0 <= m[key] <= 1.0, (row["name"], key)
        assert m["novelty"] > 0 and 1 <= m["genres_top20"] <= 19
    # Every user's unseen items fit in 500 slots, so any full list holds every test item.
    assert written["rows"][0]["metrics"]["recall_at_500"] == pytest.approx(1.0)
    assert written["quick"] and written["tuning"] == {} and written["training_time"] is None


def test_merged_candidates_use_the_service_sources(quick_json):
    candidates = quick_json["candidates"]
    assert candidates["knobs"] == CandidateKnobs().__dict__
    assert 0.9 <= candidates["recall_at_500"] <= 1.0  # tiny catalog: the sources reach nearly everything
    per_source = candidates["per_source"]
    assert set(per_source) == {*sources.DEFAULT_QUOTAS, sources.POPULAR_IN_GENRES, sources.EASE_SOURCE}
    assert per_source[sources.CONTINUE_WATCHING]["users_served"] == 0  # train titles are excluded
    assert per_source[sources.POPULAR_IN_GENRES]["users_served"] == 0  # every evaluated user has a history
    assert sum(source["contributed_share"] for source in per_source.values()) == pytest.approx(1.0)
    assert per_source[sources.COLLABORATIVE]["recall_at_quota"] > 0.5
    assert candidates["mean_candidates_per_user"] <= CANDIDATES


def test_tuning_picks_from_the_grids_on_validation(tiny_dir, monkeypatch):
    # Two points per grid and short NCF runs: the tuning path, not the search, is under test.
    small_grids = {family: {name: values[:2] for name, values in grid.items()} for family, grid in evaluation.GRIDS.items()}
    monkeypatch.setattr(evaluation, "GRIDS", small_grids)
    monkeypatch.setattr(evaluation, "CANDIDATE_GRID", {**evaluation.CANDIDATE_GRID, "ease_quota": [0, 100],
                                                       "new_release_window_days": [365], "trending_decay": [0.9]})
    monkeypatch.setattr(evaluation, "NCF_MAX_EPOCHS", 2)
    monkeypatch.setattr(evaluation, "NCF_CHECK_EVERY", 1)
    result = run_evaluation(quiet(tiny_dir, tune_seconds=60))
    assert not result["quick"]
    assert set(result["tuning"]) == {"MF-ALS", "MF-BPR", "MF-SGD", "EASE", "content similarity", "NCF"}
    ncf = result["tuning"]["NCF"]
    assert len(ncf) == 2 * 2 and result["chosen_hyperparameters"]["NCF"] == max(ncf, key=lambda t: t["ndcg"])["params"]
    options = result["candidates"]["validation_options"]
    assert len(options) == 2 * 2  # ease quota × list depth
    best = max(options, key=lambda option: option["validation_recall_at_500"])
    assert result["candidates"]["knobs"] == best["knobs"]
    assert result["training_time"]["repeats"] == 3


def test_a_malformed_rating_line_names_file_and_line(tiny_dir, tmp_path):
    broken = write_tiny_ml100k(tmp_path / "broken")
    lines = (broken / "u.data").read_text().splitlines()
    lines[6] = "1\t2\tfive\t881250949"
    (broken / "u.data").write_text("\n".join(lines) + "\n")
    with pytest.raises(DatasetError, match=r"u\.data:7: rating is not an integer: 'five'") as error:
        load_ml100k(broken)
    assert error.value.path.endswith("u.data") and error.value.line == 7


@pytest.mark.parametrize(
    ("file", "line", "message"),
    [
        ("u.data", "1\t2\t3", r"u\.data:1: expected 4 fields"),
        ("u.data", "1\t999\t3\t881250949", r"u\.data:1: movie id not in u.item"),
        ("u.data", "1\t2\t9\t881250949", r"u\.data:1: rating must be 1 to 5, got 9"),
        ("u.item", "1|Movie|32-Jan-1995||url" + "|0" * 19, r"u\.item:1: release date"),
    ],
)
def test_other_malformed_lines_are_reported(tmp_path, file, line, message):
    directory = write_tiny_ml100k(tmp_path / "ml")
    lines = (directory / file).read_text(encoding="latin-1").splitlines()
    (directory / file).write_text("\n".join([line, *lines[1:]]) + "\n", encoding="latin-1")
    with pytest.raises(DatasetError, match=message):
        load_ml100k(directory)


def test_missing_directory_and_file_are_reported(tmp_path):
    with pytest.raises(DatasetError, match="is not a directory"):
        load_ml100k(tmp_path / "nowhere")
    (tmp_path / "u.item").write_text("")
    with pytest.raises(DatasetError, match=r"u\.item: has no rows"):
        load_ml100k(tmp_path)
