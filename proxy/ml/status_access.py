"""Who may read the proxy-wide Aurora_ml_* counters: accounts with the PROCESS privilege.

The process-wide counters move with every session's statements, so reading them tells
one account something about the others' (issue 10, item 8): as for the server's own
views of other sessions (SHOW PROCESSLIST), they need PROCESS. The proxy asks the
backend on the client's own connection (information_schema.USER_PRIVILEGES lists the
current account's global privileges, and every account's for an administrator, hence
the GRANTEE filter; PROCESS held only through a role is not seen, so such an account is
refused), and remembers the answer for the session for CHECK_INTERVAL seconds (a REVOKE
takes effect within that time).
"""

from __future__ import annotations

import time

from proxy.upstream.backend import BackendConnection
from proxy.upstream.internal import fetch_rows

#: Seconds a session's answer is reused.
CHECK_INTERVAL = 10.0

_CURRENT = "CURRENT_USER()"
#: 'user'@'host' as USER_PRIVILEGES spells the grantee (the host follows the last '@').
_GRANTEE = (
    f"CONCAT('''', LEFT({_CURRENT}, CHAR_LENGTH({_CURRENT}) - "
    f"CHAR_LENGTH(SUBSTRING_INDEX({_CURRENT}, '@', -1)) - 1), '''@''', "
    f"SUBSTRING_INDEX({_CURRENT}, '@', -1), '''')"
)
PROCESS_PROBE = (
    "SELECT COUNT(*) FROM information_schema.USER_PRIVILEGES "
    f"WHERE PRIVILEGE_TYPE = 'PROCESS' AND GRANTEE = {_GRANTEE}"
)


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
            ((count,),) = await fetch_rows(backend, PROCESS_PROBE)
            self._granted = bool(count and int(count))
            self._checked_at = now
        return self._granted
