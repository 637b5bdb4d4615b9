"""Each backend finds its service's request rate by itself (issue 12).

AWS gives every API of an account a per-second request quota (small by default, different
per account and region) and answers requests above it with a throttling error. The
proxy is not told the quota; it learns it the way TCP's CUBIC congestion control learns a
path's capacity, and botocore's adaptive retry mode an API's quota:

- Until the service first throttles, requests go as fast as ``ml_max_in_flight`` lets
  them (and no faster than ``ml_rate_limit``, the ceiling, when it is set).
- A throttled answer cuts the rate: ``w_max``, the rate the service refused, is what was
  sent in the last second (not more than the rate in force, not less than BETA of it),
  and the new rate is BETA (0.7) x ``w_max``. Answers to requests sent before a cut do
  not cut again: one cut per round trip, as TCP reduces once per window of losses.
- While requests succeed the rate grows back along CUBIC's curve,
  ``rate(t) = C (t - K)^3 + w_max`` with ``K = cbrt(w_max (1 - BETA) / C)``: quickly at
  first, flat near ``w_max`` (where the service last pushed back), then probing beyond
  it, up to twice the most requests ever sent in one second (as botocore caps its rate
  at twice the rate it measures): a rate the proxy never used is no knowledge, and a cut
  from it would take many round trips. The curve's clock runs only while the backend has
  work: an idle proxy does not come back from lunch believing the service grew.
- Requests are paced evenly at the rate (one every 1/rate seconds, no bursts), which is
  what a token-bucket quota takes best.

The limiter is sans-IO (``AdaptiveRate``: times in, decisions out, a clock the tests
drive); ``paced`` is the small async loop the engine waits in. One limiter serves every
session of a process (the engine shares it); processes of ``--workers`` each find their
own share of the quota.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from ml_backends.errors import Throttled

log = logging.getLogger(f"mlproxy.{__name__}")

#: The multiplicative decrease: a cut keeps this share of the refused rate.
BETA = 0.7
#: CUBIC's scaling constant (RFC 9438's C, in requests/s per s^3).
C = 0.4
#: The slowest the limiter ever paces (botocore's adaptive mode uses the same floor).
FLOOR = 0.5
#: The window over which "what was sent" is counted: quotas are per second.
WINDOW = 1.0


@dataclass
class Ticket:
    """One request's passage through the limiter."""

    sent_at: float = math.nan


class AdaptiveRate:
    """The send rate of one backend (see the module docstring). ``ceiling`` is
    ``ml_rate_limit`` (None: no ceiling); ``clock`` gives seconds; ``name`` is the
    service's, for the log."""

    def __init__(
        self,
        ceiling: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        name: str = "backend",
    ) -> None:
        self.ceiling = ceiling or None
        self.name = name
        self.clock = clock
        #: The rate the service last refused; None until it first throttles.
        self.w_max: float | None = None
        self._k = 0.0
        #: When CUBIC's curve started (moved forward by idle time).
        self._epoch = 0.0
        #: When the last cut happened (answers to requests sent before it do not cut).
        self._cut_at = -math.inf
        self._next_at = -math.inf
        self._sent: deque[float] = deque()
        #: The most requests sent within one second so far.
        self._peak = 0
        self._pending = 0
        self._idle_since: float | None = None
        #: Cuts so far (for logs and tests).
        self.cuts = 0

    # -- the rate -----------------------------------------------------------------------

    def rate(self, now: float | None = None) -> float | None:
        """Requests per second allowed now; None: unlimited."""
        if self.w_max is None:
            return self.ceiling
        now = self.clock() if now is None else now
        if self._idle_since is not None:
            now = self._idle_since  # the curve stands still while nothing is asked
        grown = C * (now - self._epoch - self._k) ** 3 + self.w_max
        grown = max(FLOOR, min(grown, max(2 * self._peak, self.w_max)))
        return grown if self.ceiling is None else min(grown, self.ceiling)

    def sent_last_second(self, now: float) -> int:
        while self._sent and self._sent[0] <= now - WINDOW:
            self._sent.popleft()
        return len(self._sent)

    # -- one request's life: arrive, (wait), send, succeeded/throttled, leave -----------

    def arrive(self, now: float) -> None:
        """A request wants to go: the backend has work from now on."""
        if self._pending == 0 and self._idle_since is not None:
            self._epoch += now - self._idle_since
            self._idle_since = None
        self._pending += 1

    def delay(self, now: float) -> float:
        """Seconds until the next request may be sent (0: now)."""
        return max(0.0, self._next_at - now) if self.rate(now) is not None else 0.0

    def send(self, now: float) -> Ticket:
        """Take the next turn (call when ``delay`` says 0)."""
        rate = self.rate(now)
        if rate is not None:
            self._next_at = max(self._next_at, now) + 1 / rate
        self._sent.append(now)
        self._peak = max(self._peak, self.sent_last_second(now))
        return Ticket(now)

    def throttled(self, ticket: Ticket, now: float) -> bool:
        """The service refused ``ticket``'s request for its rate: cut, unless a cut
        already answered requests sent as early. True when this cut."""
        if ticket.sent_at < self._cut_at:
            return False
        sent = self.sent_last_second(now)
        current = self.rate(now)
        refused = float(sent) if current is None else min(current, max(sent, BETA * current))
        self.w_max = max(refused, FLOOR)
        self._k = math.cbrt(self.w_max * (1 - BETA) / C)
        self._epoch = self._cut_at = now
        self.cuts += 1
        new_rate = self.rate(now)
        assert new_rate is not None
        self._next_at = max(self._next_at, now + 1 / new_rate)
        # The first cut is news (the service has a quota the proxy now paces to); later
        # ones are the pacing at work.
        log.log(
            logging.INFO if self.cuts == 1 else logging.DEBUG,
            "%s throttled the proxy at %.2f requests/s; pacing at %.2f/s",
            self.name,
            self.w_max,
            new_rate,
        )
        return True

    def leave(self, now: float) -> None:
        """The request is answered (or abandoned)."""
        self._pending -= 1
        if self._pending == 0:
            self._idle_since = now


@asynccontextmanager
async def paced(limiter: AdaptiveRate) -> AsyncIterator[Ticket]:
    """Wait for the request's turn, then run the body (the request). A body that raises
    Throttled tells the limiter; whatever else happens, the request leaves it."""
    clock = limiter.clock
    limiter.arrive(clock())
    try:
        # A wait for a time, not an event; woken early by nothing, it re-reads the
        # schedule (a cut or another sender may have moved it).
        while (wait := limiter.delay(clock())) > 0:  # noqa: ASYNC110
            await asyncio.sleep(wait)
        ticket = limiter.send(clock())
        try:
            yield ticket
        except Throttled:
            limiter.throttled(ticket, clock())
            raise
    finally:
        limiter.leave(clock())


class RateLimits:
    """The limiters of a process, one per service (the Comprehend functions' backend,
    each alias's endpoint name or model id), shared by every engine calling it."""

    def __init__(self, ceiling: float | None = None) -> None:
        self.ceiling = ceiling
        self._limits: dict[str, AdaptiveRate] = {}

    def for_service(self, name: str) -> AdaptiveRate:
        limiter = self._limits.get(name)
        if limiter is None:
            limiter = self._limits[name] = AdaptiveRate(self.ceiling, name=name)
        return limiter

    def status_rows(self) -> list[tuple[str, str]]:
        """(Variable_name, Value) rows: each service's current rate in requests per
        second, 0 while it is unlimited."""
        return [
            (f"Mlproxy_ml_send_rate_{name}", _format_rate(limiter.rate()))
            for name, limiter in sorted(self._limits.items())
        ]


def _format_rate(rate: float | None) -> str:
    """
    >>> _format_rate(None), _format_rate(7.0), _format_rate(12.3456)
    ('0', '7.00', '12.35')
    """
    return "0" if rate is None else f"{rate:.2f}"
