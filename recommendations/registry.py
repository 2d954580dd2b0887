"""The active model of each kind, held in this process and swapped atomically when the active version changes.

Every web or worker process has one `registry`. At most every RECO_REGISTRY_CHECK_SECONDS it asks the
database which versions are active; a changed one is loaded from this host's private, verified, read-only
copy of its artifact (recommendations/artifact_cache.py: content-addressed, never a file another process may
rewrite), with its large arrays memory-mapped from that copy (RECO_ARTIFACT_MMAP, the default: the processes
of a host share its pages) or read into memory, and only then replaces the old one.

The artifact store is a directory or an fsspec URL shared by every host (recommendations/artifact_store.py,
RECO_ARTIFACT_URL): each host downloads a new version into its own serving cache, hashing it as it comes.
A load that fails (a missing, truncated or altered artifact, or a store that does not answer) keeps the previous model, is logged and is
retried with exponential back-off (RECO_ARTIFACT_RETRY_SECONDS doubling up to RECO_ARTIFACT_RETRY_MAX_SECONDS),
so restoring the file heals the process by itself. `verify_served()`, called off the request path by the
process's monitor thread (recommendations/serving/monitor.py), notices within RECO_ARTIFACT_VERIFY_SECONDS
that a served file changed on disk, from its stat (size, times, inode; a full paced re-hash every
RECO_ARTIFACT_REHASH_SECONDS), hashes it, logs it and, if it was the private copy that serves, reloads a good
copy. `status()` says what the process serves (versions and checksums), what failed and when it retries.
"""

from __future__ import annotations

import contextlib
import importlib
import itertools
import logging
import os
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings

from config.reloading import VersionedSnapshot
from recommendations.artifact_cache import (
    ArtifactCorrupt,
    FileState,
    VerifiedArtifact,
    private_copy,
    prune_unused,
    remove_copy,
    sha256_of,
    state_of,
)
from recommendations.artifact_store import artifact_store
from recommendations.ml.base import Recommender
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
HASH_BYTES_PER_SECOND = 64 * 2**20  # background re-hashing: ~6 % of a core per process, 1 GiB in 16 s
RECENT_ERRORS = 10
UNREACHABLE, UNREADABLE = "unreachable", "unreadable"
SOURCE, COPY = "source", "copy"


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
    loaded_at: float  # time.monotonic()
    artifact: VerifiedArtifact | None = None  # None for models built in memory (ranker training)
    serial: int = 0  # tells two loads of one version apart (a private copy made again)
    mapped: bool = False  # its large arrays are memory-mapped from the private copy
    artifact_path: str = ""  # relative to the artifact store, as registered

    @property
    def checksum(self) -> str:
        return self.artifact.checksum if self.artifact else ""


@dataclass
class LoadFailure:
    """The active version of a kind that did not load, and when it is tried again."""

    version_id: int
    version: str
    error: str
    attempts: int
    failed_at: float  # time.time()
    retry_at: float  # time.monotonic()


@dataclass
class _Watch:
    """What the files of one served model looked like when last hashed, and when the last full hash was."""

    states: dict[tuple[str, str], FileState | None]  # (SOURCE or COPY, file name) -> stat
    hashed_at: float = field(default_factory=time.monotonic)


def artifact_dir() -> Path:
    """The artifact directory (the store itself unless RECO_ARTIFACT_URL names a URL store)."""
    return Path(settings.RECO_ARTIFACT_DIR)


def serving_cache_dir() -> Path:
    return Path(settings.RECO_SERVING_CACHE_DIR)


def load_verified(
    *, kind: str, artifact_path: str, checksum: str, mmap: bool, check_source: bool = False
) -> tuple[Any, VerifiedArtifact]:
    """The model of an artifact, loaded from this host's verified private copy (made now if needed; an intact
    copy serves even if the store's files changed since, unless `check_source`).

    ArtifactCorrupt (a ValueError) or OSError if the artifact is missing, altered or of the wrong kind."""
    verified = private_copy(
        source=artifact_store().location(artifact_path),
        cache_root=serving_cache_dir(),
        checksum=checksum,
        check_source=check_source,
    )
    if kind == ModelKind.RANKER:
        from ranking.ml.ranker import LambdaMARTRanker  # LightGBM only in processes that rank

        return LambdaMARTRanker.load(verified.copy, verify=False), verified  # LightGBM reads the file into memory
    return model_class(kind).load(verified.copy, mmap=mmap, verify=False), verified  # verified while copied


def load_artifact(*, kind: str, artifact_path: str, checksum: str) -> Any:
    """Load and verify one artifact in the store (activation); ValueError/OSError if it is missing, altered or
    of the wrong kind."""
    return load_verified(kind=kind, artifact_path=artifact_path, checksum=checksum, mmap=True, check_source=True)[0]


class ModelRegistry:
    def __init__(self, *, check_seconds: float | None = None) -> None:
        self.check_seconds = settings.RECO_REGISTRY_CHECK_SECONDS if check_seconds is None else check_seconds
        self._failures: dict[str, LoadFailure] = {}  # kind -> its active version that does not load (retried)
        self._problems: dict[tuple[str, str], dict[str, Any]] = {}  # (kind, path) -> a served file that changed
        self._recent_errors: deque[dict[str, Any]] = deque(maxlen=RECENT_ERRORS)
        self._watches: dict[int, _Watch] = {}  # serial -> stat baselines of that loaded model's files
        self._pinned: dict[tuple[str, str], tuple[LoadedModel | None, float]] = {}  # experiment arms' versions
        self._listeners: list[Callable[[], None]] = []
        self._serials = itertools.count(1)
        # The served models, {kind: LoadedModel}: a new dict whenever one changes (readers never see half a swap).
        # No version to compare: each check reads the active versions and hands back the same dict if none moved.
        self._served: VersionedSnapshot[None, dict[str, LoadedModel]] = VersionedSnapshot(
            "models",
            build=self._reconciled,
            check_seconds=lambda: self.check_seconds,
            on_swap=lambda _models: self._changed(),
            log=log,
        )
        # Set by a process whose monitor thread refreshes (gunicorn's workers): then no request waits for the
        # database check or for a new version's download from the artifact store.
        self.background_refresh = False

    def _after_fork_in_child(self) -> None:
        # A thread of the parent (its monitor) may have held the lock at the fork; the child has no such thread.
        self._served.after_fork_in_child()
        self.background_refresh = False  # until the child starts its own monitor

    def add_listener(self, callback: Callable[[], None]) -> None:
        """`callback()` after every swap, failed load or changed file (the monitor publishes the status then)."""
        self._listeners.append(callback)

    @property
    def _models(self) -> dict[str, LoadedModel]:
        return self._served.peek() or {}

    def _changed(self) -> None:
        for callback in list(self._listeners):
            callback()

    def get(self, kind: str) -> LoadedModel | None:
        """The active model of `kind`, or None when none is active or loadable (callers fall back)."""
        if not self.background_refresh:
            self.refresh_if_due()
        return self._models.get(kind)

    def get_version(self, kind: str, version: str) -> LoadedModel | None:
        """A registered version that need not be active (an experiment arm's); loaded once per process.
        None if it does not exist or does not load (tried again after RECO_ARTIFACT_RETRY_MAX_SECONDS)."""
        key = (kind, version)
        cached = self._pinned.get(key)
        if cached is None or (cached[0] is None and time.monotonic() >= cached[1]):
            row = (
                ModelVersion.objects.filter(kind=kind, version=version)
                .values("id", "artifact_path", "checksum")
                .first()
            )
            loaded = None
            if row is not None:
                try:
                    loaded = self._load(kind, row["id"], version, row["artifact_path"], row["checksum"])
                except Exception:
                    log.exception("could not load %s %s for an experiment arm", kind, version)
            self._pinned[key] = (loaded, time.monotonic() + settings.RECO_ARTIFACT_RETRY_MAX_SECONDS)
        return self._pinned[key][0]

    def versions(self) -> dict[str, str]:
        """{kind: version} of the models this process serves right now."""
        if not self.background_refresh:
            self.refresh_if_due()
        return {kind: loaded.version for kind, loaded in sorted(self._models.items())}

    def serving_key(self) -> tuple:
        """Changes whenever a served model does (another version, or the same one loaded again)."""
        return tuple(sorted((kind, m.version_id, m.serial) for kind, m in self._models.items()))

    def refresh_if_due(self) -> None:
        """Read the active versions if RECO_REGISTRY_CHECK_SECONDS passed, and load what changed. Raises only
        before anything was ever read; later failures are logged and the loaded models go on serving."""
        self._served.get()

    def _reconciled(self, _version: None, previous: dict[str, LoadedModel] | None) -> dict[str, LoadedModel]:
        """The models to serve for the active versions now: `previous` itself when nothing changed."""
        active = {
            row["kind"]: row
            for row in ModelVersion.objects.filter(status=ModelVersion.Status.ACTIVE).values(
                "id", "kind", "version", "artifact_path", "checksum"
            )
        }
        models = dict(previous or {})
        changed = False
        for kind in set(models) - set(active):
            del models[kind]  # deactivated without a successor: stop serving it
            changed = True
        for kind in set(self._failures) - set(active):
            del self._failures[kind]
            changed = True
        for kind, row in active.items():
            current = models.get(kind)
            if current and current.version_id == row["id"]:
                continue
            failure = self._failures.get(kind)
            if failure and failure.version_id == row["id"] and time.monotonic() < failure.retry_at:
                continue  # backing off
            self._load_active(models, kind, row, current, failure)
            changed = True
        if previous is not None and not changed:
            return previous
        self._forget_unserved(models)
        return models  # the listeners hear of it once it serves (on_swap)

    def _load_active(
        self,
        models: dict[str, LoadedModel],
        kind: str,
        row: dict[str, Any],
        current: LoadedModel | None,
        failure: LoadFailure | None,
    ) -> None:
        try:
            loaded = self._load(kind, row["id"], row["version"], row["artifact_path"], row["checksum"])
        except Exception as error:
            attempts = failure.attempts + 1 if failure and failure.version_id == row["id"] else 1
            self._failed(kind, row["id"], row["version"], error, attempts, current)
            return
        models[kind] = loaded  # in the new dict: requests see it once the whole dict serves
        self._failures.pop(kind, None)
        if failure and failure.version_id == row["id"]:
            log.warning("loaded %s %s after %d failed attempts", kind, row["version"], failure.attempts)
        log.info(
            "serving %s %s (checksum %s, %s)",
            kind,
            row["version"],
            row["checksum"][:12],
            "memory-mapped" if loaded.mapped else "in memory",
        )
        try:
            prune_unused(serving_cache_dir(), keep={m.checksum for m in models.values()})
        except OSError:
            log.warning("could not prune the serving cache %s", serving_cache_dir(), exc_info=True)

    def _load(self, kind: str, version_id: int, version: str, artifact_path: str, checksum: str) -> LoadedModel:
        mmap = bool(settings.RECO_ARTIFACT_MMAP)
        model, verified = load_verified(kind=kind, artifact_path=artifact_path, checksum=checksum, mmap=mmap)
        return LoadedModel(
            version_id,
            kind,
            version,
            model,
            time.monotonic(),
            verified,
            next(self._serials),
            mmap and kind != ModelKind.RANKER,
            artifact_path,
        )

    def _failed(
        self, kind: str, version_id: int, version: str, error: BaseException, attempts: int, current: LoadedModel | None
    ) -> None:
        base, ceiling = settings.RECO_ARTIFACT_RETRY_SECONDS, settings.RECO_ARTIFACT_RETRY_MAX_SECONDS
        delay = min(base * 2 ** (attempts - 1), ceiling)
        message = f"{type(error).__name__}: {error}"
        self._failures[kind] = LoadFailure(
            version_id, version, message, attempts, time.time(), time.monotonic() + delay
        )
        self._note_error(kind, version, message)
        # The traceback once; the retries say only what failed.
        log.error(
            "could not load %s %s (attempt %d, next try in %.0f s); still serving %s: %s",
            kind,
            version,
            attempts,
            delay,
            current.version if current else "nothing",
            message,
            exc_info=attempts == 1 and not isinstance(error, ArtifactCorrupt | OSError),
        )

    def _note_error(self, kind: str, version: str, message: str) -> None:
        self._recent_errors.append({"at": _iso(time.time()), "kind": kind, "version": version, "message": message})

    def _forget_unserved(self, models: dict[str, LoadedModel]) -> None:
        serving = {m.serial for m in models.values()}
        for serial in set(self._watches) - serving:
            del self._watches[serial]
        served_kinds = {(m.kind, str(m.artifact.source)) for m in models.values() if m.artifact}
        for key, problem in list(self._problems.items()):
            if (key[0], problem["artifact"]) not in served_kinds:
                del self._problems[key]

    # --- background re-verification (the monitor thread; never the request path) ------------------------
    def verify_served(
        self, *, rehash_seconds: float | None = None, bytes_per_second: float | None = HASH_BYTES_PER_SECOND
    ) -> None:
        """Check every file of every served model, in its private copy and in the artifact store.

        A file whose stat is unchanged since it was last hashed is not read, except on a full pass (at most
        every `rehash_seconds`, default RECO_ARTIFACT_REHASH_SECONDS); a changed one is hashed (paced at
        `bytes_per_second`). A changed artifact in the store is logged and shown while the private copy
        keeps serving; a changed private copy that serves (memory-mapped) is replaced by a good copy."""
        rehash_seconds = settings.RECO_ARTIFACT_REHASH_SECONDS if rehash_seconds is None else rehash_seconds
        for kind, loaded in list(self._models.items()):
            artifact = loaded.artifact
            if artifact is None:
                continue
            watch = self._watches.get(loaded.serial)
            if watch is None:
                baseline = {(SOURCE, name): state for name, state in artifact.source_states.items()}
                baseline |= {(COPY, name): state for name, state in artifact.copy_states.items()}
                watch = self._watches[loaded.serial] = _Watch(baseline)
            full = time.monotonic() - watch.hashed_at >= rehash_seconds
            with contextlib.suppress(OSError):  # gone: the check below says so
                os.utime(artifact.copy)  # in use: no other process of this host prunes it (artifact_cache)
            copy_bad = self._check(loaded, COPY, artifact.copy, watch, full, bytes_per_second) if loaded.mapped else {}
            # An object store's ETag changes with any rewrite: downloading every artifact again each hour, in
            # every process, would cost more than it proves, so a URL store's files are only re-hashed on change.
            self._check(
                loaded, SOURCE, artifact.source, watch, full and isinstance(artifact.source, Path), bytes_per_second
            )
            if full:
                watch.hashed_at = time.monotonic()
            if copy_bad:
                self._replace_copy(kind, loaded, copy_bad)

    def _check(
        self,
        loaded: LoadedModel,
        where: str,
        directory: Path,
        watch: _Watch,
        full: bool,
        bytes_per_second: float | None,
    ) -> dict[str, str]:
        """{file name: what is wrong} for the files of `directory` that do not hold what was verified."""
        artifact = loaded.artifact
        assert artifact is not None
        bad: dict[str, str] = {}
        unreachable: str | None = None  # once one file's stat times out, the others are not tried this pass
        for name, expected in artifact.files.items():
            path = directory / name
            try:
                if unreachable is not None:
                    raise OSError(unreachable)
                state = state_of(path)
            except OSError as error:  # the store does not answer (or the mount is gone): the copy keeps serving
                problem = f"{UNREACHABLE} ({error})"
                self._note_file(loaded, where, path, problem, quiet=unreachable is not None)  # logged once
                unreachable = str(error)
                bad[name] = problem
                continue  # its baseline stays: the same file once the store answers clears the problem below
            key = (where, name)
            known = key in watch.states
            if known and watch.states[key] == state and not full:
                noted = self._problems.get((loaded.kind, str(path)))
                if noted is not None and noted["detail"].startswith(UNREACHABLE):
                    self._note_file(loaded, where, path, None)  # reachable again, and unchanged
                elif noted is not None:
                    bad[name] = noted["detail"]
                continue
            watch.states[key] = state
            problem = self._file_problem(path, state, expected, bytes_per_second)
            if problem is not None and problem.startswith(UNREADABLE):
                del watch.states[key]  # not hashed: hash it again on the next pass
            if where == COPY and problem is None and state is not None:
                original = artifact.copy_states.get(name)
                if original is not None and original.inode != state.inode:
                    problem = "replaced on disk by another file: the process maps the old one"
            self._note_file(loaded, where, path, problem)
            if problem is not None:
                bad[name] = problem
        return bad

    @staticmethod
    def _file_problem(path: Path, state: FileState | None, expected: str, bytes_per_second: float | None) -> str | None:
        if state is None:
            return "missing"
        try:
            digest = sha256_of(path, bytes_per_second=bytes_per_second)
        except OSError as error:
            return f"{UNREADABLE} ({error.strerror or error})"
        return (
            None
            if digest == expected
            else f"changed on disk: {state.size:,} bytes, SHA-256 {digest[:12]}… instead of {expected[:12]}…"
        )

    def _note_file(
        self, loaded: LoadedModel, where: str, path: Path, problem: str | None, *, quiet: bool = False
    ) -> None:
        key = (loaded.kind, str(path))
        known = self._problems.get(key)
        if problem is None:
            if known is not None:
                del self._problems[key]
                log.warning("%s of %s %s is intact again: %s", known["where"], loaded.kind, loaded.version, path)
                self._changed()
            return
        if known is not None and known["detail"] == problem:
            return
        serving = "still serving the verified private copy" if where == SOURCE else "loading a good copy"
        if not quiet:
            log.error(
                "%s file of %s %s %s: %s (%s)",
                "artifact store" if where == SOURCE else "private copy",
                loaded.kind,
                loaded.version,
                problem,
                path,
                serving,
            )
        self._problems[key] = {
            "kind": loaded.kind,
            "version": loaded.version,
            "where": where,
            "file": str(path),
            "artifact": str(loaded.artifact.source) if loaded.artifact else "",
            "detail": problem,
            "noticed_at": _iso(time.time()),
        }
        self._note_error(loaded.kind, loaded.version, f"{where} {path.name} {problem}")
        self._changed()

    def _replace_copy(self, kind: str, loaded: LoadedModel, bad: dict[str, str]) -> None:
        """The mapped private copy of a served model changed: drop the copy, load a good one or stop serving it."""
        artifact = loaded.artifact
        assert artifact is not None
        with self._served.exclusive(timeout=60) as held:
            if not held:
                return  # a refresh is stuck; the next pass tries again
            models = dict(self._models)
            if models.get(kind) is not loaded:
                return  # swapped meanwhile
            if any(_same_inode(artifact.copy_states.get(name), FileState.of(artifact.copy / name)) for name in bad):
                remove_copy(artifact.copy)  # still the bad copy on disk (not one another process made anew)
            try:
                fresh = self._load(kind, loaded.version_id, loaded.version, loaded.artifact_path, artifact.checksum)
            except Exception as error:
                # A truncated mapping faults when touched: serving nothing of this kind (callers fall back,
                # flagged) is safer than serving it. The refresh retries the active version with back-off.
                del models[kind]
                self._failed(kind, loaded.version_id, loaded.version, error, 1, None)
            else:
                models[kind] = fresh
                log.warning("serving %s %s from a new private copy %s", kind, loaded.version, fresh.artifact.copy)
            for name in bad:
                self._problems.pop((kind, str(artifact.copy / name)), None)
            self._forget_unserved(models)
            self._served.replace(models)
        self._changed()

    # --- what this process serves ---------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        """The versions and checksums served, failed loads with their next try, changed files, recent errors."""
        now_wall, now = time.time(), time.monotonic()
        models = [
            {
                "kind": m.kind,
                "version": m.version,
                "version_id": m.version_id,
                "checksum": m.checksum,
                "copy": str(m.artifact.copy) if m.artifact else "",
                "mapped": m.mapped,
                "backend": getattr(m.model, "backend", ""),
                "loaded_at": _iso(now_wall - (now - m.loaded_at)),
            }
            for m in sorted(self._models.values(), key=lambda m: m.kind)
        ]
        failures = [
            {
                "kind": kind,
                "version": f.version,
                "version_id": f.version_id,
                "error": f.error,
                "attempts": f.attempts,
                "failed_at": _iso(f.failed_at),
                "next_retry_at": _iso(now_wall + max(f.retry_at - now, 0.0)),
            }
            for kind, f in sorted(self._failures.items())
        ]
        return {
            "models": models,
            "failures": failures,
            "problems": list(self._problems.values()),
            "last_errors": list(self._recent_errors),
        }


def _same_inode(first: FileState | None, second: FileState | None) -> bool:
    return first is not None and second is not None and first.inode == second.inode


def _iso(timestamp: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(timestamp))


registry = ModelRegistry()
os.register_at_fork(after_in_child=lambda: registry._after_fork_in_child())
