"""Registering, activating and rolling back model versions."""
from __future__ import annotations

import datetime as dt
import shutil
import uuid
from pathlib import Path
from typing import Any

from django.db import transaction
from django.utils import timezone

from recommendations.ml.base import META_FILE, file_sha256
from recommendations.models import ModelKind, ModelVersion
from recommendations.registry import RECOMMENDER_KINDS, artifact_dir, load_artifact, model_class


class ModelActivationError(Exception):
    pass


def model_version_register(
    *,
    kind: str,
    saved_model_dir: Path,
    metrics: dict[str, Any] | None = None,
    params: dict[str, Any] | None = None,
    data_from: dt.datetime | None = None,
    data_to: dt.datetime | None = None,
    notes: str = "",
) -> ModelVersion:
    """Move a saved model into the artifact store and record it as a candidate version."""
    if kind == ModelKind.RANKER:
        from ranking.ml.ranker import LambdaMARTRanker

        LambdaMARTRanker.load(saved_model_dir, verify=True)  # refuses another class, format or feature set
    elif kind in RECOMMENDER_KINDS:
        model_class(kind).read_meta(saved_model_dir)  # refuses another class or format
    else:
        raise ValueError(f"unknown model kind {kind!r}; expected one of {sorted(ModelKind.values)}")
    version = f"{timezone.now():%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}"
    relative = f"{kind}/{version}"
    target = artifact_dir() / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(saved_model_dir), target)
    return ModelVersion.objects.create(
        kind=kind,
        version=version,
        artifact_path=relative,
        checksum=file_sha256(target / META_FILE),
        metrics=metrics or {},
        params=params or {},
        data_from=data_from,
        data_to=data_to,
        notes=notes,
    )


def model_version_activate(*, version_id: int, by_user=None) -> ModelVersion:
    """Make a version the active one of its kind (retiring the previous); refuses an artifact that does not load."""
    with transaction.atomic():
        version = ModelVersion.objects.select_for_update().get(pk=version_id)
        if version.status == ModelVersion.Status.ACTIVE:
            return version
        try:
            load_artifact(kind=version.kind, artifact_path=version.artifact_path, checksum=version.checksum)
        except (OSError, ValueError, KeyError) as error:
            raise ModelActivationError(f"{version} cannot be activated: {error}") from error
        ModelVersion.objects.filter(kind=version.kind, status=ModelVersion.Status.ACTIVE).update(
            status=ModelVersion.Status.RETIRED
        )
        version.status = ModelVersion.Status.ACTIVE
        version.activated_at = timezone.now()
        version.activated_by = by_user
        version.save(update_fields=["status", "activated_at", "activated_by"])
    return version


def model_version_rollback(*, kind: str, by_user=None) -> ModelVersion:
    """Re-activate the most recently active retired version of `kind`."""
    previous = (
        ModelVersion.objects.filter(kind=kind, status=ModelVersion.Status.RETIRED, activated_at__isnull=False)
        .order_by("-activated_at")
        .first()
    )
    if previous is None:
        raise ModelActivationError(f"no earlier {kind} version to roll back to")
    return model_version_activate(version_id=previous.pk, by_user=by_user)
