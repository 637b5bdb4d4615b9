"""The client's right to run an ML statement, checked before any model request.

An ML statement runs in steps: key queries read the inputs, the models answer, then the
rewritten statement runs. Only that last step needs the rights to write (INSERT, UPDATE,
CREATE ...), so an account allowed to read but not to write used to cost model requests
for a statement the backend then refused (issue 10, item 7). COM_STMT_PREPARE checks a
statement's privileges without running it, so the proxy prepares the plan's metadata
twin (the statement with each call replaced by a NULL of its type, every argument still
mentioned: the same tables and columns, the same kind of statement) and closes it: one
round trip. An access-denied answer is the client's answer, as the backend gave it; any
other answer (a statement kind the server cannot prepare, a twin it reads differently) is
left for the statement itself to meet.
"""

from __future__ import annotations

import logging

from proxy.errors import BackendRejected
from proxy.upstream.backend import BackendConnection
from proxy.upstream.internal import close_statement, prepare_statement
from rewriter.plan import MLPlan

log = logging.getLogger(f"mlproxy.{__name__}")

#: The backend's access-denied errors: database (1044), table (1142), column (1143),
#: a privilege such as SUPER (1227), routine (1370).
ACCESS_DENIED = frozenset({1044, 1142, 1143, 1227, 1370})


async def check_privileges(backend: BackendConnection, plan: MLPlan) -> None:
    """Raise the backend's own BackendRejected when the client may not run ``plan``'s
    statement; return quietly otherwise (see the module docstring)."""
    try:
        statement = await prepare_statement(backend, plan.metadata_twin())
    except BackendRejected as exc:
        if exc.code in ACCESS_DENIED:
            raise
        log.debug("privilege check of an ML statement inconclusive: %s", exc)
        return
    await close_statement(backend, statement.statement_id)
