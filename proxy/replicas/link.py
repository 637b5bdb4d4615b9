"""The proxy's client of a Redis (or Valkey): short timeouts and a circuit breaker, so a
Redis that is down or slow never fails a statement and never floods the log.

Every operation goes through ``RedisLink.attempt``: it runs under a hard timeout
(``OPERATION_TIMEOUT``, far above a LAN round trip), and any failure (refused, reset,
timed out, an error reply such as OOM) opens the breaker: for the next second the link
answers every caller with its fallback at once (statements go on with the in-process
cache), then lets one caller try again; each failure doubles the wait, up to
``RETRY_MAX``. The first failure logs one warning, the recovery one info line, and the
failures between them only debug lines: a Redis down for an hour is two lines in the
log, not one per statement.

The URL's password is never logged: logs and errors name the server by
``proxy.config.redacted_url``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from types import ModuleType
from typing import Any, TypeVar

from proxy.config import redacted_url
from proxy.errors import ConfigError

log = logging.getLogger(f"mlproxy.{__name__}")

T = TypeVar("T")

#: Seconds one operation may take before it counts as a failure (a LAN round trip is
#: well under a millisecond; a statement must not wait on a sick Redis for long).
OPERATION_TIMEOUT = 0.5
#: Seconds the breaker stays open after a first failure; doubled by each further one.
RETRY_FIRST = 1.0
RETRY_MAX = 30.0
#: How to install what the Redis settings need.
EXTRA_HINT = "pip install 'mlproxy[redis]'"


def import_redis_asyncio(setting: str) -> ModuleType:
    """redis-py's asyncio client, or a ConfigError naming the extra that brings it."""
    try:
        import redis.asyncio
    except ImportError as exc:
        raise ConfigError(
            f"{setting} needs the redis package, which is not installed: {EXTRA_HINT}"
        ) from exc
    return redis.asyncio


class Breaker:
    """Closed while Redis answers; open for a while after a failure (see module)."""

    def __init__(
        self, server: str, without: str, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.server = server
        #: What the proxy does while Redis fails, for the warning.
        self.without = without
        self.down = False
        self._clock = clock
        self._open_until = 0.0
        self._delay = RETRY_FIRST

    def available(self) -> bool:
        """Whether a call would try Redis now (no probe is claimed)."""
        return self._clock() >= self._open_until

    def allows(self) -> bool:
        """Whether a call may try Redis now. While down, one caller at a time probes."""
        now = self._clock()
        if now < self._open_until:
            return False
        if self.down:
            self._open_until = now + OPERATION_TIMEOUT  # the others wait for this probe
        return True

    def failed(self, what: str, exc: BaseException) -> None:
        if not self.down:
            log.warning(
                "Redis %s failed (%s: %s); until it answers, %s (trying again from time to time)",
                self.server,
                what,
                _describe(exc),
                self.without,
            )
            self.down = True
        else:
            log.debug("Redis %s still failing (%s: %s)", self.server, what, _describe(exc))
        self._open_until = self._clock() + self._delay
        self._delay = min(self._delay * 2, RETRY_MAX)

    def succeeded(self) -> None:
        if self.down:
            log.info("Redis %s answers again", self.server)
            self.down = False
        self._open_until = 0.0  # a probe that succeeded lets everyone through again
        self._delay = RETRY_FIRST


def _describe(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


class RedisLink:
    """One redis-py asyncio client (its own connection pool) and its breaker."""

    def __init__(
        self,
        url: str,
        setting: str,
        without: str,
        timeout: float = OPERATION_TIMEOUT,
        socket_timeout: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``without`` says what the proxy does while Redis fails (for the warning);
        ``socket_timeout``, when longer than ``timeout``, lets blocking commands wait."""
        module = import_redis_asyncio(setting)
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        self.server = redacted_url(url)
        self.timeout = timeout
        # No retries inside redis-py: the breaker decides when to try again.
        self.client: Any = module.Redis.from_url(
            url,
            socket_timeout=max(timeout, socket_timeout or 0),
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
            client_name="mlproxy",
        )
        self.breaker = Breaker(self.server, without, clock)
        self.errors: tuple[type[BaseException], ...] = (
            module.RedisError,
            OSError,
            TimeoutError,
        )

    async def attempt(
        self,
        what: str,
        operation: Callable[[Any], Awaitable[T]],
        fallback: T,
        timeout: float | None = None,
    ) -> T:
        """``operation(client)``'s result, or ``fallback`` when Redis fails or the breaker
        is open. Never raises for Redis's sake."""
        if not self.breaker.allows():
            return fallback
        try:
            async with asyncio.timeout(timeout or self.timeout):
                result = await operation(self.client)
        except self.errors as exc:
            self.breaker.failed(what, exc)
            return fallback
        self.breaker.succeeded()
        return result

    async def close(self) -> None:
        try:
            await self.client.aclose()
        except self.errors as exc:  # closing a dead connection: nothing to keep
            log.debug("closing the Redis client of %s: %s", self.server, exc)
