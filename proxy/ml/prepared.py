"""Server-side prepared statements that call ML functions, for one session.

PREPARE: the backend prepares the statement's metadata twin (each call replaced by a NULL
of its result type that keeps its arguments' placeholders), so the client gets the
parameter count and result columns, under the twin's statement id.
EXECUTE: the parameters are decoded and written into the statement as literals, the ML
path prepares the rewrite as for a text statement, and the rewrite runs as an internal
prepared statement, so the client receives binary-protocol rows as it expects.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from proxy.errors import CommandTooLarge, WrongArguments, client_input
from proxy.ml.fastpath.planning import Reading
from proxy.wire.binary_params import WrongParameter, parse_execute
from rewriter.charsets import ClientCharset
from rewriter.lexer import SqlSyntax

DEFAULT_CHARSET = "utf8mb4"


@dataclass
class PreparedML:
    """One prepared statement with ML calls: its text and its parameter state.

    Long data (COM_STMT_SEND_LONG_DATA) is held until the execution that binds it, so it
    is capped: past ``long_data_budget`` bytes in all (ml_max_statement_bytes, the most
    the bound statement may be anyway) what was held is dropped, the rest is not kept,
    and the next execution is refused with 1153 instead of running with a value cut
    short. The pieces are joined once, at the execution (appending each to the value so
    far copied all of it each time: quadratic).
    """

    sql: str
    param_count: int
    long_data_budget: int
    #: How the session read the statement when it was prepared.
    syntax: SqlSyntax
    charset: ClientCharset
    #: How its text was read (its shape, with its parameters): each execution is planned
    #: from it without reading text (None: a text with too many literals for a shape).
    reading: Reading | None = None
    types: list[tuple[int, bool]] = field(default_factory=list)
    _pieces: dict[int, list[bytes]] = field(default_factory=dict)
    _held: int = 0
    _refused: bool = False

    def bind(self, payload: bytes, charset: str, attributes: bool = False) -> list[str]:
        """The literals of a COM_STMT_EXECUTE's parameters (long data is then spent);
        ``attributes``: the connection has query attributes (proxy.wire.binary_params)."""
        long_data = {param: b"".join(pieces) for param, pieces in self._pieces.items()}
        refused = self._refused
        self.reset_long_data()
        if refused:
            raise CommandTooLarge(
                "The long data of an ML prepared statement may have at most"
                f" {self.long_data_budget} bytes (ml_max_statement_bytes)"
            )
        with client_input("COM_STMT_EXECUTE parameters"):
            try:
                request = parse_execute(
                    payload, self.param_count, self.types, long_data, charset, attributes
                )
            except WrongParameter as exc:  # (a ValueError too: caught before client_input)
                message = f"Incorrect arguments to mysqld_stmt_execute: {exc}"
                raise WrongArguments(message) from exc
        self.types = request.types
        return request.literals

    def add_long_data(self, payload: bytes) -> None:
        """COM_STMT_SEND_LONG_DATA: stmt id (4), param id (2), data."""
        if self._refused:
            return
        data = payload[7:]
        if self._held + len(data) > self.long_data_budget:
            self.refuse_long_data()
            return
        param = int.from_bytes(payload[5:7], "little")
        self._pieces.setdefault(param, []).append(data)
        self._held += len(data)

    def refuse_long_data(self) -> None:
        """Long data over the budget came: drop what is held; the next execution fails."""
        self._pieces = {}
        self._held = 0
        self._refused = True

    def reset_long_data(self) -> None:
        """COM_STMT_RESET, or an execution: no long data held, none refused."""
        self._pieces = {}
        self._held = 0
        self._refused = False


def statement_id(payload: bytes) -> int:
    return int.from_bytes(payload[1:5], "little")
