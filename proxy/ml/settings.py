"""What an ML statement reads from its session.

The session's ML settings (user variables), the state the proxy's own statements are
about to change (ROW_COUNT() and FOUND_ROWS() still report the client's previous
statement before them), and how the session reads text (sql_mode, character sets) and
names (DATABASE(): where unqualified alias names resolve).

They are read at a session's first ML statement (``read_settings``) and the session keeps
how it reads text and names (proxy.ml.fastpath.known_settings) until a command may have changed
them; a later statement reads the user variables only when it will ask a model
(``read_variables``: they matter for requests alone, and so do the session's statement
timeout and MariaDB's progress_report_time, read with them) and ROW_COUNT()/FOUND_ROWS()
only when it calls them (``read_state``). So a statement whose answers are cached runs
without a settings query.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from proxy.upstream.backend import BackendConnection
from proxy.upstream.internal import fetch_rows
from rewriter.charsets import UTF8, ClientCharset, client_charset
from rewriter.lexer import SqlSyntax, UnreadableStatement, version_number


def _binary(*expressions: str) -> str:
    """Expressions read as binary strings: the server sends their bytes as they are,
    whatever the session's character_set_results (in utf16 a 0 would be two bytes)."""
    return ", ".join(f"CAST({expression} AS BINARY)" for expression in expressions)


VARIABLES = _binary(
    "@mlproxy_on_error", "@mlproxy_max_backend_calls", "@aurora_ml_inference_timeout"
)
STATE_QUERY = "SELECT " + _binary("ROW_COUNT()", "FOUND_ROWS()")
#: Read with the variables at a session's first ML statement.
SESSION_SETTINGS = ", " + _binary(
    "ROW_COUNT()",
    "FOUND_ROWS()",
    "DATABASE()",
    "@@SESSION.sql_mode",
    "@@SESSION.character_set_client",
    "@@SESSION.character_set_connection",
    "@@SESSION.character_set_results",
)
#: MariaDB's seconds between progress reports (0: none), which ML statements follow too.
MARIADB_SETTINGS = ", " + _binary("@@SESSION.progress_report_time")
#: Result character sets the proxy's own queries cannot be read in (a digit is not its
#: ASCII byte there): ML statements are refused while the session's results use one.
UNREADABLE_RESULTS = frozenset({"ucs2", "utf16", "utf16le", "utf32"})
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


class UnreadableResults(ValueError):
    """A session whose results the proxy's own queries cannot read (answered as 1235)."""


@dataclass
class StatementSettings:
    null_on_error: bool = False
    max_backend_calls: int = 0
    #: The configured cap (ml_max_backend_calls), when @mlproxy_max_backend_calls is unset.
    default_max_backend_calls: int = 0
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
    #: @@sql_mode as the server spells it (``syntax`` holds what the lexer needs of it).
    sql_mode: str = ""
    #: character_set_client and character_set_connection are both utf8mb4, so a plain
    #: string literal's value is its text, whatever characters it holds.
    utf8_session: bool = True
    #: Whether the user variables (null_on_error...) and ``state`` were read for the
    #: statement at hand (``for_next_statement`` keeps the rest for the next one).
    variables_read: bool = True
    state_read: bool = True
    #: The backend's version (which session variables it has).
    server_version: str = ""

    @property
    def mariadb(self) -> bool:
        return "mariadb" in self.server_version.lower()

    @property
    def timeout_of(self) -> tuple[str, float] | None:
        return timeout_variable(self.server_version)

    def for_next_statement(self) -> StatementSettings:
        """These settings for another statement of the session: how it reads text and
        names stays (while nothing changed it), the variables and state are to be read."""
        copy = object.__new__(StatementSettings)  # dataclasses.replace costs 5 us
        copy.__dict__.update(self.__dict__)
        copy.state = {}
        copy.variables_read = copy.state_read = False
        return copy


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
    server = backend.greeting.server_version
    query = f"SELECT {VARIABLES}{_server_variables(server)}{SESSION_SETTINGS}"
    row, *_ = await fetch_rows(backend, query)
    split = len(row) - 7
    variables, (row_count, found_rows), session = row[:split], row[split : split + 2], row[-5:]
    database, sql_mode, charset, connection_charset, results = session
    results_charset = (results or b"").decode("ascii", "replace").lower()
    if results_charset in UNREADABLE_RESULTS:
        raise UnreadableResults(
            f"ML functions through mlproxy need character_set_results to write ASCII as "
            f"ASCII (not {results_charset}): SET character_set_results = utf8mb4"
        )
    mode = (sql_mode or b"").decode("ascii", "replace")
    client = (charset or b"").decode("ascii", "replace")
    settings = StatementSettings(
        max_backend_calls=max_backend_calls,
        default_max_backend_calls=max_backend_calls,
        database=database.decode("utf-8", "surrogateescape") if database is not None else None,
        state=_state(row_count, found_rows),
        syntax=SqlSyntax.from_session(mode, server),
        charset=_charset(client),
        sql_mode=mode,
        utf8_session=client == "utf8mb4" and connection_charset == b"utf8mb4",
        server_version=server,
    )
    if settings.charset is not None:
        backend.charset = settings.charset
    _set_variables(settings, variables)
    return settings


async def read_variables(backend: BackendConnection, settings: StatementSettings) -> None:
    """Read the session's ML user variables into ``settings`` (SettingsError: a bad one)."""
    query = f"SELECT {VARIABLES}{_server_variables(settings.server_version)}"
    row, *_ = await fetch_rows(backend, query)
    _set_variables(settings, row)
    settings.variables_read = True


async def read_state(backend: BackendConnection, settings: StatementSettings) -> None:
    """Read ROW_COUNT() and FOUND_ROWS() into ``settings``: before any statement of the
    proxy's, they still report the client's previous statement."""
    (row_count, found_rows), *_ = await fetch_rows(backend, STATE_QUERY)
    settings.state = _state(row_count, found_rows)
    settings.state_read = True


def _set_variables(settings: StatementSettings, row: tuple[bytes | None, ...]) -> None:
    on_error, max_calls, timeout = row[:3]
    settings.null_on_error = on_error is not None and on_error.strip().lower() == b"null"
    settings.max_backend_calls = settings.default_max_backend_calls
    if max_calls is not None:
        settings.max_backend_calls = _number(max_calls, "@mlproxy_max_backend_calls")
    settings.inference_timeout = None
    if timeout is not None:
        settings.inference_timeout = _number(timeout, "aurora_ml_inference_timeout") / 1000 or None
    extra = iter(row[3:])  # progress_report_time (MariaDB), then the statement timeout
    progress = next(extra, None) if settings.mariadb else None
    settings.progress_seconds = DEFAULT_PROGRESS_SECONDS
    if progress is not None:
        settings.progress_seconds = float(int(progress))
    timeout_of = settings.timeout_of
    timeout = next(extra, None) if timeout_of is not None else None
    settings.session_timeout = None
    if timeout_of is not None and timeout is not None:
        variable, unit = timeout_of
        settings.session_timeout = float(timeout) * unit or None
        settings.session_timeout_variable = variable
    settings.variables_read = True


def _server_variables(server_version: str) -> str:
    """The session variables a server has that the variables query reads too."""
    mariadb = "mariadb" in server_version.lower()
    timeout_of = timeout_variable(server_version)
    return (MARIADB_SETTINGS if mariadb else "") + (
        ", " + _binary(f"@@SESSION.{timeout_of[0]}") if timeout_of else ""
    )


def _state(row_count: bytes | None, found_rows: bytes | None) -> dict[str, str]:
    return {"row_count": _integer(row_count), "found_rows": _integer(found_rows)}


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
