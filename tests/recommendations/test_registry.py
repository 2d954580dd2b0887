"""Model versions: register, activate, roll back, and hot-swap in the serving process; bad artifacts never serve."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.db import IntegrityError, transaction

from recommendations.models import ModelKind, ModelVersion
from recommendations.registry import ModelRegistry, artifact_dir
from recommendations.services import ModelActivationError, model_version_activate, model_version_rollback
from tests.factories.recommendations import ModelVersionFactory


@pytest.fixture(autouse=True)
def artifacts_in_tmp(settings, tmp_path):
    settings.RECO_ARTIFACT_DIR = tmp_path / "artifacts"
    settings.RECO_SERVING_CACHE_DIR = tmp_path / "serving-cache"


def _top_item(registry: ModelRegistry) -> int:
    return registry.get(ModelKind.POPULARITY).model.recommend(user_id=1, n=1, exclude_seen=False)[0][0]


def test_registered_version_is_a_candidate_with_its_artifact(db):
    version = ModelVersionFactory()
    assert version.status == ModelVersion.Status.CANDIDATE
    assert (artifact_dir() / version.artifact_path / "meta.json").is_file()
    assert len(version.checksum) == 64


def test_activation_retires_the_previous_version(db):
    first, second = ModelVersionFactory(), ModelVersionFactory(heavy_item=30)
    model_version_activate(version_id=first.pk)
    model_version_activate(version_id=second.pk)

    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, second.status) == ("retired", "active")
    assert second.activated_at is not None


def test_database_allows_one_active_version_per_kind(db):
    first, second = ModelVersionFactory(), ModelVersionFactory()
    model_version_activate(version_id=first.pk)
    with pytest.raises(IntegrityError), transaction.atomic():
        ModelVersion.objects.filter(pk=second.pk).update(status=ModelVersion.Status.ACTIVE)


def test_registry_swaps_to_the_new_active_version(db):
    registry = ModelRegistry(check_seconds=0)
    first, second = ModelVersionFactory(heavy_item=20), ModelVersionFactory(heavy_item=30)
    assert registry.get(ModelKind.POPULARITY) is None

    model_version_activate(version_id=first.pk)
    assert _top_item(registry) == 20
    model_version_activate(version_id=second.pk)
    assert _top_item(registry) == 30
    assert registry.versions() == {"popularity": second.version}


def test_registry_checks_at_most_every_few_seconds(db):
    registry = ModelRegistry(check_seconds=3600)
    registry.refresh_if_due()
    model_version_activate(version_id=ModelVersionFactory().pk)
    assert registry.get(ModelKind.POPULARITY) is None  # not checked again yet


def test_corrupt_artifact_cannot_be_activated(db):
    good, bad = ModelVersionFactory(), ModelVersionFactory(heavy_item=30)
    model_version_activate(version_id=good.pk)
    with open(artifact_dir() / bad.artifact_path / "arrays.npz", "r+b") as handle:
        handle.seek(100)
        handle.write(b"garbage")

    with pytest.raises(ModelActivationError, match="checksum"):
        model_version_activate(version_id=bad.pk)
    good.refresh_from_db()
    assert good.status == ModelVersion.Status.ACTIVE


def test_artifact_lost_after_activation_never_replaces_the_serving_model(db, settings, tmp_path):
    registry = ModelRegistry(check_seconds=0)
    good, later = ModelVersionFactory(heavy_item=20), ModelVersionFactory(heavy_item=30)
    model_version_activate(version_id=good.pk)
    assert _top_item(registry) == 20

    model_version_activate(version_id=later.pk)
    (artifact_dir() / later.artifact_path / "meta.json").unlink()  # e.g. a disk cleanup went wrong
    settings.RECO_SERVING_CACHE_DIR = tmp_path / "another-host"  # without the copy activation made here

    assert _top_item(registry) == 20
    assert registry.versions() == {"popularity": good.version}


def test_rollback_reactivates_the_previous_version(db):
    first, second = ModelVersionFactory(), ModelVersionFactory()
    model_version_activate(version_id=first.pk)
    model_version_activate(version_id=second.pk)

    assert model_version_rollback(kind=ModelKind.POPULARITY).pk == first.pk
    with pytest.raises(ModelActivationError):
        model_version_rollback(kind=ModelKind.EASE)


def test_activate_model_command(db):
    version = ModelVersionFactory()
    call_command("activate_model", str(version.pk), verbosity=0)
    version.refresh_from_db()
    assert version.status == ModelVersion.Status.ACTIVE
