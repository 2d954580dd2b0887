"""Compact binary payloads: a 12-byte header (schema version, width, computed_at) and float32 values.

Fixed size per feature set, so 500 payloads decode with one `numpy.frombuffer`; nothing here can run
code on load (no pickle), and there is no JSON to parse on the request path. A matrix payload holds every
entity of one refresh (a 16-byte header with the count, then int64 ids ascending, then the float32 rows):
100K titles × 37 floats is 15.6 MB, read once per refresh by each process.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from features.ml.definitions import FeatureSet


def record_dtype(features: FeatureSet) -> np.dtype:
    return np.dtype(
        [
            ("schema_version", "<u2"),
            ("width", "<u2"),
            ("computed_at", "<f8"),  # Unix seconds
            ("values", "<f4", (features.width,)),
        ]
    )


def encode_many(features: FeatureSet, values: np.ndarray, *, computed_at: float) -> list[bytes]:
    """One payload per row of `values` (n, width) float32."""
    values = np.asarray(values, dtype=np.float32)
    if values.ndim != 2 or values.shape[1] != features.width:
        raise ValueError(f"{features.entity_type} values must be (n, {features.width}), got {values.shape}")
    dtype = record_dtype(features)
    records = np.empty(len(values), dtype=dtype)
    records["schema_version"] = features.schema_version
    records["width"] = features.width
    records["computed_at"] = computed_at
    records["values"] = values
    buffer, size = records.tobytes(), dtype.itemsize
    return [buffer[i : i + size] for i in range(0, len(buffer), size)]


def decode_many(features: FeatureSet, payloads: Sequence[bytes | None]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(values (n, width) float32 with defaults where missing, found (n,) bool, computed_at (n,) float64).

    A payload of the wrong size or schema counts as missing, like an expired key.
    """
    dtype = record_dtype(features)
    n = len(payloads)
    values = np.tile(features.defaults, (n, 1))
    found = np.zeros(n, dtype=bool)
    computed_at = np.full(n, np.nan)
    present = [i for i, p in enumerate(payloads) if p is not None and len(p) == dtype.itemsize]
    if not present:
        return values, found, computed_at
    records = np.frombuffer(b"".join(payloads[i] for i in present), dtype=dtype)  # type: ignore[misc]
    valid = (records["schema_version"] == features.schema_version) & (records["width"] == features.width)
    rows = np.asarray(present)[valid]
    values[rows] = records["values"][valid]
    found[rows] = True
    computed_at[rows] = records["computed_at"][valid]
    return values, found, computed_at


_MATRIX_HEADER = np.dtype([("schema_version", "<u2"), ("width", "<u2"), ("count", "<u4"), ("computed_at", "<f8")])


def encode_matrix(features: FeatureSet, ids: np.ndarray, values: np.ndarray, *, computed_at: float) -> bytes:
    """One payload of every row: ids (n,) int64, values (n, width) float32; stored sorted by id."""
    ids = np.asarray(ids, dtype="<i8")
    values = np.asarray(values, dtype="<f4")
    if values.shape != (len(ids), features.width):
        raise ValueError(f"{features.entity_type} matrix must be ({len(ids)}, {features.width}), got {values.shape}")
    order = np.argsort(ids, kind="stable")
    header = np.array([(features.schema_version, features.width, len(ids), computed_at)], dtype=_MATRIX_HEADER)
    return header.tobytes() + ids[order].tobytes() + values[order].tobytes()


def decode_matrix(features: FeatureSet, payload: bytes) -> tuple[np.ndarray, np.ndarray, float] | None:
    """(ids (n,) int64 ascending, values (n, width) float32, computed_at), or None for a payload of another
    schema or size (read like a missing one)."""
    if len(payload) < _MATRIX_HEADER.itemsize:
        return None
    header = np.frombuffer(payload, dtype=_MATRIX_HEADER, count=1)[0]
    n, width = int(header["count"]), int(header["width"])
    if header["schema_version"] != features.schema_version or width != features.width:
        return None
    if len(payload) != _MATRIX_HEADER.itemsize + n * (8 + 4 * width):
        return None
    ids = np.frombuffer(payload, dtype="<i8", count=n, offset=_MATRIX_HEADER.itemsize).astype(np.int64)
    values = np.frombuffer(payload, dtype="<f4", offset=_MATRIX_HEADER.itemsize + 8 * n).reshape(n, width)
    return ids, values.astype(np.float32), float(header["computed_at"])
