"""Training from the database: validation metrics, registration, the activation gate, commands and jobs."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from django.core.management import CommandError, call_command

from recommendations.models import ModelKind, ModelVersion
from recommendations.registry import ModelRegistry
from recommendations.training.jobs import model_train
from tasks.models import JobRun
from tasks.training import train_model


@pytest.fixture
def world(db, settings, tmp_path):
    settings.RECO_ARTIFACT_DIR = tmp_path / "artifacts"
    call_command(
        "generate_synthetic",
        "--titles",
        "400",
        "--accounts",
        "300",
        "--events",
        "30000",
        "--seed",
        "3",
        "--as-of",
        "2026-06-01",
        "--ground-truth-dir",
        str(tmp_path / "truth"),
        verbosity=0,
    )


@pytest.mark.parametrize("kind", [ModelKind.POPULARITY, ModelKind.MATRIX_FACTORIZATION, ModelKind.CONTENT])
def test_training_registers_measures_and_activates(world, kind):
    result = model_train(kind=kind)

    version = result.version
    assert result.activated and version.status == ModelVersion.Status.ACTIVE
    assert 0 < version.metrics["ndcg_at_10"] <= 1 and version.metrics["users"] > 0
    assert version.data_from < version.data_to <= dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
    served = ModelRegistry(check_seconds=0).get(kind)
    assert served.version == version.version
    some_user = int(served.model.user_map.ids[0])
    assert len(served.model.recommend(some_user, n=10)) == 10


def test_collaborative_filtering_beats_popularity_on_validation(world):
    popularity = model_train(kind=ModelKind.POPULARITY).version.metrics["ndcg_at_10"]
    mf = model_train(kind=ModelKind.MATRIX_FACTORIZATION).version.metrics["ndcg_at_10"]
    assert mf > popularity


def test_a_worse_model_is_registered_but_not_activated(world):
    first = model_train(kind=ModelKind.POPULARITY).version
    ModelVersion.objects.filter(pk=first.pk).update(metrics={"ndcg_at_10": 0.99})

    second = model_train(kind=ModelKind.POPULARITY)

    assert not second.activated and second.version.status == ModelVersion.Status.CANDIDATE
    assert "worse" in second.reason
    assert ModelVersion.objects.get(kind=ModelKind.POPULARITY, status="active").pk == first.pk


def test_training_only_before_a_cutoff(world):
    until = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    version = model_train(kind=ModelKind.POPULARITY, until=until, activation="never").version
    assert version.data_to == until and version.status == ModelVersion.Status.CANDIDATE


def test_ncf_trains_from_the_database(world):
    result = model_train(kind=ModelKind.NCF, params={"n_epochs": 1, "embedding_dim": 8, "hidden_layers": [16, 8]})
    assert result.activated and result.version.metrics["ndcg_at_10"] > 0


def test_train_models_command_and_unknown_kind(world, capsys):
    call_command("train_models", "--kinds", "popularity")
    assert "popularity" in capsys.readouterr().out
    with pytest.raises(CommandError, match="Unknown kinds"):
        call_command("train_models", "--kinds", "bogus")


def test_empty_history_is_a_clear_error(db):
    with pytest.raises(CommandError, match="no viewing history"):
        call_command("train_models", "--kinds", "popularity")


def test_training_job_records_its_run(world):
    interactions = train_model.apply(kwargs={"kind": "popularity"}).get()
    run = JobRun.objects.get(job="tasks.training.train_model")
    assert run.status == JobRun.Status.SUCCEEDED and run.rows_written == interactions > 0


def test_history_is_read_by_partition_or_in_profile_chunks_without_losing_rows(world, monkeypatch):
    from config import partitions
    from recommendations import selectors

    assert partitions.partitions(selectors.VIEWING_TABLE), "the test database partitions the history by month"
    by_partition = selectors.training_interactions()
    until = dt.datetime(2026, 5, 1, tzinfo=dt.UTC)
    before = selectors.training_interactions(until=until)
    monkeypatch.setattr(selectors.config_partitions, "partitions", lambda table: [])
    monkeypatch.setattr(selectors, "PROFILES_PER_READ", 37)
    chunked = selectors.training_interactions()

    assert len(by_partition) == len(chunked) == 30_000
    key = ["user_id", "content_id", "started_at"]
    pd.testing.assert_frame_equal(
        by_partition.sort_values(key).reset_index(drop=True), chunked.sort_values(key).reset_index(drop=True)
    )
    expected = chunked[chunked["started_at"] < until.replace(tzinfo=None)]
    pd.testing.assert_frame_equal(
        before.sort_values(key).reset_index(drop=True), expected.sort_values(key).reset_index(drop=True)
    )


def test_the_registered_als_model_continues_the_validated_one_over_every_interaction(world):
    from recommendations import selectors
    from recommendations.ml.matrix_factorization import MatrixFactorization
    from recommendations.training.jobs import REFIT_EPOCHS

    warm = model_train(kind=ModelKind.MATRIX_FACTORIZATION, activation="never", params={REFIT_EPOCHS: 3}).version
    fresh = model_train(kind=ModelKind.MATRIX_FACTORIZATION, activation="never", params={REFIT_EPOCHS: 0}).version

    assert warm.params[REFIT_EPOCHS] == 3 and REFIT_EPOCHS not in fresh.params
    # The same split and the same validated model: the gate sees the same metrics either way.
    assert warm.metrics["ndcg_at_10"] == fresh.metrics["ndcg_at_10"]
    assert warm.metrics["validation_fit_seconds"] > 0 and warm.metrics["fit_seconds"] > 0
    history = selectors.training_interactions()
    registry = ModelRegistry(check_seconds=0)
    for version in (warm, fresh):
        model = registry.get_version(ModelKind.MATRIX_FACTORIZATION, version.version).model
        assert isinstance(model, MatrixFactorization)
        assert len(model.user_map) == history["user_id"].nunique()  # every profile with history, not the 75 %
        assert model.user_items.nnz == len(history.drop_duplicates(["user_id", "content_id"]))


def test_a_warm_start_needs_als():
    from recommendations.ml.matrix_factorization import MatrixFactorization

    frame = pd.DataFrame({"user_id": [1, 1, 2], "content_id": [1, 2, 2], "rating": [5.0, 3.0, 4.0]})
    bpr = MatrixFactorization(n_factors=4, n_epochs=2, objective="bpr").fit(frame)
    with pytest.raises(ValueError, match="warm start"):
        MatrixFactorization(n_factors=4, n_epochs=2, objective="bpr").fit(frame, warm_start=bpr)
    als = MatrixFactorization(n_factors=4, n_epochs=2).fit(frame)
    more = pd.concat([frame, pd.DataFrame({"user_id": [3], "content_id": [3], "rating": [5.0]})])
    continued = MatrixFactorization(n_factors=4, n_epochs=2).fit(more, warm_start=als, epochs=1)
    assert continued.user_factors.shape == (3, 4) and continued.item_factors.shape == (3, 4)


def test_validation_also_reports_candidate_recall_at_500(world):
    metrics = model_train(kind=ModelKind.MATRIX_FACTORIZATION).version.metrics
    assert metrics["recall_at_10"] <= metrics["recall_at_500"] <= 1
