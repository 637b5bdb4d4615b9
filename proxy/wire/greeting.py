"""The greeting a client gets, made without a backend connection, and kept true.

The proxy greets each client from the last backend greeting it has seen (the start-up
probe's, then that of every backend login), so a socket that never logs in costs the
backend nothing (issue 10, item 3). What a greeting says is what the client acts on:
the server version and collation, the capabilities, and two status flags, autocommit
(PyMySQL, for one, sends ``SET autocommit`` only when the greeting's flag differs from
what it wants) and NO_BACKSLASH_ESCAPES (how it quotes strings until its first result).

A global change on the backend (``SET GLOBAL autocommit = 0``, a sql_mode with
NO_BACKSLASH_ESCAPES) can make the last greeting stale. The client's own backend login
brings a fresh one: it becomes the next clients' greeting, and where it differs from
what this client was told, the new backend session is set to what the client was told
(as a MySQL server would have it: a session keeps the global values of the moment the
server greeted it). The OK that ends the login carries the session's real status flags.
"""

from __future__ import annotations

from mysql_mimic.types import ServerStatus

from proxy.wire.handshake import Greeting

#: Appended to the backend's version string, so a human can tell, and clients still parse it.
VERSION_SUFFIX = "-mlproxy"

AUTOCOMMIT = int(ServerStatus.SERVER_STATUS_AUTOCOMMIT)
NO_BACKSLASH_ESCAPES = int(ServerStatus.SERVER_STATUS_NO_BACKSLASH_ESCAPES)

#: The greeting's status flags a client acts on: the ones a stale greeting must not lie about.
SESSION_FLAGS = AUTOCOMMIT | NO_BACKSLASH_ESCAPES

_SQL_MODE_WITH_NBE = (
    "SET SESSION sql_mode = CONCAT_WS(',', NULLIF(@@SESSION.sql_mode, ''), 'NO_BACKSLASH_ESCAPES')"
)
_SQL_MODE_WITHOUT_NBE = (
    "SET SESSION sql_mode = TRIM(BOTH ',' FROM"
    " REPLACE(CONCAT(',', @@SESSION.sql_mode, ','), ',NO_BACKSLASH_ESCAPES,', ','))"
)


def client_greeting(
    template: Greeting, connection_id: int, nonce: bytes, capabilities: int
) -> Greeting:
    """The greeting for one client: the backend's version, collation and status from
    ``template``, the proxy's own connection id, nonce, capabilities and auth plugin."""
    return Greeting(
        server_version=template.server_version + VERSION_SUFFIX,
        connection_id=connection_id,
        nonce=nonce,
        capabilities=capabilities,
        collation=template.collation,
        status=template.status,
        auth_plugin="caching_sha2_password",
    )


def statements_to_keep_word(told: int, fresh: int, session: int) -> list[str]:
    """The statements that give a new backend session the flags the client was told.

    ``told``: the status flags of the client's greeting; ``fresh``: those of the backend
    greeting of its login (the global defaults now); ``session``: those of the login's
    OK. A flag is set back only where the greeting was stale (told != fresh) and the
    login left the global default in place (an init_connect that changed it wins, as on
    the server itself).

    >>> statements_to_keep_word(AUTOCOMMIT, 0, 0)
    ['SET SESSION autocommit = 1']
    >>> statements_to_keep_word(AUTOCOMMIT, AUTOCOMMIT, AUTOCOMMIT)
    []
    >>> statements_to_keep_word(0, AUTOCOMMIT, 0)  # init_connect turned autocommit off
    []
    >>> len(statements_to_keep_word(0, NO_BACKSLASH_ESCAPES, NO_BACKSLASH_ESCAPES))
    1
    """
    stale = (told ^ fresh) & ~(fresh ^ session) & SESSION_FLAGS
    statements = []
    if stale & AUTOCOMMIT:
        statements.append(f"SET SESSION autocommit = {1 if told & AUTOCOMMIT else 0}")
    if stale & NO_BACKSLASH_ESCAPES:
        statements.append(
            _SQL_MODE_WITH_NBE if told & NO_BACKSLASH_ESCAPES else _SQL_MODE_WITHOUT_NBE
        )
    return statements
