"""KILL statements: translating the proxy's connection ids to backend thread ids.

A client only knows the connection id the proxy gave it in the greeting (the mysql CLI
sends ``KILL QUERY <that id>`` on Ctrl-C). Proxy ids live in their own range, far above
any backend thread id, so ids a client read from SHOW PROCESSLIST (backend ids) still
pass through unchanged.

With ``--workers N`` each worker process hands out ids from its own slice of the proxy
range (``ConnectionIds``), so an id says which worker owns the connection
(``worker_of``): a KILL that reaches another worker asks the owner for the backend
thread id (proxy.session.peers).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: Proxy connection ids start here; backend thread ids stay far below it.
PROXY_ID_BASE = 1 << 30
#: Connection ids are 4 bytes in the greeting: the proxy range ends here.
PROXY_ID_END = 1 << 32
#: The most worker processes: each gets 1/64 of the range at least (50 million ids).
MAX_WORKERS = 64

# KILL [HARD|SOFT] [CONNECTION|QUERY] <id>  (MySQL and MariaDB forms; not QUERY ID, not USER)
_KILL = re.compile(
    rb"^(?:\s|/\*.*?\*/|(?:--\s|\#)[^\n]*\n)*KILL\s+(?:(?:HARD|SOFT)\s+)?(?:(CONNECTION|QUERY)\s+)?(\d+|\?)\s*;?\s*$",
    re.IGNORECASE | re.DOTALL,
)


@dataclass(frozen=True)
class KillStatement:
    """A KILL of one thread id."""

    thread_id: int
    query_only: bool

    def for_backend(self, backend_thread_id: int) -> bytes:
        kind = b"QUERY" if self.query_only else b"CONNECTION"
        return b"KILL " + kind + b" " + str(backend_thread_id).encode()


def parse_kill(sql: bytes) -> KillStatement | None:
    """Recognise ``KILL [CONNECTION|QUERY] n``; anything else is not ours to translate.

    >>> parse_kill(b"kill query 1073741825")
    KillStatement(thread_id=1073741825, query_only=True)
    >>> parse_kill(b"SELECT 1") is None
    True
    """
    if b"kill" not in sql[:256].lower():
        return None
    match = _KILL.match(sql)
    if match is None:
        return None
    kind = (match.group(1) or b"CONNECTION").upper()
    target = match.group(2)
    return KillStatement(PARAMETER if target == b"?" else int(target), kind == b"QUERY")


#: The thread id of ``KILL ?`` in a prepared statement: known only at execution.
PARAMETER = -1


def is_proxy_id(thread_id: int) -> bool:
    return thread_id >= PROXY_ID_BASE


def _slice_size(workers: int) -> int:
    return (PROXY_ID_END - PROXY_ID_BASE) // workers


def worker_of(thread_id: int, workers: int) -> int | None:
    """The index of the worker whose slice holds the proxy id, or None (not a proxy id).

    >>> worker_of(PROXY_ID_BASE + 1, 2), worker_of(PROXY_ID_END - 1, 2), worker_of(7, 2)
    (0, 1, None)
    """
    if not PROXY_ID_BASE <= thread_id < PROXY_ID_END:
        return None
    return min((thread_id - PROXY_ID_BASE) // _slice_size(workers), workers - 1)


class ConnectionIds:
    """Hands out one worker's connection ids: its slice of the proxy range, in order,
    starting over at the slice's start when it runs out (after 50 million ids at least).

    >>> ids = ConnectionIds(1, 2)
    >>> ids.next() == PROXY_ID_BASE + (PROXY_ID_END - PROXY_ID_BASE) // 2 + 1
    True
    """

    def __init__(self, index: int = 0, workers: int = 1) -> None:
        size = _slice_size(workers)
        self.first = PROXY_ID_BASE + index * size
        self.end = self.first + size
        self._last = self.first

    def next(self) -> int:
        self._last += 1
        if self._last >= self.end:
            self._last = self.first + 1
        return self._last
