"""Where model artifacts live, for every host: a directory (local disk or an NFS-style shared mount) or an fsspec
URL (`s3://bucket/prefix` on any S3-compatible server).

RECO_ARTIFACT_URL picks the store: empty (the default) keeps the directory RECO_ARTIFACT_DIR; a URL puts the
artifacts behind it (RECO_ARTIFACT_ENDPOINT_URL names a non-AWS S3 server; credentials come from the usual AWS
variables). Either way a version is `<kind>/<version>/` under the store's root, and serving never reads the
store in place: each host copies it into its own verified, read-only serving cache (artifact_cache.py).

Publishing is all or nothing. On a directory, training saves into `.staging/` inside the store and registering
renames the whole directory into place (services.py). On a URL, where there is no rename, `publish()` uploads
every file under `.staging/<uuid>/`, copies each to the version's own name (meta.json last), hashes what is then
under that name against the checksums meta.json lists, and only then returns: the registry row is written
after it, so a partial or damaged upload never becomes a version (and what it left is removed). Every call to
the store has a connect and a read timeout (RECO_ARTIFACT_STORE_TIMEOUT_SECONDS); an unreachable store raises
StoreUnavailable (an OSError), which the registry treats like any failed load: keep the model, retry later.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings

from recommendations.artifact_cache import ArtifactCorrupt, FileState, sha256_of
from recommendations.ml.base import META_FILE

log = logging.getLogger(__name__)

STAGING_PREFIX = ".staging"
STAGING_STALE_SECONDS = 3 * 3600  # older than the training job's hard limit (2 h 5 min): its uploader is dead


class StoreUnavailable(OSError):
    """The artifact store did not answer (down, unreachable, timed out, refused the credentials)."""


class _Reader:
    """A store object opened for reading: `read(n)` and a context manager; failures become StoreUnavailable."""

    def __init__(self, handle: Any, url: str) -> None:
        self._handle, self._url = handle, url

    def read(self, size: int = -1) -> bytes:
        try:
            return self._handle.read(size)
        except FileNotFoundError:
            raise
        except Exception as error:
            raise StoreUnavailable(f"{self._url}: {type(error).__name__}: {error}") from error

    def __enter__(self) -> _Reader:
        return self

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(Exception):
            self._handle.close()


@dataclass(frozen=True)
class RemoteFile:
    """One object of a URL store; artifact_cache opens, stats and hashes it like a Path."""

    store: UrlStore
    key: str  # relative to the store's root

    @property
    def name(self) -> str:
        return self.key.rsplit("/", 1)[-1]

    def __str__(self) -> str:
        return self.store.url_of(self.key)

    def open(self) -> _Reader:
        return self.store.open(self.key)

    def read_bytes(self) -> bytes:
        with self.open() as reader:
            return reader.read()

    def state(self) -> FileState | None:
        return self.store.state(self.key)


@dataclass(frozen=True)
class RemoteDir:
    """A version's directory in a URL store: `directory / name` is a RemoteFile."""

    store: UrlStore
    key: str

    remote = True

    def __truediv__(self, name: str) -> RemoteFile:
        return RemoteFile(self.store, f"{self.key}/{name}")

    def __str__(self) -> str:
        return self.store.url_of(self.key)


class PathStore:
    """A directory: local disk, or a shared mount every host sees (NFS). Publishing renames (services.py)."""

    remote = False

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def location(self, relative: str) -> Path:
        return self.root / relative

    def __str__(self) -> str:
        return str(self.root)


class UrlStore:
    """An fsspec URL (`s3://bucket/prefix`); objects are written once under their final name and never rewritten."""

    remote = True

    def __init__(self, url: str, *, endpoint_url: str = "", timeout_seconds: float = 10.0, attempts: int = 2) -> None:
        import fsspec

        self.url = url.rstrip("/")
        protocol = fsspec.core.split_protocol(self.url)[0] or "file"
        options: dict[str, Any] = {}
        if protocol in {"s3", "s3a"}:
            # botocore's own retry (`attempts` in all), then the registry's back-off takes over.
            options["config_kwargs"] = {
                "connect_timeout": timeout_seconds,
                "read_timeout": timeout_seconds,
                "retries": {"max_attempts": attempts, "mode": "standard"},
            }
            if endpoint_url:
                options["endpoint_url"] = endpoint_url
        elif protocol in {"file", "local"}:
            options["auto_mkdir"] = True  # object stores have no directories to make
        self.fs, self.root = fsspec.core.url_to_fs(self.url, skip_instance_cache=True, **options)
        self.root = self.root.rstrip("/")

    def __str__(self) -> str:
        return self.url

    def _path(self, key: str) -> str:
        return f"{self.root}/{key}"

    def url_of(self, key: str) -> str:
        return f"{self.url}/{key}"

    def location(self, relative: str) -> RemoteDir:
        return RemoteDir(self, relative.strip("/"))

    def _call(self, what: str, action, *args: Any, **kwargs: Any) -> Any:
        try:
            return action(*args, **kwargs)
        except FileNotFoundError:
            raise
        except Exception as error:
            raise StoreUnavailable(f"{what}: {type(error).__name__}: {error}") from error

    def open(self, key: str) -> _Reader:
        return _Reader(self._call(self.url_of(key), self.fs.open, self._path(key), "rb"), self.url_of(key))

    def state(self, key: str) -> FileState | None:
        """Size, modification time and, as the inode, a number drawn from the ETag (any rewrite changes it);
        None if there is no such object."""
        try:
            info = self._call(self.url_of(key), self.fs.info, self._path(key), refresh=True)
        except FileNotFoundError:
            return None
        modified = info.get("LastModified") or info.get("mtime") or info.get("created") or 0
        modified_ns = int(modified.timestamp() * 1e9) if hasattr(modified, "timestamp") else int(float(modified) * 1e9)
        tag = str(info.get("ETag") or info.get("md5") or modified_ns)
        return FileState(
            int(info.get("size") or 0), modified_ns, 0, int(hashlib.sha256(tag.encode()).hexdigest()[:15], 16)
        )

    def publish(self, local_dir: Path, relative: str, files: dict[str, str]) -> None:
        """Upload `local_dir` as version `relative`: under a temporary name, then copied to its own, then verified.

        `files` is {file name: SHA-256} from meta.json (meta.json included). ArtifactCorrupt (a ValueError) if
        what the store then holds differs; StoreUnavailable if it does not answer. Nothing is left on failure."""
        scratch = f"{STAGING_PREFIX}/{relative.replace('/', '-')}-{uuid.uuid4().hex}"
        final = relative.strip("/")
        names = [*sorted(name for name in files if name != META_FILE), META_FILE]  # meta.json last
        copying = False
        try:
            for name in names:
                self._call(
                    f"uploading {name}", self.fs.put_file, str(local_dir / name), self._path(f"{scratch}/{name}")
                )
            copying = True
            for name in names:
                self._call(
                    f"copying {name}", self.fs.copy, self._path(f"{scratch}/{name}"), self._path(f"{final}/{name}")
                )
            self.fs.invalidate_cache()
            for name in names:
                if sha256_of(RemoteFile(self, f"{final}/{name}")) != files[name]:
                    raise ArtifactCorrupt(f"{self.url_of(final)}/{name}: checksum mismatch after the upload")
        except BaseException:
            if copying:  # objects under the version's name, but no row will point at them
                self.remove(final)
            raise
        finally:
            self.remove(scratch)  # one that cannot be removed now is pruned by a later publish
        log.info("published %s to %s (%d files)", relative, self.url_of(final), len(names))
        self._staging_prune()

    def remove(self, relative: str) -> None:
        """Delete a version's (or a staging upload's) objects; an unreachable store leaves them, logged."""
        try:
            self._call(f"removing {relative}", self.fs.rm, self._path(relative.strip("/")), recursive=True)
        except FileNotFoundError:
            pass
        except OSError:
            log.warning("could not remove %s from the artifact store", self.url_of(relative), exc_info=True)

    def _staging_prune(self) -> None:
        """Uploads left by killed trainings (older than STAGING_STALE_SECONDS) are deleted."""
        horizon = time.time() - STAGING_STALE_SECONDS
        try:
            found = self._call("listing staging", self.fs.find, self._path(STAGING_PREFIX), detail=True)
        except OSError:
            return
        stale = [
            path
            for path, info in found.items()
            if hasattr(info.get("LastModified"), "timestamp") and info["LastModified"].timestamp() < horizon
        ]
        if stale:
            self._call("pruning staging", self.fs.rm, stale)
            log.info("removed %d stale artifact uploads from %s", len(stale), self.url_of(STAGING_PREFIX))


_stores: dict[tuple, PathStore | UrlStore] = {}


def artifact_store() -> PathStore | UrlStore:
    """The store the settings name (one instance per configuration and process)."""
    url = str(getattr(settings, "RECO_ARTIFACT_URL", "") or "")
    # By process: an fsspec async filesystem made before a fork (gunicorn's master) refuses to serve the child.
    key = (
        os.getpid(),
        url,
        str(settings.RECO_ARTIFACT_DIR),
        getattr(settings, "RECO_ARTIFACT_ENDPOINT_URL", ""),
        getattr(settings, "RECO_ARTIFACT_STORE_TIMEOUT_SECONDS", 10.0),
        getattr(settings, "RECO_ARTIFACT_STORE_ATTEMPTS", 2),
    )
    store = _stores.get(key)
    if store is None:
        store = (
            UrlStore(url, endpoint_url=key[3], timeout_seconds=float(key[4]), attempts=int(key[5]))
            if url
            else PathStore(Path(key[2]))
        )
        _stores[key] = store
    return store
