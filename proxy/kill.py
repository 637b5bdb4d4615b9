"""KILL statements: translating the proxy's connection ids to backend thread ids.

A client only knows the connection id the proxy gave it in the greeting (the mysql CLI
sends ``KILL QUERY <that id>`` on Ctrl-C). Proxy ids live in their own range, far above
any backend thread id, so ids a client read from SHOW PROCESSLIST (backend ids) still
pass through unchanged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: Proxy connection ids start here; backend thread ids stay far below it.
PROXY_ID_BASE = 1 << 30

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
