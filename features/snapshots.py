"""Offline store: Parquet snapshots per (entity type, as_of) and a point-in-time join for training data.

Files live under settings.FEATURE_OFFLINE_DIR (a local directory by default; any fsspec URL works, but
only local paths are tested: S3 needs s3fs, which is not installed) as
`{entity_type}/v{schema_version}/as_of=YYYYMMDDTHHMMSS.ffffffZ.parquet`, one row per entity with
`entity_id`, `as_of` and one float32 column per stored value (see FeatureSet.columns).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

import fsspec
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from django.conf import settings

from features.ml.compute import FeatureMatrix
from features.ml.definitions import feature_set

_STAMP = "%Y%m%dT%H%M%S.%fZ"


def snapshot_write(
    *, entity_type: str, as_of: dt.datetime, chunks: Iterable[FeatureMatrix], location: str | None = None
) -> str:
    """Write one snapshot from `chunks` (one row group each), atomically; returns its path."""
    fs, root = _filesystem(location)
    path = f"{root}/{_relative_path(entity_type, as_of)}"
    fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
    schema = _schema(entity_type)
    stamp = np.datetime64(_utc(as_of).replace(tzinfo=None), "us")
    partial = f"{path}.partial"
    with fs.open(partial, "wb") as handle, pq.ParquetWriter(handle, schema) as writer:
        writer.write_table(schema.empty_table())
        for chunk in chunks:
            columns = [pa.array(chunk.ids, pa.int64()), pa.array(np.full(len(chunk.ids), stamp), schema.field(1).type)]
            columns += [pa.array(chunk.values[:, j]) for j in range(chunk.values.shape[1])]
            writer.write_table(pa.Table.from_arrays(columns, schema=schema))
    fs.mv(partial, path)  # readers never see a half-written file
    return path


def snapshot_row_count(path: str, *, location: str | None = None) -> int:
    """Rows in the snapshot at `path`, from its Parquet footer (nothing else is read)."""
    fs, _ = _filesystem(location)
    with fs.open(path, "rb") as handle:
        return pq.ParquetFile(handle).metadata.num_rows


def snapshots_list(entity_type: str, *, location: str | None = None) -> list[tuple[pd.Timestamp, str]]:
    """(as_of, path) of every snapshot of the current schema of `entity_type`, oldest first."""
    fs, root = _filesystem(location)
    folder = f"{root}/{_relative_path(entity_type, None)}"
    found = []
    for path in fs.glob(f"{folder}/as_of=*.parquet"):
        stamp = path.rsplit("as_of=", 1)[1].removesuffix(".parquet")
        found.append((pd.Timestamp(dt.datetime.strptime(stamp, _STAMP).replace(tzinfo=dt.UTC)), path))
    return sorted(found)


def point_in_time_join(entity_type: str, rows: pd.DataFrame, *, location: str | None = None) -> pd.DataFrame:
    """For each (entity_id, timestamp) row, the features of the latest snapshot with as_of <= timestamp.

    Returns `rows` (same order, other columns kept) plus `features_as_of` and the feature columns; NaN
    where no snapshot is old enough. A snapshot taken after a row's timestamp never reaches that row.
    """
    missing = {"entity_id", "timestamp"} - set(rows.columns)
    if missing:
        raise ValueError(f"rows need columns entity_id, timestamp; missing {', '.join(sorted(missing))}")
    left = rows.reset_index(drop=True).assign(
        _row=np.arange(len(rows)),
        entity_id=rows["entity_id"].to_numpy(np.int64),
        timestamp=pd.to_datetime(rows["timestamp"], utc=True).astype("datetime64[us, UTC]"),
    )
    fs, _ = _filesystem(location)
    latest = left["timestamp"].max()
    wanted = pa.array(np.unique(left["entity_id"].to_numpy()))
    tables = [
        pq.read_table(path, filesystem=fs, filters=pc.field("entity_id").isin(wanted))
        for as_of, path in snapshots_list(entity_type, location=location)
        if len(left) and as_of <= latest
    ]
    features = pa.concat_tables(tables).to_pandas() if tables else _schema(entity_type).empty_table().to_pandas()
    features = features.rename(columns={"as_of": "features_as_of"})
    features["features_as_of"] = features["features_as_of"].astype("datetime64[us, UTC]")
    merged = pd.merge_asof(
        left.sort_values("timestamp", kind="stable"),
        features.sort_values("features_as_of", kind="stable"),
        left_on="timestamp",
        right_on="features_as_of",
        by="entity_id",
        direction="backward",
    )
    return merged.sort_values("_row").drop(columns="_row").reset_index(drop=True)


def _schema(entity_type: str) -> pa.Schema:
    fields = [pa.field("entity_id", pa.int64()), pa.field("as_of", pa.timestamp("us", tz="UTC"))]
    fields += [pa.field(name, pa.float32()) for name in feature_set(entity_type).columns]
    return pa.schema(fields)


def _relative_path(entity_type: str, as_of: dt.datetime | None) -> str:
    folder = f"{entity_type}/v{feature_set(entity_type).schema_version}"
    return folder if as_of is None else f"{folder}/as_of={_utc(as_of).strftime(_STAMP)}.parquet"


def _filesystem(location: str | None) -> tuple[Any, str]:
    target = str(location or getattr(settings, "FEATURE_OFFLINE_DIR", settings.RECO_DATA_DIR / "features"))
    fs, root = fsspec.core.url_to_fs(target)
    return fs, root.rstrip("/")


def _utc(moment: dt.datetime) -> dt.datetime:
    if moment.tzinfo is None:
        raise ValueError("as_of must be timezone-aware")
    return moment.astimezone(dt.UTC)
