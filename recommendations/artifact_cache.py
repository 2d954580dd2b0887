"""Private, verified, read-only copies of model artifacts on this host, one directory per checksum.

A serving process never maps a file that another process may rewrite. It copies the shared artifact into
RECO_SERVING_CACHE_DIR/<sha256 of meta.json>/, hashing each file as it is copied and comparing with the
checksums meta.json lists (and meta.json with the checksum the database holds), writes the copy under a
temporary name, makes it read-only and renames it into place: a copy is whole and verified, or absent.
Content-addressed, so two versions never share a path and the processes of one host share one copy (and
its page cache). An existing copy is hashed again before it is used; one that fails is removed and made
anew. `FileState` (size, times, inode) lets a watcher notice a changed file without reading it.

The source is a directory (a Path: local disk or a shared mount) or a version in a URL store
(artifact_store.RemoteDir, e.g. on S3): both are read through `open_source` and `state_of`, so a copy from an
object store is hashed while it downloads exactly as a copy from disk is while it is read.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import stat
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from recommendations.ml.base import META_FILE

log = logging.getLogger(__name__)

CHUNK_BYTES = 1 << 20
READ_ONLY_FILE = stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH  # 0o444
READ_ONLY_DIR = READ_ONLY_FILE | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH  # 0o555
# A copy no process of this host has verified for 6 h is removed (serving monitors touch theirs every pass; a
# process still mapping a removed copy keeps its pages, and a later load copies again).
UNUSED_COPY_SECONDS = 6 * 3600


class ArtifactCorrupt(ValueError):
    """An artifact file is missing, truncated or altered: its SHA-256 is not the one registered."""


@dataclass(frozen=True)
class FileState:
    """What stat says of a file; any write, truncation, replacement or chmod changes it (ctime cannot be set)."""

    size: int
    mtime_ns: int
    ctime_ns: int
    inode: int

    @classmethod
    def of(cls, path: Path) -> FileState | None:
        try:
            found = os.stat(path)
        except FileNotFoundError:
            return None
        return cls(found.st_size, found.st_mtime_ns, found.st_ctime_ns, found.st_ino)


def open_source(location: Any) -> Any:
    """A file of the store opened for reading: a Path, or an object of a URL store (artifact_store.RemoteFile)."""
    return open(location, "rb") if isinstance(location, str | os.PathLike) else location.open()


def state_of(location: Any) -> FileState | None:
    """FileState of a Path or of a store object; None if it is missing. OSError (StoreUnavailable) if unreachable."""
    return FileState.of(location) if isinstance(location, str | os.PathLike) else location.state()


def read_source(location: Any) -> bytes:
    with open_source(location) as handle:
        return handle.read()


@dataclass(frozen=True)
class VerifiedArtifact:
    """An artifact verified against its registered checksum, and this host's private copy of it."""

    checksum: str  # SHA-256 of meta.json, as registered
    source: Any  # the shared artifact directory: a Path, or an artifact_store.RemoteDir
    copy: Path  # the private, read-only copy that serving loads
    files: dict[str, str]  # file name -> SHA-256, meta.json included
    source_states: dict[str, FileState | None]  # as stat saw them just before they were hashed
    copy_states: dict[str, FileState | None]

    @property
    def bytes(self) -> int:
        return sum(state.size for state in self.copy_states.values() if state is not None)


def sha256_of(path: Path, *, bytes_per_second: float | None = None) -> str:
    """SHA-256 of a file; with `bytes_per_second`, paced so that a background check never hogs a core or the disk."""
    digest = hashlib.sha256()
    started = time.monotonic()
    done = 0
    with open_source(path) as handle:
        while chunk := handle.read(CHUNK_BYTES):
            digest.update(chunk)
            done += len(chunk)
            if bytes_per_second:
                ahead = done / bytes_per_second - (time.monotonic() - started)
                if ahead > 0:
                    time.sleep(ahead)
    return digest.hexdigest()


def artifact_files(meta_bytes: bytes, *, checksum: str, where: Any) -> dict[str, str]:
    """{file name: SHA-256} that meta.json lists, meta.json included; ArtifactCorrupt if meta.json is not the
    registered one or names a path outside its directory."""
    if hashlib.sha256(meta_bytes).hexdigest() != checksum:
        raise ArtifactCorrupt(f"{where / META_FILE}: checksum mismatch, it is not the registered meta.json")
    listed = json.loads(meta_bytes).get("sha256")
    if not isinstance(listed, dict) or not listed:
        raise ArtifactCorrupt(f"{where / META_FILE} lists no file checksums")
    for name in listed:
        if not isinstance(name, str) or Path(name).name != name or name in {".", "..", META_FILE}:
            raise ArtifactCorrupt(f"{where / META_FILE} lists an unsafe file name {name!r}")
    return {META_FILE: checksum, **listed}


def private_copy(*, source: Any, cache_root: Path, checksum: str, check_source: bool = False) -> VerifiedArtifact:
    """This host's verified read-only copy of the artifact in `source`, made now if there is none (or a bad one).

    A good existing copy is used even if the source has changed since (serving survives a damaged store),
    unless `check_source` (activation: the store itself must hold the artifact, for every other host).
    ArtifactCorrupt if the source does not match `checksum`; OSError if it cannot be read or copied."""
    target = cache_root / checksum
    if target.is_dir():
        try:
            verified = _verified_existing(source, target, checksum)
        except (OSError, ValueError) as error:
            log.warning("private copy %s failed verification (%s); copying the artifact again", target, error)
            remove_copy(target)
        else:
            if check_source:
                _verify_source(source, verified.files)
            return verified
    cache_root.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{checksum[:16]}-", dir=cache_root))
    try:
        meta_bytes = read_source(source / META_FILE)
        files = artifact_files(meta_bytes, checksum=checksum, where=source)
        source_states: dict[str, FileState | None] = {META_FILE: state_of(source / META_FILE)}
        (scratch / META_FILE).write_bytes(meta_bytes)
        for name, expected in files.items():
            if name == META_FILE:
                continue
            source_states[name] = state_of(source / name)
            if _copy_hashing(source / name, scratch / name) != expected:
                raise ArtifactCorrupt(
                    f"{source / name}: checksum mismatch, its SHA-256 is not the one meta.json "
                    "lists (the file was altered or truncated)"
                )
        for name in files:
            os.chmod(scratch / name, READ_ONLY_FILE)
        os.chmod(scratch, READ_ONLY_DIR)
        try:
            os.rename(scratch, target)  # atomic: the content-addressed path holds a whole copy or nothing
        except OSError:  # another process of this host made the same copy first: use that one
            if not target.is_dir():
                raise
            return _verified_existing(source, target, checksum)
        log.info("made a private copy of %s in %s", source, target)
        return VerifiedArtifact(checksum, source, target, files, source_states, _states(target, files))
    finally:
        if scratch.exists():
            remove_copy(scratch)


def _verified_existing(source: Any, target: Path, checksum: str) -> VerifiedArtifact:
    files = artifact_files((target / META_FILE).read_bytes(), checksum=checksum, where=target)
    states = _states(target, files)
    for name, expected in files.items():
        if name != META_FILE and sha256_of(target / name) != expected:
            raise ArtifactCorrupt(f"{target / name}: checksum mismatch, its SHA-256 is not the one meta.json lists")
    os.utime(target)  # marks the copy as in use (see prune_unused)
    # The source was not read: no stat baseline, so that the first background check hashes it once. Except in
    # a URL store, whose objects are written once: there that would download the whole artifact again in
    # every process of the host; their ETags now are the baseline (the process that made the copy has the
    # ones it downloaded).
    source_states: dict[str, FileState | None] = {}
    if not isinstance(source, str | os.PathLike):
        try:
            source_states = {name: state_of(source / name) for name in files}
        except OSError:
            source_states = {}  # the store does not answer: the background check tries again
    return VerifiedArtifact(checksum, source, target, files, source_states, states)


def _verify_source(source: Any, files: dict[str, str]) -> None:
    for name, expected in files.items():
        if sha256_of(source / name) != expected:
            raise ArtifactCorrupt(f"{source / name}: checksum mismatch, its SHA-256 is not the registered one")


def _copy_hashing(source: Any, target: Path) -> str:
    digest = hashlib.sha256()
    with open_source(source) as reader, open(target, "xb") as writer:
        while chunk := reader.read(CHUNK_BYTES):
            digest.update(chunk)
            writer.write(chunk)
    return digest.hexdigest()


def _states(directory: Path, files: dict[str, str]) -> dict[str, FileState | None]:
    return {name: FileState.of(directory / name) for name in files}


def remove_copy(directory: Path) -> None:
    """Delete a (read-only) copy. Processes that map its files keep their pages: unlinking truncates nothing."""
    for path, _, _ in os.walk(directory):
        os.chmod(path, stat.S_IRWXU)
    shutil.rmtree(directory, ignore_errors=True)


def prune_unused(cache_root: Path, *, keep: set[str], older_than_seconds: float = UNUSED_COPY_SECONDS) -> None:
    """Remove copies not in `keep` that no process has verified for `older_than_seconds` (and stale scratch)."""
    if not cache_root.is_dir():
        return
    horizon = time.time() - older_than_seconds
    for entry in cache_root.iterdir():
        try:
            if entry.name not in keep and entry.stat().st_mtime < horizon:
                remove_copy(entry)
                log.info("removed the unused private copy %s", entry)
        except FileNotFoundError:  # another process removed it first
            continue
