"""The active model of each kind, held in this process and swapped atomically when the active version changes.

Every web or worker process has one `registry`. At most every RECO_REGISTRY_CHECK_SECONDS it asks the
database which versions are active; a changed one is loaded (factor matrices memory-mapped, so processes
share one copy) and verified before it replaces the old one. A corrupt or missing artifact is logged and
never replaces a working model.
"""
from __future__ import annotations

import importlib
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings

from recommendations.ml.base import META_FILE, Recommender, file_sha256
from recommendations.models import ModelKind, ModelVersion

log = logging.getLogger(__name__)

# Imported when first needed: a web process that serves no NCF model never loads torch (~190 MiB a worker).
_MODEL_CLASS_PATHS: dict[str, str] = {
    ModelKind.MATRIX_FACTORIZATION: "recommendations.ml.matrix_factorization:MatrixFactorization",
    ModelKind.NCF: "recommendations.ml.ncf:NCFRecommender",
    ModelKind.CONTENT: "recommendations.ml.content:ContentSimilarity",
    ModelKind.POPULARITY: "recommendations.ml.popularity:PopularityRecommender",
    ModelKind.EASE: "recommendations.ml.ease:EASE",
}
RECOMMENDER_KINDS = frozenset(_MODEL_CLASS_PATHS)


def model_class(kind: str) -> type[Recommender]:
    """The Recommender class of `kind`; KeyError for the ranker and unknown kinds."""
    module, name = _MODEL_CLASS_PATHS[kind].split(":")
    return getattr(importlib.import_module(module), name)


@dataclass(frozen=True)
class LoadedModel:
    version_id: int
    kind: str
    version: str
    model: Any  # a Recommender, or a LambdaMARTRanker for kind 'ranker'
    loaded_at: float


def artifact_dir() -> Path:
    return Path(settings.RECO_ARTIFACT_DIR)


def load_artifact(*, kind: str, artifact_path: str, checksum: str) -> Any:
    """Load and verify one artifact; ValueError/OSError if it is missing, altered or of the wrong kind."""
    directory = artifact_dir() / artifact_path
    if file_sha256(directory / META_FILE) != checksum:
        raise ValueError(f"{directory}: meta.json does not match the registered checksum")
    if kind == ModelKind.RANKER:
        from ranking.ml.ranker import LambdaMARTRanker  # LightGBM only in processes that rank

        return LambdaMARTRanker.load(directory, verify=True)
    return model_class(kind).load(directory, mmap=True, verify=True)


class ModelRegistry:
    def __init__(self, *, check_seconds: float | None = None) -> None:
        self.check_seconds = settings.RECO_REGISTRY_CHECK_SECONDS if check_seconds is None else check_seconds
        self._models: dict[str, LoadedModel] = {}
        self._broken: dict[str, int] = {}  # kind -> version id that failed to load (not retried)
        self._pinned: dict[tuple[str, str], LoadedModel | None] = {}  # versions experiment arms ask for
        self._checked_at = float("-inf")
        self._refreshing = threading.Lock()

    def get(self, kind: str) -> LoadedModel | None:
        """The active model of `kind`, or None when none is active or loadable (callers fall back)."""
        self.refresh_if_due()
        return self._models.get(kind)

    def get_version(self, kind: str, version: str) -> LoadedModel | None:
        """A registered version that need not be active (an experiment arm's); loaded once per process.
        None if it does not exist or does not load."""
        key = (kind, version)
        if key not in self._pinned:
            row = ModelVersion.objects.filter(kind=kind, version=version).values(
                "id", "artifact_path", "checksum").first()  # fmt: skip
            loaded = None
            if row is not None:
                try:
                    model = load_artifact(kind=kind, artifact_path=row["artifact_path"], checksum=row["checksum"])
                    loaded = LoadedModel(row["id"], kind, version, model, time.monotonic())
                except Exception:
                    log.exception("could not load %s %s for an experiment arm", kind, version)
            self._pinned[key] = loaded
        return self._pinned[key]

    def versions(self) -> dict[str, str]:
        """{kind: version} of the models this process serves right now."""
        self.refresh_if_due()
        return {kind: loaded.version for kind, loaded in sorted(self._models.items())}

    def refresh_if_due(self) -> None:
        if time.monotonic() - self._checked_at < self.check_seconds:
            return
        if not self._refreshing.acquire(blocking=False):
            return  # another thread is refreshing; serve what is loaded
        try:
            self._checked_at = time.monotonic()
            self._refresh()
        finally:
            self._refreshing.release()

    def _refresh(self) -> None:
        active = {
            row["kind"]: row
            for row in ModelVersion.objects.filter(status=ModelVersion.Status.ACTIVE).values(
                "id", "kind", "version", "artifact_path", "checksum"
            )
        }
        for kind in set(self._models) - set(active):
            del self._models[kind]  # deactivated without a successor: stop serving it
        for kind, row in active.items():
            current = self._models.get(kind)
            if (current and current.version_id == row["id"]) or self._broken.get(kind) == row["id"]:
                continue
            try:
                model = load_artifact(kind=kind, artifact_path=row["artifact_path"], checksum=row["checksum"])
            except Exception:
                log.exception("could not load %s %s; still serving %s", kind, row["version"],
                              current.version if current else "nothing")  # fmt: skip
                self._broken[kind] = row["id"]
                continue
            # One dict assignment: a request sees the old model or the new one, never half of either.
            self._models[kind] = LoadedModel(row["id"], kind, row["version"], model, time.monotonic())
            log.info("serving %s %s", kind, row["version"])


registry = ModelRegistry()
