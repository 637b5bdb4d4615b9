"""What an ML statement reads from its session before anything else.

The first statement the proxy runs for a client's ML statement reads the session's ML
settings (user variables) and the state its own statements are about to change: ROW_COUNT()
and FOUND_ROWS() still report the client's previous statement here, and DATABASE() says
where unqualified alias names resolve.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from proxy.upstream.backend import BackendConnection
from proxy.upstream.internal import fetch_rows
from rewriter.charsets import UTF8, ClientCharset, client_charset
from rewriter.lexer import SqlSyntax, UnreadableStatement, version_number

SETTINGS_QUERY = (
    "SELECT @mlproxy_on_error, @mlproxy_max_backend_calls, @aurora_ml_inference_timeout, "
    "ROW_COUNT(), FOUND_ROWS(), DATABASE(), @@SESSION.sql_mode, @@SESSION.character_set_client"
)
#: MariaDB's seconds between progress reports (0: none), which ML statements follow too.
MARIADB_SETTINGS = ", @@SESSION.progress_report_time"
#: MariaDB's default progress_report_time, for a server without the variable.
DEFAULT_PROGRESS_SECONDS = 5.0

#: The session's statement timeout, per server: (variable, seconds per unit).
MARIADB_TIMEOUT = ("max_statement_time", 1.0)
MYSQL_TIMEOUT = ("max_execution_time", 0.001)
#: The first MySQL with max_execution_time (5.7.8).
MYSQL_TIMEOUT_SINCE = 50708

# Aurora's session variable is a system variable the backend does not have: the simple
# form `SET [SESSION] aurora_ml_inference_timeout = N` is kept as a user variable.
_SET_TIMEOUT = re.compile(
    rb"^\s*SET\s+(?:SESSION\s+|LOCAL\s+|@@(?:SESSION\.|LOCAL\.)?)?aurora_ml_inference_timeout"
    rb"\s*:?=\s*(\d+|DEFAULT)\s*;?\s*$",
    re.IGNORECASE,
)


class SettingsError(ValueError):
    """A session setting the statement cannot use (answered as 1210)."""


@dataclass
class StatementSettings:
    null_on_error: bool = False
    max_backend_calls: int = 0
    #: Seconds one backend request may take (@aurora_ml_inference_timeout, milliseconds).
    inference_timeout: float | None = None
    database: str | None = None
    #: ROW_COUNT()/FOUND_ROWS() of the client's previous statement, as SQL literals.
    state: dict[str, str] = field(default_factory=dict)
    #: How the server reads this session's statement text (sql_mode, server version).
    syntax: SqlSyntax = field(default_factory=SqlSyntax)
    #: The session's character_set_client; None: one the proxy cannot read.
    charset: ClientCharset | None = UTF8
    #: Seconds between progress reports to a client that asked for them (0: none).
    progress_seconds: float = DEFAULT_PROGRESS_SECONDS
    #: The session's own statement timeout in seconds (None: none), and its variable.
    session_timeout: float | None = None
    session_timeout_variable: str = ""


def timeout_variable(server_version: str) -> tuple[str, float] | None:
    """The server's session statement timeout (variable, seconds per unit), if it has one.

    >>> timeout_variable("10.11.9-MariaDB"), timeout_variable("8.0.36")
    (('max_statement_time', 1.0), ('max_execution_time', 0.001))
    >>> timeout_variable("5.6.51") is None
    True
    """
    if "mariadb" in server_version.lower():
        return MARIADB_TIMEOUT
    version = version_number(server_version)
    return MYSQL_TIMEOUT if version is not None and version >= MYSQL_TIMEOUT_SINCE else None


async def read_settings(backend: BackendConnection, max_backend_calls: int) -> StatementSettings:
    """The session's settings and state; also sets the backend connection's charset."""
    mariadb = "mariadb" in backend.greeting.server_version.lower()
    timeout_of = timeout_variable(backend.greeting.server_version)
    query = SETTINGS_QUERY + (MARIADB_SETTINGS if mariadb else "")
    query += f", @@SESSION.{timeout_of[0]}" if timeout_of else ""
    row, *_ = await fetch_rows(backend, query)
    on_error, max_calls, timeout, row_count, found_rows, database, sql_mode, charset = row[:8]
    settings = StatementSettings(
        max_backend_calls=max_backend_calls,
        database=database.decode("utf-8", "surrogateescape") if database is not None else None,
        state={"row_count": _integer(row_count), "found_rows": _integer(found_rows)},
        syntax=SqlSyntax.from_session(
            (sql_mode or b"").decode("ascii", "replace"), backend.greeting.server_version
        ),
        charset=_charset((charset or b"").decode("ascii", "replace")),
    )
    if settings.charset is not None:
        backend.charset = settings.charset
    if on_error is not None:
        settings.null_on_error = on_error.strip().lower() == b"null"
    if max_calls is not None:
        settings.max_backend_calls = _number(max_calls, "@mlproxy_max_backend_calls")
    if timeout is not None:
        settings.inference_timeout = _number(timeout, "aurora_ml_inference_timeout") / 1000 or None
    extra = iter(row[8:])  # progress_report_time (MariaDB), then the statement timeout
    progress = next(extra, None) if mariadb else None
    if progress is not None:
        settings.progress_seconds = float(int(progress))
    timeout = next(extra, None) if timeout_of is not None else None
    if timeout_of is not None and timeout is not None:
        variable, unit = timeout_of
        settings.session_timeout = float(timeout) * unit or None
        settings.session_timeout_variable = variable
    return settings


def set_timeout_statement(sql: bytes) -> bytes | None:
    """``SET aurora_ml_inference_timeout = N`` as the user-variable statement the backend
    runs instead; None for any other statement."""
    if sql[:3].upper() != b"SET" and not sql[:1].isspace():
        return None
    match = _SET_TIMEOUT.match(sql)
    if match is None:
        return None
    value = match.group(1).upper()
    return b"SET @aurora_ml_inference_timeout = " + (b"NULL" if value == b"DEFAULT" else value)


def _charset(name: str) -> ClientCharset | None:
    try:
        return client_charset(name)
    except UnreadableStatement:
        return None


def _number(value: bytes, name: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise SettingsError(f"{name} must be an integer") from None


def _integer(value: bytes | None) -> str:
    """A session counter as an integer literal (digits and a sign only)."""
    text = (value or b"0").decode("ascii")
    return str(int(text))
