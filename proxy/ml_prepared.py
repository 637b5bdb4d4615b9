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

from mysql_mimic.charset import Collation

from proxy.binary_params import WrongParameter, parse_execute
from proxy.errors import WrongArguments, client_input

DEFAULT_CHARSET = "utf8mb4"


@dataclass
class PreparedML:
    """One prepared statement with ML calls: its text and its parameter state."""

    sql: str
    param_count: int
    types: list[tuple[int, bool]] = field(default_factory=list)
    long_data: dict[int, bytes] = field(default_factory=dict)

    def bind(self, payload: bytes, charset: str) -> list[str]:
        """The literals of a COM_STMT_EXECUTE's parameters (long data is then spent)."""
        with client_input("COM_STMT_EXECUTE parameters"):
            try:
                request = parse_execute(
                    payload, self.param_count, self.types, self.long_data, charset
                )
            except WrongParameter as exc:  # (a ValueError too: caught before client_input)
                message = f"Incorrect arguments to mysqld_stmt_execute: {exc}"
                raise WrongArguments(message) from exc
        self.types = request.types
        self.long_data = {}
        return request.literals

    def add_long_data(self, payload: bytes) -> None:
        """COM_STMT_SEND_LONG_DATA: stmt id (4), param id (2), data."""
        param = int.from_bytes(payload[5:7], "little")
        self.long_data[param] = self.long_data.get(param, b"") + payload[7:]


def statement_id(payload: bytes) -> int:
    return int.from_bytes(payload[1:5], "little")


def charset_name(collation: int) -> str:
    """The character set of a collation id, for charset introducers."""
    try:
        return str(Collation(collation).charset.name)
    except ValueError:
        return DEFAULT_CHARSET
