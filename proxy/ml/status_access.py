"""Who may read the proxy-wide Aurora_ml_* counters: accounts with the PROCESS privilege.

The process-wide counters move with every session's statements, so reading them tells
one account something about the others' (issue 10, item 8): as for the server's own
views of other sessions (SHOW PROCESSLIST), they need PROCESS. The proxy asks the
backend on the client's own connection with SHOW GRANTS (the current account's grants,
and its active role's where the server lists them: a global PROCESS or ALL PRIVILEGES),
and remembers the answer for the session for CHECK_INTERVAL seconds (a REVOKE takes
effect within that time). SHOW GRANTS rather than a SELECT on information_schema: the
probe runs on the client's own session, and a SELECT would count in the server's
Com_select, which a client may be watching around its own statements (MariaDB's
change_user test does, around a COM_CHANGE_USER).
"""

from __future__ import annotations

import re
import time

from proxy.upstream.backend import BackendConnection
from proxy.upstream.internal import fetch_rows

#: Seconds a session's answer is reused.
CHECK_INTERVAL = 10.0

PROCESS_PROBE = "SHOW GRANTS"
_GLOBAL_GRANT = re.compile(r"^GRANT (.+?) ON \*\.\* TO ", re.DOTALL)


def grants_process(grants: list[str]) -> bool:
    """Whether SHOW GRANTS lines give a global PROCESS.

    >>> grants_process(["GRANT SELECT, PROCESS ON *.* TO `u`@`%`"])
    True
    >>> grants_process(["GRANT ALL PRIVILEGES ON *.* TO `root`@`localhost` WITH GRANT OPTION"])
    True
    >>> grants_process(["GRANT USAGE ON *.* TO `u`@`%`", "GRANT PROCESS ON `db`.* TO `u`@`%`"])
    False
    """
    for line in grants:
        match = _GLOBAL_GRANT.match(line)
        if match is None:
            continue
        privileges = {p.strip().upper() for p in match.group(1).split(",")}
        if "PROCESS" in privileges or "ALL PRIVILEGES" in privileges:
            return True
    return False


class ProcessPrivilege:
    """One session's remembered answer to "does this account have PROCESS?"."""

    def __init__(self) -> None:
        self._granted = False
        self._checked_at: float | None = None

    def forget(self) -> None:
        """After COM_CHANGE_USER: another account, another answer."""
        self._checked_at = None

    async def granted(self, backend: BackendConnection) -> bool:
        now = time.monotonic()
        if self._checked_at is None or now - self._checked_at >= CHECK_INTERVAL:
            rows = await fetch_rows(backend, PROCESS_PROBE)
            lines = [row[0].decode("utf-8", "replace") for row in rows if row and row[0]]
            self._granted = grants_process(lines)
            self._checked_at = now
        return self._granted
