"""Aurora's ML status counters (SHOW STATUS LIKE 'Aurora_ml%'), and the proxy's own.

The proxy keeps one set for the process (SHOW GLOBAL STATUS) and one per session (SHOW
[SESSION] STATUS); an engine adds each count to both through a Tally, so one session's
counters move only with its own statements. Aurora's seven are named as Aurora names them
(``Aurora_ml_*``); counters Aurora does not have are the proxy's (``Mlproxy_ml_*``), so
nothing looks like an Aurora variable that Aurora lacks."""

from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass
class MLCounters:
    """Names and meanings follow Aurora MySQL's global status variables."""

    logical_request_cnt: int = 0  # calls the statements asked for (one per row and function)
    logical_response_cnt: int = 0  # responses those calls received
    actual_request_cnt: int = 0  # requests really sent to a backend
    actual_response_cnt: int = 0  # responses really received
    cache_hit_cnt: int = 0  # calls answered from the cache or by de-duplication
    retry_request_cnt: int = 0  # requests retried
    single_request_cnt: int = 0  # calls evaluated one by one (not batched)
    throttled_cnt: int = 0  # requests the service refused for their rate (and retried)

    #: The counters Aurora does not have, shown as Mlproxy_ml_*.
    OWN = frozenset({"throttled_cnt"})

    def add_cached(self, calls: int) -> None:
        """``calls`` answered from the cache, as the engine counts them (logical
        request, cache hit, logical response each)."""
        self.logical_request_cnt += calls
        self.cache_hit_cnt += calls
        self.logical_response_cnt += calls

    def reset(self) -> None:
        for f in fields(self):
            setattr(self, f.name, 0)

    def as_status_rows(self) -> list[tuple[str, str]]:
        """(Variable_name, Value) rows, as SHOW STATUS prints them."""
        return [
            (
                f"{'Mlproxy' if f.name in self.OWN else 'Aurora'}_ml_{f.name}",
                str(getattr(self, f.name)),
            )
            for f in fields(self)
        ]


class Tally:
    """Adds each count to several counter sets at once (the process's and a session's).

    >>> process, session = MLCounters(), MLCounters()
    >>> Tally(process, session).add("cache_hit_cnt", 2)
    >>> (process.cache_hit_cnt, session.cache_hit_cnt)
    (2, 2)
    """

    def __init__(self, *counters: MLCounters | None) -> None:
        self.counters = [c for c in counters if c is not None]

    def add(self, name: str, count: int = 1) -> None:
        for counters in self.counters:
            setattr(counters, name, getattr(counters, name) + count)
