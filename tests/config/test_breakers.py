"""Circuit breakers on processes the test owns: its own redis-server, a TCP proxy in front of PostgreSQL."""

from __future__ import annotations

import time

import pytest
import redis
from django.db import OperationalError, connection
from redis.backoff import NoBackoff
from redis.retry import Retry

from config.breakers import CircuitBreaker, CircuitOpen
from config.db.base import DatabaseWrapper
from config.deadlines import database_deadline_set
from config.redis_connection import BreakerConnection
from tests.faultkit import redis_server, tcp_proxy, wait_until


def test_a_breaker_opens_after_its_threshold_and_a_background_probe_closes_it():
    healthy = {"now": False}

    def probe() -> None:
        if not healthy["now"]:
            raise ConnectionError("still down")

    breaker = CircuitBreaker("test", probe=probe, failure_threshold=2, probe_seconds=0.05)
    breaker.record_failure(ConnectionError("one"))
    breaker.check()  # one failure: still closed
    breaker.record_failure(ConnectionError("two"))
    with pytest.raises(CircuitOpen):
        breaker.check()
    time.sleep(0.2)
    assert breaker.is_open  # probes keep failing
    healthy["now"] = True
    wait_until(lambda: not breaker.is_open, seconds=2, what="the probe closing the breaker")
    assert breaker.state().failures == 0


def test_a_success_resets_the_count_of_failures_in_a_row():
    breaker = CircuitBreaker("test-reset", probe=lambda: None, failure_threshold=2)
    breaker.record_failure(ConnectionError("one"))
    breaker.record_success()
    breaker.record_failure(ConnectionError("two"))
    assert not breaker.is_open


def _client(url: str) -> redis.Redis:
    pool = redis.ConnectionPool.from_url(
        url,
        connection_class=BreakerConnection,
        socket_timeout=0.3,
        socket_connect_timeout=0.3,
        retry=Retry(NoBackoff(), 1),
    )
    return redis.Redis(connection_pool=pool)


def _timed(call) -> tuple[float, Exception | None]:
    started = time.perf_counter()
    try:
        call()
    except Exception as error:
        return time.perf_counter() - started, error
    return time.perf_counter() - started, None


@pytest.mark.parametrize("fault", ["freeze", "kill"])
def test_a_hung_or_dead_redis_costs_one_timeout_then_nothing_until_it_returns(settings, fault):
    settings.REDIS_BREAKER_FAILURES, settings.REDIS_BREAKER_PROBE_SECONDS = 2, 0.1
    with redis_server() as server:
        client = _client(server.url)
        client.set("k", "v")
        getattr(server, fault)()
        first, error = _timed(lambda: client.get("k"))
        assert isinstance(error, redis.ConnectionError | redis.TimeoutError)
        assert first < 1.0  # two 0.3 s timeouts at most (one retry)
        later = [_timed(lambda: client.get("k")) for _ in range(20)]
        assert all(isinstance(e, redis.ConnectionError) for _, e in later)
        assert max(seconds for seconds, _ in later) < 0.02  # skipped, not waited for
        server.thaw() if fault == "freeze" else server.restart()
        wait_until(lambda: _timed(lambda: client.ping())[1] is None, seconds=2, what="Redis answering again")


def _proxied(proxy_port: int) -> DatabaseWrapper:
    settings_dict = {**connection.settings_dict, "HOST": "127.0.0.1", "PORT": str(proxy_port), "CONN_MAX_AGE": 0}
    return DatabaseWrapper(settings_dict, alias=f"proxied-{proxy_port}")


def _select_one(wrapper: DatabaseWrapper) -> None:
    with wrapper.cursor() as cursor:
        cursor.execute("SELECT 1")
        assert cursor.fetchone() == (1,)


@pytest.mark.django_db
@pytest.mark.skipif("connection.vendor != 'postgresql'")
@pytest.mark.parametrize("fault", ["freeze", "kill"])
def test_a_hung_or_dead_database_fails_within_the_deadline_and_then_at_once(fault):
    db = connection.settings_dict
    with tcp_proxy(db["HOST"] or "127.0.0.1", int(db["PORT"] or 5432)) as proxy:
        wrapper = _proxied(proxy.port)
        with database_deadline_set(0.4):
            _select_one(wrapper)
            getattr(proxy, fault)()
            first, error = _timed(lambda: _select_one(wrapper))
            assert isinstance(error, OperationalError), error
            assert first < 0.8
            wrapper.close()
            later = [_timed(lambda: _select_one(wrapper)) for _ in range(10)]
            assert all(isinstance(e, OperationalError) for _, e in later)
            assert max(seconds for seconds, _ in later) < 0.05
            proxy.thaw() if fault == "freeze" else proxy.revive()
            started = time.monotonic()
            wait_until(lambda: _timed(lambda: _select_one(wrapper))[1] is None, seconds=3, what="the database back")
            assert time.monotonic() - started < 1.5
        wrapper.close()


def test_log_records_about_an_open_circuit_are_dropped():
    import logging

    from config.breakers import SkipOpenCircuit

    def record(exc: BaseException | None, *args: object) -> logging.LogRecord:
        return logging.LogRecord(
            "x", logging.WARNING, __file__, 1, "msg %s", args or None, (type(exc), exc, None) if exc else None
        )

    try:
        try:
            raise CircuitOpen("open")
        except CircuitOpen as error:
            raise RuntimeError("wrapped") from error
    except RuntimeError as wrapped:
        wrapped_error = wrapped
    skip = SkipOpenCircuit()
    assert not skip.filter(record(wrapped_error))
    assert not skip.filter(record(None, CircuitOpen("open")))
    assert skip.filter(record(RuntimeError("a real bug")))


@pytest.mark.django_db
@pytest.mark.skipif("connection.vendor != 'postgresql'")
def test_connecting_to_a_hung_database_honours_the_deadline_below_libpqs_two_seconds():
    db = connection.settings_dict
    with tcp_proxy(db["HOST"] or "127.0.0.1", int(db["PORT"] or 5432)) as proxy:
        proxy.freeze()
        wrapper = _proxied(proxy.port)
        with database_deadline_set(0.4):
            seconds, error = _timed(lambda: _select_one(wrapper))
        assert isinstance(error, OperationalError) and seconds < 0.8, (seconds, error)
        proxy.thaw()
        wait_until(lambda: _timed(lambda: _select_one(wrapper))[1] is None, seconds=3, what="the database back")
        wrapper.close()
