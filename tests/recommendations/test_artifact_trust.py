"""Artifacts a serving process can trust (issue #14): private verified read-only copies, failed loads retried
with back-off, background re-verification of served files, per-process status in the cache."""

from __future__ import annotations

import json
import os
import socket
import stat
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recommendations.artifact_cache import ArtifactCorrupt, private_copy
from recommendations.ml.matrix_factorization import ITEM_FACTORS_FILE, MatrixFactorization
from recommendations.models import ModelKind
from recommendations.registry import ModelRegistry, artifact_dir
from recommendations.services import model_version_activate, model_version_register
from recommendations.serving.monitor import ServingMonitor
from recommendations.serving.process_status import (
    PROCESS_STATUS_KEY,
    process_status_publish,
    process_status_withdraw,
    serving_processes,
)
from tests.factories.recommendations import ModelVersionFactory

MF = ModelKind.MATRIX_FACTORIZATION


@pytest.fixture(autouse=True)
def stores_in_tmp(settings, tmp_path):
    settings.RECO_ARTIFACT_DIR = tmp_path / "artifacts"
    settings.RECO_SERVING_CACHE_DIR = tmp_path / "serving-cache"
    settings.RECO_ARTIFACT_RETRY_SECONDS = 0.3
    settings.RECO_ARTIFACT_RETRY_MAX_SECONDS = 5.0


def _mf_version(seed: int = 0):
    rng = np.random.default_rng(seed)
    rows = [(user, int(item), 1.0) for user in range(1, 60) for item in rng.choice(200, size=8, replace=False)]
    model = MatrixFactorization(n_factors=8, n_epochs=3).fit(
        pd.DataFrame(rows, columns=["user_id", "content_id", "rating"])
    )
    saved = model.save(Path(tempfile.mkdtemp(prefix="reco-mf-")) / "model")
    return model_version_register(kind=MF, saved_model_dir=saved, metrics={"ndcg_at_10": 0.2})


def _truncate(path: Path) -> bytes:
    original = path.read_bytes()
    os.truncate(path, 1024)
    return original


def _flip(path: Path) -> bytes:
    original = path.read_bytes()
    with open(path, "r+b") as handle:  # 64 KiB at most, past the .npy header: a well-formed but wrong matrix
        handle.seek(256)
        handle.write(bytes(b ^ 0xFF for b in original[256 : 256 + 65_536]))
    return original


def _restore(path: Path, original: bytes) -> None:
    path.write_bytes(original)


def _problems(registry: ModelRegistry) -> list[dict]:
    return registry.status()["problems"]


def test_the_registry_maps_a_private_read_only_copy_named_by_checksum(db, settings):
    version = _mf_version()
    model_version_activate(version_id=version.pk)
    loaded = ModelRegistry(check_seconds=0).get(MF)

    factors = loaded.model.item_factors
    copy = Path(settings.RECO_SERVING_CACHE_DIR) / version.checksum
    assert isinstance(factors, np.memmap) and Path(factors.filename) == copy / ITEM_FACTORS_FILE
    assert loaded.mapped and loaded.checksum == version.checksum
    for path in [copy, *copy.iterdir()]:
        assert stat.S_IMODE(path.stat().st_mode) & 0o222 == 0, f"{path} is writable"
    source = artifact_dir() / version.artifact_path / ITEM_FACTORS_FILE
    assert os.stat(source).st_ino != os.stat(copy / ITEM_FACTORS_FILE).st_ino


def test_in_memory_mode_reads_the_arrays_from_the_private_copy(db, settings):
    settings.RECO_ARTIFACT_MMAP = False
    model_version_activate(version_id=_mf_version().pk)
    loaded = ModelRegistry(check_seconds=0).get(MF)
    assert not loaded.mapped and not isinstance(loaded.model.item_factors, np.memmap)


def test_a_private_copy_is_never_made_of_a_damaged_artifact_and_leaves_nothing_behind(db, settings):
    version = _mf_version()
    _truncate(artifact_dir() / version.artifact_path / ITEM_FACTORS_FILE)
    cache_root = Path(settings.RECO_SERVING_CACHE_DIR)

    with pytest.raises(ArtifactCorrupt, match="SHA-256"):
        private_copy(source=artifact_dir() / version.artifact_path, cache_root=cache_root, checksum=version.checksum)
    assert list(cache_root.iterdir()) == []  # no half-made copy under any name


def test_processes_copying_the_same_artifact_at_once_end_with_one_whole_copy(db, settings):
    from concurrent.futures import ThreadPoolExecutor

    version = _mf_version()
    cache_root = Path(settings.RECO_SERVING_CACHE_DIR)
    source = artifact_dir() / version.artifact_path

    def copy(_: int):
        return private_copy(source=source, cache_root=cache_root, checksum=version.checksum)

    with ThreadPoolExecutor(max_workers=4) as pool:
        copies = list(pool.map(copy, range(4)))
    assert {c.copy for c in copies} == {cache_root / version.checksum}
    assert [entry.name for entry in cache_root.iterdir()] == [version.checksum]  # no scratch left behind
    assert sorted(p.name for p in (cache_root / version.checksum).iterdir()) == sorted(copies[0].files)


def test_copies_unused_for_hours_are_pruned_unless_served(db, settings):
    from recommendations.artifact_cache import UNUSED_COPY_SECONDS, prune_unused

    cache_root = Path(settings.RECO_SERVING_CACHE_DIR)
    served, stale, recent = (_mf_version(seed=seed) for seed in (1, 2, 3))
    for version in (served, stale, recent):
        private_copy(source=artifact_dir() / version.artifact_path, cache_root=cache_root, checksum=version.checksum)
    long_ago = time.time() - UNUSED_COPY_SECONDS - 60
    for version in (served, stale):
        os.utime(cache_root / version.checksum, (long_ago, long_ago))

    prune_unused(cache_root, keep={served.checksum})
    assert sorted(entry.name for entry in cache_root.iterdir()) == sorted([served.checksum, recent.checksum])


@pytest.mark.parametrize("damage", [_truncate, _flip], ids=["truncated", "flipped"])
def test_a_damaged_store_file_is_noticed_shown_and_healed_while_the_copy_serves(db, damage, caplog):
    version = _mf_version()
    model_version_activate(version_id=version.pk)
    registry = ModelRegistry(check_seconds=0)
    served = registry.get(MF)
    expected = served.model.recommend(user_id=1, n=5)
    registry.verify_served()
    assert _problems(registry) == []

    source = artifact_dir() / version.artifact_path / ITEM_FACTORS_FILE
    original = damage(source)
    registry.verify_served()

    [problem] = _problems(registry)
    assert problem["where"] == "source" and problem["file"] == str(source) and "changed on disk" in problem["detail"]
    assert "artifact store file of mf" in caplog.text
    assert registry.get(MF) is served and served.model.recommend(user_id=1, n=5) == expected  # the copy serves

    _restore(source, original)
    registry.verify_served()
    assert _problems(registry) == []
    assert "intact again" in caplog.text


@pytest.mark.parametrize("damage", [_truncate, _flip], ids=["truncated", "flipped"])
def test_a_damaged_private_copy_is_replaced_by_a_good_one(db, settings, damage):
    version = _mf_version()
    model_version_activate(version_id=version.pk)
    registry = ModelRegistry(check_seconds=0)
    served = registry.get(MF)
    expected = served.model.recommend(user_id=1, n=5)
    copy_file = Path(settings.RECO_SERVING_CACHE_DIR) / version.checksum / ITEM_FACTORS_FILE
    registry.verify_served()
    os.chmod(copy_file, 0o644)  # only its owner's deliberate chmod (or root) can write it
    damage(copy_file)

    registry.verify_served()

    fresh = registry.get(MF)
    assert fresh is not served and fresh.serial > served.serial and fresh.version == served.version
    assert Path(fresh.model.item_factors.filename) == copy_file  # the same content-addressed path, made anew
    assert stat.S_IMODE(copy_file.stat().st_mode) & 0o222 == 0
    assert fresh.model.recommend(user_id=1, n=5) == expected
    assert _problems(registry) == [] and registry.status()["last_errors"][-1]["kind"] == MF


def test_a_failed_load_keeps_the_previous_model_backs_off_and_heals_when_the_file_is_restored(
    db, settings, tmp_path, caplog
):
    registry = ModelRegistry(check_seconds=0)
    first, second = _mf_version(seed=1), _mf_version(seed=2)
    model_version_activate(version_id=first.pk)
    assert registry.get(MF).version == first.version
    model_version_activate(version_id=second.pk)
    settings.RECO_SERVING_CACHE_DIR = tmp_path / "another-host"  # where activation made no copy
    source = artifact_dir() / second.artifact_path / ITEM_FACTORS_FILE
    original = _truncate(source)

    assert registry.get(MF).version == first.version  # the failed load keeps the previous model
    [failure] = registry.status()["failures"]
    assert (failure["version"], failure["attempts"]) == (second.version, 1) and "SHA-256" in failure["error"]
    assert "could not load mf" in caplog.text and f"still serving {first.version}" in caplog.text
    registry.get(MF)
    assert registry.status()["failures"][0]["attempts"] == 1  # backing off: not tried on every check

    time.sleep(0.35)  # RECO_ARTIFACT_RETRY_SECONDS
    registry.get(MF)
    assert registry.status()["failures"][0]["attempts"] == 2  # tried again, next wait doubled

    _restore(source, original)
    time.sleep(0.65)
    assert registry.get(MF).version == second.version  # healed without a restart
    assert registry.status()["failures"] == []
    assert "after 2 failed attempts" in caplog.text


def test_an_activation_refuses_a_damaged_store_file_even_with_a_good_private_copy(db):
    from recommendations.services import ModelActivationError

    good, bad = _mf_version(seed=1), _mf_version(seed=2)
    model_version_activate(version_id=bad.pk)  # leaves a good private copy on this host
    model_version_activate(version_id=good.pk)
    _flip(artifact_dir() / bad.artifact_path / ITEM_FACTORS_FILE)
    with pytest.raises(ModelActivationError, match="checksum"):
        model_version_activate(version_id=bad.pk)


def test_a_process_publishes_its_status_and_the_list_drops_it_when_withdrawn(db):
    from recommendations.registry import registry

    model_version_activate(version_id=ModelVersionFactory().pk)
    registry.__init__(check_seconds=0)
    registry.get(ModelKind.POPULARITY)
    monitor = ServingMonitor()
    monitor.role = "worker"
    try:
        monitor.run_once(publish=True)
        mine = [p for p in serving_processes() if p["pid"] == os.getpid()]
        assert len(mine) == 1 and mine[0]["role"] == "worker" and mine[0]["host"] == socket.gethostname()
        [model] = mine[0]["models"]
        assert model["kind"] == "popularity" and len(model["checksum"]) == 64
        assert {"started_at", "failures", "problems", "last_errors", "age_seconds"} <= set(mine[0])
    finally:
        process_status_withdraw(host=socket.gethostname(), pid=os.getpid())
        registry.__init__(check_seconds=0)
    assert not [p for p in serving_processes() if p["pid"] == os.getpid()]


def test_a_status_not_published_for_two_minutes_is_dropped(db):
    process_status_publish(status={"host": "gone-host", "pid": 1, "role": "worker"})
    assert [p["host"] for p in serving_processes()].count("gone-host") == 1
    from django.core.cache import cache

    from recommendations.serving.process_status import _redis

    client = _redis()
    if client is not None:  # age the entry by hand, as if the process had died 3 minutes ago
        key = cache.make_key(PROCESS_STATUS_KEY)
        entry = json.loads(client.hget(key, "gone-host:1"))
        client.hset(key, "gone-host:1", json.dumps({**entry, "published_at": time.time() - 180}))
        assert "gone-host" not in [p["host"] for p in serving_processes()]
        assert client.hget(key, "gone-host:1") is None
    else:
        process_status_withdraw(host="gone-host", pid=1)


def test_the_masters_monitor_notices_an_activation_and_asks_for_fresh_workers(transactional_db):
    from recommendations.registry import registry

    registry.__init__(check_seconds=0)
    model_version_activate(version_id=ModelVersionFactory(heavy_item=20).pk)
    reloads: list[tuple] = []
    monitor = ServingMonitor()
    monitor._on_models_changed = lambda: reloads.append(registry.serving_key())
    registry.get(ModelKind.POPULARITY)
    monitor.models_shared()
    try:
        monitor.run_once()
        assert reloads == []  # nothing new
        newer = ModelVersionFactory(heavy_item=30)
        model_version_activate(version_id=newer.pk)
        monitor._next_poll = 0.0
        monitor.run_once()
        assert len(reloads) == 1 and registry.versions() == {"popularity": newer.version}
        monitor._next_poll = 0.0
        monitor.run_once()
        assert len(reloads) == 1  # once per change
    finally:
        registry.__init__(check_seconds=0)
