"""Model artifacts on a shared store (#15): an S3-compatible server (moto's server mode: a real HTTP S3 endpoint on
a free port) and a directory. Training publishes a version atomically (no row before the upload is verified),
each host serves its own verified copy, the store down during a swap keeps the old model (flagged, retried,
healed), and two gunicorn masters with separate serving caches both re-fork onto a newly activated version."""

from __future__ import annotations

import json
import logging
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from django.db import connection
from django.utils import timezone
from moto.server import ThreadedMotoServer

from recommendations.artifact_cache import ArtifactCorrupt
from recommendations.artifact_store import PathStore, StoreUnavailable, UrlStore, artifact_store
from recommendations.ml.matrix_factorization import ITEM_FACTORS_FILE, MatrixFactorization
from recommendations.ml.popularity import PopularityRecommender
from recommendations.models import ApiClient, ModelKind, ModelVersion
from recommendations.registry import ModelRegistry
from recommendations.services import model_version_activate, model_version_register
from recommendations.serving.process_status import serving_processes
from tests.faultkit import free_port, gunicorn_server, request, tcp_proxy, wait_until
from users.models import ViewingEvent

MF = ModelKind.MATRIX_FACTORIZATION
KEY = "store-test-key-0123456789abcdef"


@dataclass
class S3:
    """moto's S3 server in this process (its buckets outlive a stop, like a real server's disks)."""

    port: int
    bucket: str
    server: ThreadedMotoServer

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.server.stop()

    def start(self) -> None:
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self.server.start()

    def keys(self, store: UrlStore, prefix: str = "") -> list[str]:
        store.fs.invalidate_cache()
        return sorted(path.removeprefix(store.root + "/") for path in store.fs.find(f"{store.root}/{prefix}"))


@pytest.fixture
def s3(settings, monkeypatch, tmp_path):
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's request log
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    bucket = f"reco-{uuid.uuid4().hex[:12]}"
    settings.RECO_ARTIFACT_URL = f"s3://{bucket}/models"
    settings.RECO_ARTIFACT_ENDPOINT_URL = f"http://127.0.0.1:{port}"
    settings.RECO_ARTIFACT_STORE_TIMEOUT_SECONDS = 2.0
    settings.RECO_ARTIFACT_STORE_ATTEMPTS = 1  # the registry's back-off retries; no test waits on botocore's
    settings.RECO_ARTIFACT_DIR = tmp_path / "no-artifacts-here"
    settings.RECO_DATA_DIR = tmp_path / "data"
    settings.RECO_SERVING_CACHE_DIR = tmp_path / "cache-a"
    settings.RECO_ARTIFACT_RETRY_SECONDS = 0.5
    settings.RECO_ARTIFACT_RETRY_MAX_SECONDS = 2.0
    artifact_store().fs.mkdir(bucket)
    s3 = S3(port, bucket, server)
    yield s3
    s3.stop()


def _fitted(kind: str, seed: int):
    rng = np.random.default_rng(seed)
    rows = [(user, int(item), 1.0) for user in range(1, 60) for item in rng.choice(200, size=8, replace=False)]
    frame = pd.DataFrame(rows, columns=["user_id", "content_id", "rating"])
    return MatrixFactorization(n_factors=8, n_epochs=3).fit(frame) if kind == MF else PopularityRecommender().fit(frame)


def _registered(where: Path, kind: str = MF, seed: int = 0) -> ModelVersion:
    saved = _fitted(kind, seed).save(where / f"saved-{kind}-{seed}")
    return model_version_register(kind=kind, saved_model_dir=saved, metrics={"ndcg_at_10": 0.2})


def test_settings_pick_a_path_store_or_a_url_store(settings, tmp_path):
    settings.RECO_ARTIFACT_URL = ""
    settings.RECO_ARTIFACT_DIR = tmp_path / "shared"
    store = artifact_store()
    assert isinstance(store, PathStore) and not store.remote and store.location("mf/v1") == tmp_path / "shared/mf/v1"
    settings.RECO_ARTIFACT_URL = f"file://{tmp_path}/bucket/"
    store = artifact_store()
    assert (
        isinstance(store, UrlStore)
        and store.remote
        and str(store.location("mf/v1")) == f"file://{tmp_path}/bucket/mf/v1"
    )


@pytest.mark.parametrize("store_kind", ["directory", "file-url"])
def test_a_shared_directory_or_file_url_serves_every_host_from_its_own_copy(db, settings, tmp_path, store_kind):
    shared = tmp_path / "nfs-share"  # what every host mounts
    settings.RECO_ARTIFACT_URL = f"file://{shared}" if store_kind == "file-url" else ""
    settings.RECO_ARTIFACT_DIR = shared if store_kind == "directory" else tmp_path / "no-artifacts-here"
    settings.RECO_DATA_DIR = tmp_path / "data"
    settings.RECO_SERVING_CACHE_DIR = tmp_path / "trainer-cache"
    version = _registered(tmp_path, MF, 5)
    model_version_activate(version_id=version.pk)
    assert (shared / version.artifact_path / "meta.json").is_file()
    assert not (shared / ".staging").exists() or not list((shared / ".staging").iterdir())  # nothing half-made
    for host in ("cache-a", "cache-b"):
        settings.RECO_SERVING_CACHE_DIR = tmp_path / host
        served = ModelRegistry(check_seconds=0).get(MF)
        assert served is not None and served.checksum == version.checksum
        assert served.artifact.copy == tmp_path / host / version.checksum  # served from the host's own copy


def test_a_version_is_published_to_the_bucket_and_each_host_serves_its_own_verified_copy(db, s3, settings, tmp_path):
    version = _registered(tmp_path)
    store = artifact_store()
    meta = json.loads((store.location(version.artifact_path) / "meta.json").read_bytes())
    assert s3.keys(store) == sorted(f"{version.artifact_path}/{name}" for name in [*meta["sha256"], "meta.json"])
    assert not Path(settings.RECO_ARTIFACT_DIR).exists()  # nothing on local disk: the bucket is the store
    model_version_activate(version_id=version.pk)

    copies = []
    for host in ("cache-a", "cache-b"):  # two hosts: separate serving caches, one bucket
        settings.RECO_SERVING_CACHE_DIR = tmp_path / host
        served = ModelRegistry(check_seconds=0).get(MF)
        assert served is not None and served.checksum == version.checksum and served.mapped
        assert served.artifact.copy == tmp_path / host / version.checksum
        copies.append(served.model.item_factors)
    np.testing.assert_array_equal(copies[0], copies[1])

    # Another process of host b finds the copy made: the objects' ETags are its baseline (no download to hash).
    again = ModelRegistry(check_seconds=0)
    served = again.get(MF)
    assert served.artifact.copy == tmp_path / "cache-b" / version.checksum
    assert set(served.artifact.source_states) == set(served.artifact.files) and all(
        served.artifact.source_states.values()
    )
    again.verify_served()
    assert again.status()["problems"] == []


def test_an_upload_that_does_not_verify_never_becomes_a_version_and_leaves_nothing(db, s3, tmp_path):
    saved = _fitted(MF, 1).save(tmp_path / "model")
    store = artifact_store()
    files = {"meta.json": "0" * 64, **json.loads((saved / "meta.json").read_text())["sha256"]}
    with pytest.raises(ArtifactCorrupt, match="checksum mismatch after the upload"):
        store.publish(saved, "mf/broken", files)  # meta.json's registered checksum is not what was uploaded
    assert s3.keys(store) == []  # neither the version's name nor the temporary upload

    s3.stop()
    with pytest.raises(StoreUnavailable):
        _registered(tmp_path, MF, 2)
    assert not ModelVersion.objects.exists()  # the store was down: no row for an upload that did not happen
    s3.start()
    assert s3.keys(store) == []
    assert _registered(tmp_path, MF, 6).artifact_path.startswith("mf/")


def test_the_store_down_during_a_swap_keeps_the_old_model_flagged_retries_and_heals(db, s3, settings, tmp_path):
    first = _registered(tmp_path, MF, 3)
    model_version_activate(version_id=first.pk)
    registry = ModelRegistry(check_seconds=0)
    assert registry.get(MF).version_id == first.pk
    second = _registered(tmp_path, MF, 4)
    web_host_cache = settings.RECO_SERVING_CACHE_DIR
    settings.RECO_SERVING_CACHE_DIR = tmp_path / "trainer-cache"  # the activating process is on another host
    model_version_activate(version_id=second.pk)  # verified in the store by the activating process
    settings.RECO_SERVING_CACHE_DIR = web_host_cache

    s3.stop()  # every host's swap to `second` now finds the store unreachable
    assert registry.get(MF).version_id == first.pk  # the old model keeps serving
    failure = registry.status()["failures"][0]
    assert failure["version_id"] == second.pk and failure["error"].startswith("StoreUnavailable")
    registry.verify_served()  # the monitor's pass: the store's files cannot be checked, and it says so
    problems = registry.status()["problems"]
    assert problems and all(p["where"] == "source" and p["detail"].startswith("unreachable") for p in problems)
    assert any(p["file"].endswith(ITEM_FACTORS_FILE) for p in problems)
    time.sleep(0.6)
    assert registry.get(MF).version_id == first.pk and registry.status()["failures"][0]["attempts"] == 2  # backed off

    s3.start()
    registry.verify_served()
    assert registry.status()["problems"] == []  # the same files answer again
    wait_until(lambda: registry.get(MF).version_id == second.pk, seconds=10, what="the retry to load the new version")
    assert registry.status()["failures"] == []


def test_two_gunicorn_masters_with_their_own_caches_ride_out_an_unreachable_store_and_both_refork(
    s3, committed_serving_world, settings, tmp_path
):
    """Both web hosts reach the bucket through a proxy: killed during a swap (the store unreachable from them, not
    from the trainer), every process keeps the old model and shows the failed load; revived, both masters load
    the new version into their own caches and re-fork their workers by themselves."""
    from recommendations.training.jobs import model_train

    assert artifact_store().remote and s3.keys(artifact_store())  # the world's models are in the bucket
    ApiClient.issue("store-test", key=KEY, rate="100000/min")
    db = connection.settings_dict
    profile = ViewingEvent.objects.values_list("profile_id", flat=True).first()

    def served_popularity(url: str) -> str | None:
        status, _, body = request(f"{url}/api/recs?profile_id={profile}&n=5&rows=false", headers={"X-Api-Key": KEY})
        return json.loads(body)["model_versions"].get("popularity") if status == 200 else None

    def statuses(host) -> list[dict]:
        """The published statuses of the host's master and its current workers."""
        alive = {host.process.pid, *host.worker_pids()}
        return [s for s in serving_processes() if s.get("pid") in alive]

    with tcp_proxy("127.0.0.1", s3.port) as proxy:
        env = {
            "DJANGO_SETTINGS_MODULE": "config.settings.test",
            "DATABASE_URL": f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}",
            "RECO_ARTIFACT_URL": settings.RECO_ARTIFACT_URL,
            "RECO_ARTIFACT_ENDPOINT_URL": f"http://127.0.0.1:{proxy.port}",
            "RECO_ARTIFACT_STORE_TIMEOUT_SECONDS": "2",
            "RECO_ARTIFACT_STORE_ATTEMPTS": "1",
            "RECO_ARTIFACT_DIR": str(tmp_path / "no-artifacts-here"),
            "RECO_REGISTRY_CHECK_SECONDS": "1",
            "RECO_ARTIFACT_VERIFY_SECONDS": "1",
            "RECO_ARTIFACT_RETRY_SECONDS": "1",
            "RECO_ARTIFACT_RETRY_MAX_SECONDS": "2",
            "RECO_PROCESS_STATUS_SECONDS": "1",
            "RECO_RESPONSE_CACHE_SECONDS": "0",
        }
        with (
            gunicorn_server({**env, "RECO_SERVING_CACHE_DIR": str(tmp_path / "host-a")}, workers=1) as host_a,
            gunicorn_server({**env, "RECO_SERVING_CACHE_DIR": str(tmp_path / "host-b")}, workers=1) as host_b,
        ):
            hosts = (host_a, host_b)
            old = ModelVersion.objects.get(kind=ModelKind.POPULARITY, status=ModelVersion.Status.ACTIVE)
            assert served_popularity(host_a.url) == served_popularity(host_b.url) == old.version
            before = {host.url: set(host.worker_pids()) for host in hosts}

            proxy.kill()  # the store is unreachable from both web hosts
            # Another data window: a retrain on the same data can be byte for byte the version the hosts hold,
            # and a host serves a checksum it has from its own copy without the store.
            new = model_train(kind=ModelKind.POPULARITY, activation="always", until=timezone.now()).version
            assert new.status == ModelVersion.Status.ACTIVE and new.checksum != old.checksum

            def flagged(host) -> bool:
                found = statuses(host)
                return len(found) == 2 and all(
                    any(f["version"] == new.version and "StoreUnavailable" in f["error"] for f in s["failures"])
                    for s in found
                )

            for host in hosts:
                try:
                    wait_until(lambda host=host: flagged(host), seconds=30, what=f"{host.url}'s processes to show it")
                except TimeoutError:
                    raise AssertionError(f"{statuses(host)}\n{host.log_tail(6000)}") from None
                assert served_popularity(host.url) == old.version  # the old model keeps serving
                assert set(host.worker_pids()) == before[host.url]  # nothing to re-fork onto
            assert not any((tmp_path / cache / new.checksum).exists() for cache in ("host-a", "host-b"))

            proxy.revive()
            started = time.monotonic()
            for host in hosts:
                wait_until(
                    lambda host=host: (
                        host.worker_pids()
                        and not set(host.worker_pids()) & before[host.url]
                        and served_popularity(host.url) == new.version
                    ),
                    seconds=45,
                    what=f"{host.url}'s master to re-fork onto the new version",
                )
                assert "reloading the workers" in host.log_text()
            took = time.monotonic() - started
            for host in hosts:
                wait_until(
                    lambda host=host: all(not s["failures"] for s in statuses(host)),
                    seconds=15,
                    what="the failures to clear",
                )
            for cache in ("host-a", "host-b"):  # each host downloaded the new version into its own cache
                assert (tmp_path / cache / new.checksum / "meta.json").is_file()
            assert not (tmp_path / "no-artifacts-here").exists()
    print(f"both masters re-forked onto {new.version} within {took:.1f} s of the store answering again")
