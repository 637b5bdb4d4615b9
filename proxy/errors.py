"""The proxy's exceptions, its error codes (``ErrorCode``, each code's SQLSTATE in one
table), and the one place that turns exceptions into MySQL ERR packets (``error_payload``,
used at the session boundary).

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
from enum import IntEnum

from proxy.wire.packets import ServerError, make_err


class ErrorCode(IntEnum):
    """Every MySQL error code the proxy answers with itself: the server's (ER_*) for
    what a server would refuse the same way, a client library's (CR_*) for what a client
    reports when it loses its server. ``SQLSTATE`` gives each its state."""

    CON_COUNT_ERROR = 1040
    OUT_OF_RESOURCES = 1041
    ACCESS_DENIED_ERROR = 1045
    UNKNOWN_COM_ERROR = 1047
    SERVER_SHUTDOWN = 1053
    PARSE_ERROR = 1064
    NO_SUCH_THREAD = 1094
    UNKNOWN_ERROR = 1105
    NET_PACKET_TOO_LARGE = 1153
    NET_PACKETS_OUT_OF_ORDER = 1156
    WRONG_ARGUMENTS = 1210
    USER_LIMIT_REACHED = 1226
    NOT_SUPPORTED_YET = 1235
    NOT_SUPPORTED_AUTH_MODE = 1251
    QUERY_INTERRUPTED = 1317
    DATA_TOO_LONG = 1406
    WRONG_PARAMCOUNT_TO_NATIVE_FCT = 1582
    DATA_OUT_OF_RANGE = 1690
    MALFORMED_PACKET = 1835
    CONNECTION_KILLED = 1927
    STATEMENT_TIMEOUT = 1969  # MariaDB's max_statement_time
    QUERY_TIMEOUT = 3024  # MySQL's max_execution_time
    SECURE_TRANSPORT_REQUIRED = 3159
    CR_CONN_HOST_ERROR = 2003
    CR_SERVER_LOST = 2013
    CR_SSL_CONNECTION_ERROR = 2026
    CR_MALFORMED_PACKET = 2027


#: Each code's SQLSTATE, as the server sends it (codes not listed: HY000).
SQLSTATE: dict[int, str] = {
    ErrorCode.CON_COUNT_ERROR: "08004",
    ErrorCode.ACCESS_DENIED_ERROR: "28000",
    ErrorCode.UNKNOWN_COM_ERROR: "08S01",
    ErrorCode.SERVER_SHUTDOWN: "08S01",
    ErrorCode.PARSE_ERROR: "42000",
    ErrorCode.NET_PACKET_TOO_LARGE: "08S01",
    ErrorCode.NET_PACKETS_OUT_OF_ORDER: "08S01",
    ErrorCode.USER_LIMIT_REACHED: "42000",
    ErrorCode.NOT_SUPPORTED_YET: "42000",
    ErrorCode.NOT_SUPPORTED_AUTH_MODE: "08004",
    ErrorCode.QUERY_INTERRUPTED: "70100",
    ErrorCode.DATA_TOO_LONG: "22001",
    ErrorCode.WRONG_PARAMCOUNT_TO_NATIVE_FCT: "42000",
    ErrorCode.DATA_OUT_OF_RANGE: "22003",
    ErrorCode.CONNECTION_KILLED: "70100",
    ErrorCode.STATEMENT_TIMEOUT: "70100",
}


def sqlstate_of(code: int) -> str:
    """The SQLSTATE of ``code``.

    >>> sqlstate_of(ErrorCode.QUERY_INTERRUPTED), sqlstate_of(1105)
    ('70100', 'HY000')
    """
    return SQLSTATE.get(code, "HY000")


class ProxyError(Exception):
    """Root of every error the proxy raises on purpose. A class sets its ``code``; its
    ``sqlstate`` is the code's (``SQLSTATE``) unless the class says otherwise."""

    code: int = ErrorCode.UNKNOWN_ERROR
    sqlstate = "HY000"  # the code's

    def __init_subclass__(cls) -> None:
        super().__init_subclass__()
        if "sqlstate" not in cls.__dict__:
            cls.sqlstate = sqlstate_of(cls.code)

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

    code: int = ErrorCode.MALFORMED_PACKET
    #: Whether the session must end after the ERR (the stream cannot be trusted).
    fatal = False


class PacketsOutOfOrder(ClientProtocolError):
    """A command whose first packet's sequence id is not 0: the server answers this and
    closes the connection, and the proxy does the same."""

    code: int = ErrorCode.NET_PACKETS_OUT_OF_ORDER
    fatal = True


class PacketTooLarge(ClientProtocolError):
    code: int = ErrorCode.NET_PACKET_TOO_LARGE
    fatal = True


class WrongArguments(ProxyError):
    code: int = ErrorCode.WRONG_ARGUMENTS


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

    code: int = ErrorCode.NET_PACKET_TOO_LARGE


class AuthenticationFailed(ProxyError):
    code: int = ErrorCode.ACCESS_DENIED_ERROR


class TooManyConnections(ProxyError):
    code: int = ErrorCode.CON_COUNT_ERROR


class UnknownThread(ProxyError):
    code: int = ErrorCode.NO_SUCH_THREAD


class MLStatementError(ProxyError):
    """An ML statement cannot run; the code says why (1582 argument count, 1210 bad
    argument, 1226 over the cap, 1105 inference failed, 1235 not supported)."""

    def __init__(
        self, message: str, code: int = ErrorCode.UNKNOWN_ERROR, sqlstate: str | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.sqlstate = sqlstate or sqlstate_of(code)


class Interrupted(ProxyError):
    """An ML statement was stopped from outside while the proxy worked on it (its model
    requests, mostly): the codes and texts are the server's for a statement stopped the
    same way. ``ends_session``: the connection closes after it."""

    ends_session = False


class QueryInterrupted(Interrupted):
    code: int = ErrorCode.QUERY_INTERRUPTED

    def __init__(self) -> None:
        super().__init__("Query execution was interrupted")


class ConnectionKilled(Interrupted):
    code: int = ErrorCode.CONNECTION_KILLED
    ends_session = True

    def __init__(self) -> None:
        super().__init__("Connection was killed")


class ServerShutdown(Interrupted):
    code: int = ErrorCode.SERVER_SHUTDOWN
    ends_session = True

    def __init__(self) -> None:
        super().__init__("Server shutdown in progress")


class BackendError(ProxyError):
    """The backend MySQL server could not do what was asked."""


class BackendUnavailable(BackendError):
    code: int = ErrorCode.CR_CONN_HOST_ERROR  # what a client reports when it cannot connect


class BackendLost(BackendError):
    code: int = ErrorCode.CR_SERVER_LOST


class BackendTLSError(BackendError):
    code: int = ErrorCode.CR_SSL_CONNECTION_ERROR


class BackendProtocolError(BackendError):
    code: int = ErrorCode.CR_MALFORMED_PACKET


class UnsupportedAuthMethod(BackendError):
    """The backend asks for an authentication method the proxy cannot answer for the
    client (unix_socket, GSSAPI, PAM's dialog...): the error a server gives a client
    without that method's plugin."""

    code: int = ErrorCode.NOT_SUPPORTED_AUTH_MODE


class CapabilitiesChanged(BackendError):
    """The backend's login agreed on another result shape than the client's (a backend
    replaced by one without a capability since the client's greeting)."""

    code: int = ErrorCode.UNKNOWN_ERROR
    sqlstate = "08S01"


class BackendRejected(BackendError):
    """The backend sent an ERR packet; the client gets its code, SQLSTATE and text."""

    def __init__(self, error: ServerError) -> None:
        super().__init__(error.message)
        self.error = error
        self.code = error.code
        self.sqlstate = error.sqlstate


INTERNAL_ERROR_CODE = ErrorCode.UNKNOWN_ERROR


def error_payload(exc: BaseException, connection_id: int) -> bytes:
    """The ERR packet payload a client receives for ``exc``."""
    if isinstance(exc, ProxyError):
        return make_err(exc.code, exc.sqlstate, exc.client_message())
    return make_err(
        INTERNAL_ERROR_CODE,
        "HY000",
        f"mlproxy internal error (connection {connection_id}); the proxy log has the details",
    )
