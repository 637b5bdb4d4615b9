"""The proxy's exceptions, and the one place that turns them into MySQL ERR packets.

    ProxyError
    ├── ConfigError              bad settings (the CLI exits with code 2)
    ├── ClientProtocolError      a client sent bytes that are not the protocol (1835)
    │   ├── PacketsOutOfOrder    a command's sequence id is wrong (1156; the session ends)
    │   └── PacketTooLarge       a command larger than the proxy takes (1153; the session ends)
    ├── WrongArguments           a prepared statement's parameter the proxy will not bind (1210)
    ├── CommandTooLarge          a command the proxy must hold is over its limit (1153)
    ├── AuthenticationFailed     wrong credentials, or a login the proxy refuses (1045)
    ├── TooManyConnections       the connection cap is reached (1040)
    ├── UnknownThread            KILL of an id that is not a proxy connection (1094)
    ├── MLStatementError         an ML statement cannot run (its own code: 1210, 1226, ...)
    ├── Interrupted              an ML statement stopped from outside (proxy.ml.activity)
    │   ├── QueryInterrupted     KILL QUERY (1317; the session goes on)
    │   ├── ConnectionKilled     KILL CONNECTION (1927; the session ends)
    │   └── ServerShutdown       the proxy is shutting down (1053; the session ends)
    └── BackendError
        ├── BackendUnavailable   the backend cannot be reached (2003)
        ├── BackendLost          the backend connection died during a command (2013)
        ├── BackendTLSError      TLS to the backend failed, e.g. an untrusted certificate (2026)
        ├── BackendProtocolError the backend answered something unexpected (2027)
        └── BackendRejected      the backend answered with its own ERR packet (relayed as is)

Any other exception reaching a client is an internal error: the client gets a generic
1105 message naming the connection id, and the traceback goes to the log.

EndSession is no error: a session's handlers raise it to leave the command loop.
"""

from __future__ import annotations

import contextlib
import struct
from collections.abc import Iterator

from proxy.wire.packets import ServerError, make_err


class ProxyError(Exception):
    """Root of every error the proxy raises on purpose."""

    code = 1105
    sqlstate = "HY000"

    def client_message(self) -> str:
        """The text a client may see: never internal details, only what the error says."""
        return str(self)


class EndSession(Exception):
    """Leave the command loop; the connection closes."""


class ConfigError(ProxyError):
    """A setting is missing, malformed or contradictory."""


class ClientProtocolError(ProxyError):
    """A client's bytes are not the protocol. The command is refused and the session
    goes on, as the server does for a malformed command (its SQLSTATE too: HY000)."""

    code = 1835  # ER_MALFORMED_PACKET
    sqlstate = "HY000"
    #: Whether the session must end after the ERR (the stream cannot be trusted).
    fatal = False


class PacketsOutOfOrder(ClientProtocolError):
    """A command whose first packet's sequence id is not 0: the server answers this and
    closes the connection, and the proxy does the same."""

    code = 1156  # ER_NET_PACKETS_OUT_OF_ORDER
    sqlstate = "08S01"
    fatal = True


class PacketTooLarge(ClientProtocolError):
    code = 1153  # ER_NET_PACKET_TOO_LARGE
    sqlstate = "08S01"
    fatal = True


class WrongArguments(ProxyError):
    code = 1210  # ER_WRONG_ARGUMENTS
    sqlstate = "HY000"


#: What a parser of client bytes raises on input that does not follow the protocol.
MALFORMED_INPUT = (ValueError, IndexError, struct.error, UnicodeDecodeError)


@contextlib.contextmanager
def client_input(what: str) -> Iterator[None]:
    """Parse a client's bytes: whatever a malformed packet makes a parser raise becomes
    ClientProtocolError naming ``what`` (one ERR 1835 and one log line, never a
    traceback)."""
    try:
        yield
    except MALFORMED_INPUT as exc:
        raise ClientProtocolError(f"Malformed communication packet ({what})") from exc


class CommandTooLarge(ProxyError):
    """A command the proxy would have to hold (an ML statement, an ML prepared statement's
    parameters) is over ``ml_max_statement_bytes``; it was read and dropped, the session
    goes on. The code and SQLSTATE are the server's for a packet over max_allowed_packet."""

    code = 1153  # ER_NET_PACKET_TOO_LARGE
    sqlstate = "08S01"


class AuthenticationFailed(ProxyError):
    code = 1045  # ER_ACCESS_DENIED_ERROR
    sqlstate = "28000"


class TooManyConnections(ProxyError):
    code = 1040  # ER_CON_COUNT_ERROR
    sqlstate = "08004"


class UnknownThread(ProxyError):
    code = 1094  # ER_NO_SUCH_THREAD
    sqlstate = "HY000"


class MLStatementError(ProxyError):
    """An ML statement cannot run; the code says why (1582 argument count, 1210 bad
    argument, 1226 over the cap, 1105 inference failed, 1235 not supported)."""

    def __init__(self, message: str, code: int = 1105, sqlstate: str = "HY000") -> None:
        super().__init__(message)
        self.code = code
        self.sqlstate = sqlstate


class Interrupted(ProxyError):
    """An ML statement was stopped from outside while the proxy worked on it (its model
    requests, mostly): the codes and texts are the server's for a statement stopped the
    same way. ``ends_session``: the connection closes after it."""

    ends_session = False


class QueryInterrupted(Interrupted):
    code = 1317  # ER_QUERY_INTERRUPTED
    sqlstate = "70100"

    def __init__(self) -> None:
        super().__init__("Query execution was interrupted")


class ConnectionKilled(Interrupted):
    code = 1927  # ER_CONNECTION_KILLED
    sqlstate = "70100"
    ends_session = True

    def __init__(self) -> None:
        super().__init__("Connection was killed")


class ServerShutdown(Interrupted):
    code = 1053  # ER_SERVER_SHUTDOWN
    sqlstate = "08S01"
    ends_session = True

    def __init__(self) -> None:
        super().__init__("Server shutdown in progress")


class BackendError(ProxyError):
    """The backend MySQL server could not do what was asked."""


class BackendUnavailable(BackendError):
    code = 2003  # CR_CONN_HOST_ERROR: what a client reports when it cannot connect
    sqlstate = "HY000"


class BackendLost(BackendError):
    code = 2013  # CR_SERVER_LOST
    sqlstate = "HY000"


class BackendTLSError(BackendError):
    code = 2026  # CR_SSL_CONNECTION_ERROR
    sqlstate = "HY000"


class BackendProtocolError(BackendError):
    code = 2027  # CR_MALFORMED_PACKET
    sqlstate = "HY000"


class UnsupportedAuthMethod(BackendError):
    """The backend asks for an authentication method the proxy cannot answer for the
    client (unix_socket, GSSAPI, PAM's dialog...): the error a server gives a client
    without that method's plugin."""

    code = 1251  # ER_NOT_SUPPORTED_AUTH_MODE
    sqlstate = "08004"


class CapabilitiesChanged(BackendError):
    """The backend's login agreed on another result shape than the client's (a backend
    replaced by one without a capability since the client's greeting)."""

    code = 1105
    sqlstate = "08S01"


class BackendRejected(BackendError):
    """The backend sent an ERR packet; the client gets its code, SQLSTATE and text."""

    def __init__(self, error: ServerError) -> None:
        super().__init__(error.message)
        self.error = error
        self.code = error.code
        self.sqlstate = error.sqlstate


INTERNAL_ERROR_CODE = 1105  # ER_UNKNOWN_ERROR


def error_payload(exc: BaseException, connection_id: int) -> bytes:
    """The ERR packet payload a client receives for ``exc``."""
    if isinstance(exc, ProxyError):
        return make_err(exc.code, exc.sqlstate, exc.client_message())
    return make_err(
        INTERNAL_ERROR_CODE,
        "HY000",
        f"mlproxy internal error (connection {connection_id}); the proxy log has the details",
    )
