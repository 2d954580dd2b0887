"""A redis-py connection behind a circuit breaker (settings: CONNECTION_POOL_KWARGS connection_class).

Every Redis call of the process (django-redis cache, feature store, locks) goes through a pool of these, so
one breaker per server covers them all: after REDIS_BREAKER_FAILURES consecutive connection errors or
timeouts, commands fail at once with CircuitOpen (a redis ConnectionError, which every caller already treats
as "Redis unavailable") until a background ping succeeds.
"""

from __future__ import annotations

import redis
from django.conf import settings

from config.breakers import CircuitBreaker, CircuitOpen, breaker

_FAILURES = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError)


class RedisCircuitOpen(CircuitOpen, redis.exceptions.ConnectionError):
    pass


class BreakerConnection(redis.Connection):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        host, port = self.host, self.port
        probe_timeout = min(self.socket_timeout or 0.5, 0.5)

        def ping() -> None:
            with redis.Redis(
                host=host,
                port=port,
                username=self.username,
                password=self.password,
                socket_timeout=probe_timeout,
                socket_connect_timeout=probe_timeout,
            ) as client:
                client.ping()

        self.breaker: CircuitBreaker = breaker(
            f"redis {host}:{port}",
            probe=ping,
            failure_threshold=getattr(settings, "REDIS_BREAKER_FAILURES", 2),
            probe_seconds=getattr(settings, "REDIS_BREAKER_PROBE_SECONDS", 0.5),
        )

    def _guarded(self, call, *args, **kwargs):
        if self.breaker.is_open:
            self.disconnect()
            raise RedisCircuitOpen(f"Redis {self.host}:{self.port} skipped: circuit open")
        try:
            result = call(*args, **kwargs)
        except RedisCircuitOpen:
            raise
        except _FAILURES as error:
            self.breaker.record_failure(error)
            raise
        self.breaker.record_success()
        return result

    def connect_check_health(self, *args, **kwargs):
        if self._sock:
            return None
        return self._guarded(super().connect_check_health, *args, **kwargs)

    def send_packed_command(self, *args, **kwargs):
        return self._guarded(super().send_packed_command, *args, **kwargs)

    def read_response(self, *args, **kwargs):
        return self._guarded(super().read_response, *args, **kwargs)
