"""Offline store: Parquet snapshots per as_of and the point-in-time join that never leaks the future."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from features import services, snapshots
from features.ml.compute import FeatureMatrix
from features.ml.definitions import USER_FEATURES
from tests.features.histories import AS_OF, USER_EXPECTED

JAN_1 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
JAN_8 = dt.datetime(2026, 1, 8, tzinfo=dt.UTC)


def hours_matrix(ids: list[int], hours: list[float]) -> FeatureMatrix:
    values = np.tile(USER_FEATURES.defaults, (len(ids), 1))
    values[:, USER_FEATURES.slices["total_watch_hours"]] = np.asarray(hours)[:, None]
    return FeatureMatrix(USER_FEATURES, np.asarray(ids, dtype=np.int64), values)


@pytest.fixture
def two_snapshots(tmp_path) -> str:
    location = str(tmp_path / "offline")
    snapshots.snapshot_write(
        entity_type="user", as_of=JAN_1, chunks=[hours_matrix([1, 2], [1.0, 2.0])], location=location
    )
    snapshots.snapshot_write(
        entity_type="user",
        as_of=JAN_8,
        chunks=[hours_matrix([1], [10.0]), hours_matrix([2], [20.0])],
        location=location,
    )
    return location


def test_snapshot_files_per_as_of_with_flat_columns(two_snapshots):
    listed = snapshots.snapshots_list("user", location=two_snapshots)
    assert [as_of for as_of, _ in listed] == [pd.Timestamp(JAN_1), pd.Timestamp(JAN_8)]
    assert listed[0][1].endswith("user/v1/as_of=20260101T000000.000000Z.parquet")
    table = pq.read_table(listed[1][1])
    assert table.column_names == ["entity_id", "as_of", *USER_FEATURES.columns]
    assert table.num_rows == 2 and table.column("as_of").to_pylist()[0] == JAN_8


def test_point_in_time_join_never_leaks_a_later_snapshot(two_snapshots):
    rows = pd.DataFrame(
        {
            "entity_id": [1, 1, 2, 1, 3],
            "timestamp": [
                JAN_8 - dt.timedelta(seconds=1),
                JAN_8,
                JAN_8 + dt.timedelta(days=30),
                JAN_1 - dt.timedelta(days=1),
                JAN_8,
            ],
            "label": ["a", "b", "c", "d", "e"],
        }
    )
    joined = snapshots.point_in_time_join("user", rows, location=two_snapshots)
    assert list(joined["label"]) == ["a", "b", "c", "d", "e"]  # order and other columns kept
    # One second before the Jan 8 snapshot, row "a" still sees Jan 1's features.
    np.testing.assert_array_equal(joined["total_watch_hours"], [1.0, 10.0, 20.0, np.nan, np.nan])
    assert list(joined["features_as_of"][:3]) == [pd.Timestamp(JAN_1), pd.Timestamp(JAN_8), pd.Timestamp(JAN_8)]
    assert joined["features_as_of"][3:].isna().all()


def test_point_in_time_join_checks_its_input(two_snapshots):
    with pytest.raises(ValueError, match="entity_id, timestamp"):
        snapshots.point_in_time_join("user", pd.DataFrame({"entity_id": [1]}), location=two_snapshots)


def test_offline_snapshot_from_the_database(user_histories, tmp_path):
    path = services.offline_snapshot_write(entity_type="user", as_of=AS_OF, location=str(tmp_path))
    frame = pd.read_parquet(path)
    assert sorted(frame["entity_id"]) == sorted(p.id for p in user_histories.values())
    binger = frame.set_index("entity_id").loc[user_histories["binger"].id]
    assert binger["total_watch_hours"] == pytest.approx(USER_EXPECTED["binger"]["total_watch_hours"], rel=1e-6)
    content = services.offline_snapshot_write(entity_type="content", as_of=AS_OF, location=str(tmp_path))
    assert len(pd.read_parquet(content)) == 5  # every title of the hand-made catalog
