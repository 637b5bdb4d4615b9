"""A statement's time budget: how long its inference may take, and who said so.

Throttled requests are retried for as long as the budget allows rather than a fixed
number of times (issue 12): a service that paces the proxy down to its quota answers
every request in the end, and the budget, not a count, says when waiting is no longer
worth it. The proxy sets it from ``ml_statement_timeout`` and from the session's own
``max_statement_time`` (MariaDB) or ``max_execution_time`` (MySQL), whichever is smaller.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass(frozen=True)
class TimeBudget:
    """``seconds`` from ``start`` (time.monotonic); ``source`` names the setting."""

    seconds: float
    source: str
    start: float = field(default_factory=time.monotonic)

    def remaining(self) -> float:
        """Seconds left (negative once spent)."""
        return self.start + self.seconds - time.monotonic()


def tightest(*budgets: TimeBudget | None) -> TimeBudget | None:
    """The budget that ends first (None when there is none).

    >>> tightest(None, TimeBudget(300, "a", 0), TimeBudget(2, "b", 0)).source
    'b'
    """
    present = [b for b in budgets if b is not None]
    return min(present, key=lambda b: b.start + b.seconds, default=None)
