"""The shared recommender interface: id maps, batched top-k, and persistence that cannot run code on load."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recommendations.ml.constants import ARTIFACT_FORMAT, ITEM_COL, PAD_ID, USER_COL
from recommendations.ml.data import IdMap, interaction_matrix, validate_interactions

ARRAYS_FILE = "arrays.npz"
META_FILE = "meta.json"
DENSE_BLOCK_CELLS = 1 << 24  # cells of one dense float32 score block: 64 MB, whatever the catalog size


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def top_k(scores: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Column indices and values of each row's n best scores, best first.

    scores: float (n_rows, n_columns). Returns int64 (n_rows, min(n, n_columns)) and scores of that shape.
    """
    n = min(n, scores.shape[1])
    if n < scores.shape[1]:
        part = np.argpartition(-scores, n - 1, axis=1)[:, :n]  # O(columns) instead of a full sort
    else:
        part = np.broadcast_to(np.arange(scores.shape[1]), scores.shape).copy()
    part_scores = np.take_along_axis(scores, part, axis=1)
    order = np.argsort(-part_scores, axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1), np.take_along_axis(part_scores, order, axis=1)


class Recommender:
    """Base of every model: subclasses set the maps and `user_items` in fit and implement `_scores`.

    `user_items` (CSR float32, n_users × n_items) is the fitted history: it is what `exclude_seen` removes.
    """

    params: ClassVar[tuple[str, ...]] = ()  # constructor arguments, saved in the JSON sidecar
    user_map: IdMap
    item_map: IdMap
    user_items: sp.csr_matrix
    fit_seconds: float = 0.0

    def _scores(self, user_index: np.ndarray) -> np.ndarray:
        """Scores of every item for these users: float32 (len(user_index), n_items)."""
        raise NotImplementedError

    def _arrays(self) -> dict[str, np.ndarray]:
        """The model's own small arrays to persist besides the maps and history (names without dots)."""
        return {}

    def _mapped_arrays(self) -> dict[str, np.ndarray]:
        """The model's own large arrays: saved as .npy files, memory-mapped by `load(mmap=True)`."""
        return {}

    def _restore(self, arrays: dict[str, np.ndarray], path: Path, mmap: bool) -> None:
        """Set the model's own state from the loaded arrays."""

    def _check_fitted(self) -> None:
        if not hasattr(self, "item_map"):
            raise RuntimeError(f"{type(self).__name__} is not fitted")

    @property
    def content_ids(self) -> np.ndarray:
        """The items this model can score, int64 (n_items,), in index order."""
        self._check_fitted()
        return self.item_map.ids

    def recommend_many(
        self, user_ids: np.ndarray, n: int = 10, *, exclude_seen: bool = True, batch_size: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-n items for many users: one score matrix + argpartition per batch of users.

        user_ids: int (n_users,), all known (KeyError otherwise). Returns content ids, int64 (n_users, n), and
        scores, float32 (n_users, n), best first; slots beyond the items left hold PAD_ID and -inf.
        batch_size: users per score matrix (default: DENSE_BLOCK_CELLS // n_items).
        """
        self._check_fitted()
        if n < 1:
            raise ValueError(f"n must be at least 1, got {n}")
        batch_size = batch_size or max(1, DENSE_BLOCK_CELLS // max(len(self.item_map), 1))
        user_index = self.user_map.to_index(np.asarray(user_ids).ravel())
        ids = np.full((len(user_index), n), PAD_ID, dtype=np.int64)
        scores = np.full((len(user_index), n), -np.inf, dtype=np.float32)
        for start in range(0, len(user_index), batch_size):
            batch = user_index[start : start + batch_size]
            batch_scores = np.array(self._scores(batch), dtype=np.float32)  # a copy: masking writes into it
            if exclude_seen:
                seen = self.user_items[batch]
                rows = np.repeat(np.arange(len(batch)), np.diff(seen.indptr))
                batch_scores[rows, seen.indices] = -np.inf
            columns, values = top_k(batch_scores, n)
            found = np.isfinite(values)
            width = columns.shape[1]
            ids[start : start + len(batch), :width] = np.where(found, self.item_map.to_raw(columns), PAD_ID)
            scores[start : start + len(batch), :width] = np.where(found, values, -np.inf)
        return ids, scores

    def recommend(self, user_id: int, n: int = 10, exclude_seen: bool = True) -> list[tuple[int, float]]:
        """Top-n [(content_id, score), ...] for one known user, best first (shorter if fewer items are left)."""
        ids, scores = self.recommend_many(np.array([user_id]), n, exclude_seen=exclude_seen)
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i != PAD_ID]

    def _index(self, interactions: pd.DataFrame, *, item_ids: np.ndarray | None = None) -> pd.DataFrame:
        """Validate, build the id maps (items: those seen, or `item_ids`) and the fitted history; return the frame."""
        frame = validate_interactions(interactions)
        if frame.empty:
            raise ValueError("interactions is empty")
        self.user_map = IdMap(frame[USER_COL].to_numpy())
        self.item_map = IdMap(frame[ITEM_COL].to_numpy() if item_ids is None else item_ids)
        self.user_items = interaction_matrix(frame, self.user_map, self.item_map)
        return frame

    def save(self, path: str | Path, *, metadata: dict[str, Any] | None = None) -> Path:
        """Write the model to directory `path`: arrays.npz (no pickles), extra .npy/.pt files, meta.json.

        meta.json holds the class, hyper-parameters, sizes, caller metadata (e.g. the data window) and the
        SHA-256 of every file, which load checks. Returns the directory.

        A `path` with a suffix that is not a directory (`models/matrix_factorization.pkl`, the design's) is written
        as one file instead: an uncompressed zip of those same files, whatever the suffix says (no pickle in it).
        """
        self._check_fitted()
        if _is_single_file(Path(path)):
            return _save_single_file(self, Path(path), metadata)
        directory = Path(path)
        directory.mkdir(parents=True, exist_ok=True)
        arrays = {"user_ids": self.user_map.ids, "item_ids": self.item_map.ids, **self._arrays()}
        np.savez(directory / ARRAYS_FILE, **arrays)
        # The history and other large arrays as plain .npy files: serving processes map them and share pages.
        mapped = {
            "seen_indptr": self.user_items.indptr,
            "seen_indices": self.user_items.indices,
            "seen_data": self.user_items.data,
            **self._mapped_arrays(),
        }
        for name, values in mapped.items():
            np.save(directory / f"{name}.npy", values, allow_pickle=False)
        files = [ARRAYS_FILE, *(f"{name}.npy" for name in mapped), *self._save_extra(directory)]
        meta = {
            "format": ARTIFACT_FORMAT,
            "class": type(self).__name__,
            "params": {name: getattr(self, name) for name in self.params},
            "n_users": len(self.user_map),
            "n_items": len(self.item_map),
            "fit_seconds": round(self.fit_seconds, 3),
            "metadata": metadata or {},
            "mapped": sorted(mapped),
            "sha256": {name: file_sha256(directory / name) for name in files},
        }
        (directory / META_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True, default=_json_default))
        return directory

    def _save_extra(self, directory: Path) -> list[str]:
        """Write files besides arrays.npz; return their names (checksummed in meta.json)."""
        return []

    @classmethod
    def read_meta(cls, path: str | Path) -> dict[str, Any]:
        """The JSON sidecar of a saved model, checked for format and class."""
        meta = json.loads((Path(path) / META_FILE).read_text())
        if meta.get("format") != ARTIFACT_FORMAT:
            raise ValueError(f"unsupported artifact format {meta.get('format')!r} in {path}")
        if meta.get("class") != cls.__name__:
            raise ValueError(f"{path} holds a {meta.get('class')}, not a {cls.__name__}")
        return meta

    @classmethod
    def load(cls, path: str | Path, *, mmap: bool = False, verify: bool = True) -> Self:
        """Load a model saved by `save`; ValueError if a checksum, the class or the format does not match.

        mmap: memory-map the large .npy arrays (factor matrices) read-only, so processes share one copy (a
        single-file save is read into memory instead).
        """
        if Path(path).is_file():
            with tempfile.TemporaryDirectory(prefix="reco-model-") as scratch:
                return cls.load(_extract_single_file(Path(path), Path(scratch)), mmap=False, verify=verify)
        directory = Path(path)
        meta = cls.read_meta(directory)
        if verify:
            for name, expected in meta["sha256"].items():
                if file_sha256(directory / name) != expected:
                    raise ValueError(f"checksum mismatch for {directory / name}: the artifact is corrupt")
        with np.load(directory / ARRAYS_FILE, allow_pickle=False) as stored:
            arrays = {name: stored[name] for name in stored.files}
        mode = "r" if mmap else None
        for name in meta.get("mapped", []):  # absent in artifacts saved before they moved out of the npz
            arrays[name] = np.load(directory / f"{name}.npy", mmap_mode=mode, allow_pickle=False)
        model = cls(**meta["params"])
        model.user_map = IdMap(arrays.pop("user_ids"))
        model.item_map = IdMap(arrays.pop("item_ids"))
        seen = (arrays.pop("seen_data"), arrays.pop("seen_indices"), arrays.pop("seen_indptr"))
        model.user_items = sp.csr_matrix(seen, shape=(meta["n_users"], meta["n_items"]), copy=False)
        model.fit_seconds = meta.get("fit_seconds", 0.0)
        model._restore(arrays, directory, mmap)
        return model


def _is_single_file(path: Path) -> bool:
    return bool(path.suffix) and not path.is_dir()


def _save_single_file(model: Recommender, path: Path, metadata: dict[str, Any] | None) -> Path:
    """The saved directory zipped into `path`, replaced in one rename (a reader finds the old file or the new)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="reco-model-", dir=path.parent) as scratch:
        directory = model.save(Path(scratch) / "model", metadata=metadata)
        packed = Path(scratch) / "packed.zip"
        with zipfile.ZipFile(packed, "w", compression=zipfile.ZIP_STORED) as archive:
            for file in sorted(directory.iterdir()):
                archive.write(file, arcname=file.name)
        os.replace(packed, path)
    return path


def _extract_single_file(path: Path, directory: Path) -> Path:
    """Unpack a single-file save into `directory`; only the plain file names its meta.json lists (no paths)."""
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{path} is not a saved model (one file: a zip written by save)")
    with zipfile.ZipFile(path) as archive:
        if META_FILE not in archive.namelist():
            raise ValueError(f"{path} has no {META_FILE}: not a saved model")
        meta = json.loads(archive.read(META_FILE))
        allowed = {META_FILE, *meta.get("sha256", {})}
        for name in archive.namelist():
            if name not in allowed or Path(name).name != name:
                raise ValueError(f"{path} holds an unexpected member {name!r}")
            (directory / name).write_bytes(archive.read(name))
    return directory


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, tuple | set):
        return list(value)
    raise TypeError(f"cannot store {type(value).__name__} in meta.json")
