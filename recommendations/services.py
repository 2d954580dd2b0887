"""Registering, activating and rolling back model versions.

A version is registered only once its artifact is complete: training saves into a staging directory
inside the artifact store, registration verifies every file's checksum there, renames the directory into
place (one atomic step on one filesystem) and only then creates the ModelVersion row. A worker killed at
any point leaves at most a staging directory (pruned by the next training), never a row. With a URL store
(RECO_ARTIFACT_URL, e.g. S3) the staging directory is local and registering uploads the artifact under a
temporary name, copies it to the version's own and verifies every file there before the row is created
(recommendations/artifact_store.py).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from recommendations.artifact_cache import artifact_files
from recommendations.artifact_store import artifact_store
from recommendations.ml.base import META_FILE, file_sha256
from recommendations.models import ModelKind, ModelVersion
from recommendations.registry import RECOMMENDER_KINDS, artifact_dir, load_artifact, model_class

log = logging.getLogger(__name__)

STAGING_DIR = ".staging"  # under the artifact store, so that registering is a rename on one filesystem
STAGING_STALE_SECONDS = 3 * 3600  # older than the training job's hard limit (2 h 5 min): its writer is dead


class ModelActivationError(Exception):
    pass


@contextmanager
def model_artifact_staging(*, kind: str) -> Iterator[Path]:
    """A fresh directory inside the artifact store to save a model into, removed on exit (a registered
    model has been moved out of it by then). Staging left by killed trainings is pruned on entry. With a URL
    store it is on local disk, under RECO_DATA_DIR (registering uploads it)."""
    root = (Path(settings.RECO_DATA_DIR) if artifact_store().remote else artifact_dir()) / STAGING_DIR
    root.mkdir(parents=True, exist_ok=True)
    _staging_prune(root, older_than=time.time() - STAGING_STALE_SECONDS)
    scratch = root / f"{kind}-{uuid.uuid4().hex}"
    scratch.mkdir()
    try:
        yield scratch
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _staging_prune(root: Path, *, older_than: float) -> None:
    for stale in root.iterdir():
        try:
            if stale.stat().st_mtime < older_than:
                shutil.rmtree(stale, ignore_errors=True)
                log.info("removed stale model staging %s (its training was killed)", stale)
        except FileNotFoundError:  # another training pruned it first
            continue


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
    """Move a complete, verified saved model into the artifact store, then record it as a candidate version."""
    saved_model_dir = Path(saved_model_dir)
    if kind not in ModelKind.values:
        raise ValueError(f"unknown model kind {kind!r}; expected one of {sorted(ModelKind.values)}")
    store = artifact_store()
    staging = artifact_dir() / STAGING_DIR
    if not store.remote and saved_model_dir.resolve().parent.parent != staging.resolve():  # another filesystem
        with model_artifact_staging(kind=kind) as scratch:
            copied = shutil.copytree(saved_model_dir, scratch / "model")
            return model_version_register(
                kind=kind,
                saved_model_dir=copied,
                metrics=metrics,
                params=params,
                data_from=data_from,
                data_to=data_to,
                notes=notes,
            )
    _artifact_verify(kind, saved_model_dir)
    version = f"{timezone.now():%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}"
    relative = f"{kind}/{version}"
    checksum = file_sha256(saved_model_dir / META_FILE)
    if store.remote:  # uploaded under a temporary name, copied to its own, verified there; nothing left on failure
        files = artifact_files((saved_model_dir / META_FILE).read_bytes(), checksum=checksum, where=saved_model_dir)
        store.publish(saved_model_dir, relative, files)
    else:
        target = artifact_dir() / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        os.rename(saved_model_dir, target)  # atomic: the artifact path holds a whole artifact or nothing
    try:
        return ModelVersion.objects.create(
            kind=kind,
            version=version,
            artifact_path=relative,
            checksum=checksum,
            metrics=metrics or {},
            params=params or {},
            data_from=data_from,
            data_to=data_to,
            notes=notes,
        )
    except BaseException:
        if store.remote:  # no row, so no artifact either
            store.remove(relative)
        else:
            shutil.rmtree(target, ignore_errors=True)
        raise


def _artifact_verify(kind: str, directory: Path) -> None:
    """Every file present with the checksum its meta.json lists; ValueError (or OSError) otherwise."""
    if kind == ModelKind.RANKER:
        from ranking.ml.ranker import LambdaMARTRanker

        LambdaMARTRanker.load(directory, verify=True)  # refuses another class, format or feature set
    elif kind in RECOMMENDER_KINDS:
        model_class(kind).load(directory, mmap=True, verify=True)  # refuses another class, format or a bad file
    else:
        raise ValueError(f"unknown model kind {kind!r}; expected one of {sorted(ModelKind.values)}")


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
