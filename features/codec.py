"""Compact binary payloads: a 12-byte header (schema version, width, computed_at) and float32 values.

Fixed size per feature set, so 500 payloads decode with one `numpy.frombuffer`; nothing here can run
code on load (no pickle), and there is no JSON to parse on the request path.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from features.definitions import FeatureSet


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


def decode_many(
    features: FeatureSet, payloads: Sequence[bytes | None]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
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
