"""What the proxy knows of a session between its ML statements, and when it forgets.

An ML statement needs to know how the server reads the session's text and names (the
sql_mode, character sets and current database: proxy.ml.settings), which a query reads.
Only the client's own commands can change them, and the proxy sees every one: so it
reads them at a session's first ML statement and keeps them until a command may have
changed them. What may, it learns from rewriter.session_effects (a statement's first
word; a prepared statement's, at each of its executions), and COM_INIT_DB,
COM_CHANGE_USER and COM_RESET_CONNECTION, and a command too large to look at whole,
always count. Checking costs a session that never ran an ML statement nothing: there is
nothing to forget.
"""

from __future__ import annotations

from proxy.ml.settings import StatementSettings
from rewriter.session_effects import may_change_session


class KnownSettings:
    """One session's settings as last read, while nothing may have changed them."""

    def __init__(self) -> None:
        self._settings: StatementSettings | None = None
        self._epoch = 0
        #: Prepared statements whose executions may change the settings.
        self._changing: set[int] = set()

    def for_statement(self) -> StatementSettings | None:
        """The settings for the next ML statement (its variables and state still to be
        read); None when they must be read again."""
        return None if self._settings is None else self._settings.for_next_statement()

    def kept(self) -> StatementSettings | None:
        """The settings kept, not a copy: for reading only (for_statement gives a
        statement its own)."""
        return self._settings

    def keep(self, settings: StatementSettings) -> None:
        self._settings = settings.for_next_statement()
        self._epoch += 1

    @property
    def epoch(self) -> int | None:
        """Names the settings kept (a new number each time they are read); None when
        none are: what a memo of the session's statements is valid under."""
        return None if self._settings is None else self._epoch

    def forget(self) -> None:
        self._settings = None

    def reset(self) -> None:
        """A new session state (COM_CHANGE_USER, COM_RESET_CONNECTION): nothing known, no
        prepared statement left."""
        self._settings = None
        self._changing.clear()

    def query(self, sql: bytes) -> None:
        """A COM_QUERY the client sent."""
        if self._settings is not None and may_change_session(sql):
            self._settings = None

    def prepared(self, statement_id: int, sql: bytes) -> None:
        """A statement the backend prepared under ``statement_id``."""
        if may_change_session(sql):
            self._changing.add(statement_id)

    @property
    def watches_executions(self) -> bool:
        """Whether some prepared statement's executions may change the settings."""
        return bool(self._changing)

    def execute(self, statement_id: int) -> None:
        if statement_id in self._changing:
            self._settings = None

    def closed(self, statement_id: int) -> None:
        self._changing.discard(statement_id)
