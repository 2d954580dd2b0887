"""config.reloading.VersionedSnapshot as plain Python: a fake clock, in-memory versions, real threads."""

from __future__ import annotations

import threading
import time

import pytest

from config.reloading import VersionedSnapshot


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Source:
    """A version and a count of the version reads and builds (a build returns (version, build number))."""

    def __init__(self) -> None:
        self.version = 1
        self.reads = 0
        self.builds = 0
        self.read_error: Exception | None = None
        self.build_error: Exception | None = None

    def read(self) -> int:
        self.reads += 1
        if self.read_error is not None:
            raise self.read_error
        return self.version

    def build(self, version: int, previous: tuple[int, int] | None) -> tuple[int, int]:
        if self.build_error is not None:
            raise self.build_error
        self.builds += 1
        return version, self.builds


def snapshot(source: Source, clock: Clock, check_seconds: float = 5.0) -> VersionedSnapshot[int, tuple[int, int]]:
    return VersionedSnapshot(
        "thing", read_version=source.read, build=source.build, check_seconds=check_seconds, clock=clock
    )


def test_a_version_change_rebuilds_and_an_unchanged_one_keeps_the_snapshot():
    source, clock = Source(), Clock()
    cache = snapshot(source, clock, check_seconds=0)

    first = cache.get()
    assert first == (1, 1)
    assert cache.get() is first  # checked again, same version: the same object
    assert source.reads == 2 and source.builds == 1

    source.version = 2
    assert cache.get() == (2, 2)
    assert cache.version == 2


def test_the_interval_is_honoured():
    source, clock = Source(), Clock()
    cache = snapshot(source, clock, check_seconds=5)
    cache.get()
    source.version = 2

    clock.now += 4.9
    assert cache.get() == (1, 1)  # not checked yet
    assert source.reads == 1 and cache.fresh()
    clock.now += 0.1
    assert not cache.fresh()
    assert cache.get() == (2, 2)
    assert source.reads == 2


def test_an_interval_read_at_each_check_follows_its_setting():
    source, clock = Source(), Clock()
    setting = {"seconds": 60.0}
    cache = VersionedSnapshot(
        "thing", read_version=source.read, build=source.build, check_seconds=lambda: setting["seconds"], clock=clock
    )
    cache.get()
    source.version = 2
    clock.now += 1
    assert cache.get() == (1, 1)
    setting["seconds"] = 0.5
    assert cache.get() == (2, 2)


def test_expire_checks_on_the_next_get_and_clear_rebuilds():
    source, clock = Source(), Clock()
    cache = snapshot(source, clock, check_seconds=3600)
    cache.get()
    source.version = 2
    cache.expire()
    assert cache.get() == (2, 2)

    cache.clear()
    assert cache.peek() is None
    assert cache.get() == (2, 3)  # built again, same version


def test_refresh_builds_whatever_the_version():
    source, clock = Source(), Clock()
    cache = snapshot(source, clock, check_seconds=3600)
    cache.get()
    assert cache.refresh() == (1, 2)
    assert cache.get() == (1, 2)


def test_a_failing_build_keeps_the_last_snapshot_flags_it_and_retries_an_interval_later(caplog):
    source, clock = Source(), Clock()
    cache = snapshot(source, clock, check_seconds=5)
    served = cache.get()
    source.version, source.build_error = 2, RuntimeError("database down")

    clock.now += 5
    assert cache.get() is served
    assert cache.error == "RuntimeError: database down" and cache.failed_at is not None
    assert "could not refresh the thing; still serving version 1: RuntimeError: database down" in caplog.text
    reads = source.reads
    assert cache.get() is served and source.reads == reads  # no retry by every reader
    clock.now += 5
    assert cache.get() is served
    assert [bool(record.exc_info) for record in caplog.records] == [True, False]  # the traceback once

    source.build_error = None
    clock.now += 5
    assert cache.get() == (2, 2)
    assert cache.error is None and cache.failed_at is None


def test_a_failing_version_read_keeps_the_last_snapshot():
    source, clock = Source(), Clock()
    cache = snapshot(source, clock, check_seconds=0)
    served = cache.get()
    source.read_error = ConnectionError("redis down")

    assert cache.get() is served
    assert cache.error == "ConnectionError: redis down"


def test_the_first_build_raises_and_is_tried_again_by_the_next_get():
    source, clock = Source(), Clock()
    cache = snapshot(source, clock, check_seconds=3600)
    source.build_error = RuntimeError("no database yet")

    with pytest.raises(RuntimeError):
        cache.get()
    source.build_error = None
    assert cache.get() == (1, 1)  # no snapshot: not held back by the interval


def test_without_a_version_reader_every_check_rebuilds_from_the_previous():
    clock = Clock()
    seen: list[int | None] = []

    def build(_version: None, previous: int | None) -> int:
        seen.append(previous)
        return (previous or 0) + 1

    cache: VersionedSnapshot[None, int] = VersionedSnapshot("counter", build=build, check_seconds=10, clock=clock)
    assert cache.get() == 1
    assert cache.get() == 1
    clock.now += 10
    assert cache.get() == 2
    assert seen == [None, 1]


def test_version_of_compares_the_version_the_snapshot_holds():
    source, clock = Source(), Clock()
    cache = VersionedSnapshot(
        "thing",
        read_version=source.read,
        build=lambda version, _previous: (version + 1, 0),  # the source moved on between the read and the build
        version_of=lambda built: built[0],
        check_seconds=0,
        clock=clock,
    )
    cache.get()
    assert cache.version == 2
    source.version = 2
    first = cache.get()
    assert cache.get() is first  # read 2, holds 2: no rebuild


def test_on_swap_is_called_after_a_new_snapshot_is_installed():
    source, clock = Source(), Clock()
    swapped: list[tuple[int, int] | None] = []
    cache: VersionedSnapshot[int, tuple[int, int]] = VersionedSnapshot(
        "thing",
        read_version=source.read,
        build=source.build,
        check_seconds=0,
        clock=clock,
        on_swap=lambda s: swapped.append(cache.peek()),
    )
    cache.get()
    cache.get()
    source.version = 2
    cache.get()
    assert swapped == [(1, 1), (2, 2)]  # once per new object, and already served when called


def test_replace_within_exclusive_keeps_the_version():
    source, clock = Source(), Clock()
    cache = snapshot(source, clock, check_seconds=0)
    with pytest.raises(RuntimeError):
        cache.replace((9, 9))
    cache.get()
    with cache.exclusive(timeout=1) as held:
        assert held
        cache.replace((1, 99))
    assert cache.get() == (1, 99)  # same version: kept


def test_concurrent_first_readers_get_one_build():
    source = Source()
    started = threading.Event()

    def slow_build(version: int, previous: tuple[int, int] | None) -> tuple[int, int]:
        started.set()
        time.sleep(0.2)
        return source.build(version, previous)

    cache = VersionedSnapshot("thing", read_version=source.read, build=slow_build, check_seconds=60)
    results: list[tuple[int, int]] = []
    threads = [threading.Thread(target=lambda: results.append(cache.get())) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=5)

    assert results == [(1, 1)] * 8
    assert source.builds == 1


def test_readers_never_wait_for_a_rebuild_once_a_snapshot_exists():
    source = Source()
    release = threading.Event()
    building = threading.Event()

    def build(version: int, previous: tuple[int, int] | None) -> tuple[int, int]:
        if previous is not None:
            building.set()
            assert release.wait(timeout=5)
        return source.build(version, previous)

    cache = VersionedSnapshot("thing", read_version=source.read, build=build, check_seconds=0)
    served = cache.get()
    source.version = 2
    rebuilder = threading.Thread(target=cache.get)
    rebuilder.start()
    assert building.wait(timeout=5)

    started = time.perf_counter()
    assert [cache.get() for _ in range(100)] == [served] * 100  # the old snapshot, at once
    assert time.perf_counter() - started < 0.5
    release.set()
    rebuilder.join(timeout=5)
    assert cache.get() == (2, 2)
    assert source.builds == 2


def test_exclusive_times_out_while_a_build_runs():
    source = Source()
    release, building = threading.Event(), threading.Event()

    def build(version: int, previous: tuple[int, int] | None) -> tuple[int, int]:
        building.set()
        release.wait(timeout=5)
        return source.build(version, previous)

    cache = VersionedSnapshot("thing", read_version=source.read, build=build, check_seconds=0)
    first = threading.Thread(target=cache.get)
    first.start()
    assert building.wait(timeout=5)
    with cache.exclusive(timeout=0.05) as held:
        assert not held
    release.set()
    first.join(timeout=5)
    with cache.exclusive(timeout=0.05) as held:
        assert held
