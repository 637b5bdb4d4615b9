"""The shape of a result set on one connection, as its capabilities make it.

Two capabilities change which packets a result has (proxy.wire.capabilities):

- CLIENT_DEPRECATE_EOF: no EOF after the column definitions (nor after a PREPARE's
  parameter and column definitions), and the rows end with an OK packet whose header is
  0xFE (an "OK as EOF": affected rows, insert id, status flags, warnings, maybe session
  state) instead of a 5-byte EOF packet. Either way a packet ends the rows when it
  starts with 0xFE and is shorter than a row starting with 0xFE can be: 9 bytes for an
  EOF, 0xFFFFFF for an OK (a row starting with 0xFE begins with a value of 16 MiB or
  more, so its first packet is a full one).
- MARIADB_CLIENT_CACHE_METADATA: the column count is followed by one byte, 1 when the
  column definitions follow, 0 when the client is to reuse those it has (only a prepared
  statement's execution leaves them out; the EOF after them still comes without
  CLIENT_DEPRECATE_EOF).

The relay's scanner (proxy.wire.scanner) reads the same rules inline, for speed; the proxy's
own readers (proxy.upstream.internal, SHOW STATUS, EXPLAIN, SHOW CREATE FUNCTION) use this module.
"""

from __future__ import annotations

from dataclasses import dataclass

from proxy.wire.capabilities import CLIENT_DEPRECATE_EOF, MARIADB_CLIENT_CACHE_METADATA
from proxy.wire.packets import (
    EOF_HEADER,
    ERR_HEADER,
    MAX_PAYLOAD,
    eof_status,
    ok_status,
    read_lenenc_int,
)


@dataclass(frozen=True)
class ResultShape:
    """How results look on a connection (see the module docstring)."""

    deprecate_eof: bool = False
    cache_metadata: bool = False

    @classmethod
    def of(cls, capabilities: int) -> ResultShape:
        return cls(
            bool(capabilities & CLIENT_DEPRECATE_EOF),
            bool(capabilities & MARIADB_CLIENT_CACHE_METADATA),
        )

    @property
    def end_limit(self) -> int:
        """A 0xFE packet shorter than this ends the rows."""
        return MAX_PAYLOAD if self.deprecate_eof else 9

    def is_end(self, payload: bytes) -> bool:
        """Whether a packet after the column definitions ends the rows (EOF or OK-as-EOF).

        >>> ResultShape().is_end(b"\\xfe\\x00\\x00\\x02\\x00")
        True
        >>> ok_as_eof = b"\\xfe\\x00\\x00\\x02\\x00\\x00\\x00" + b"\\x00" * 3  # 10 bytes
        >>> ResultShape().is_end(ok_as_eof), ResultShape(deprecate_eof=True).is_end(ok_as_eof)
        (False, True)
        """
        return bool(payload) and payload[0] == EOF_HEADER and len(payload) < self.end_limit

    def is_last(self, payload: bytes) -> bool:
        """Whether a packet after the column definitions is the result's last (its end,
        or an ERR in place of it)."""
        return bool(payload) and (payload[0] == ERR_HEADER or self.is_end(payload))

    def end_status(self, payload: bytes) -> int:
        """The status flags of the packet that ends the rows."""
        return ok_status(payload) if self.deprecate_eof else eof_status(payload)

    def definitions_follow(self, column_count: bytes) -> bool:
        """Whether the column definitions follow a column-count packet.

        >>> ResultShape(cache_metadata=True).definitions_follow(b"\\x02\\x00")
        False
        >>> ResultShape().definitions_follow(b"\\x02")
        True
        """
        if not self.cache_metadata:
            return True
        _, pos = read_lenenc_int(column_count, 0)
        return pos >= len(column_count) or column_count[pos] != 0

    def head_size(self, column_count: bytes) -> int:
        """How many packets a result's head has: the column count, the column
        definitions (if they follow), and the EOF after them (without DEPRECATE_EOF)."""
        count, _ = read_lenenc_int(column_count, 0)
        definitions = count if self.definitions_follow(column_count) else 0
        return 1 + definitions + (0 if self.deprecate_eof else 1)

    def definitions_of_prepare(self, params: int, columns: int) -> int:
        """How many packets follow COM_STMT_PREPARE_OK: each group of definitions, and
        without DEPRECATE_EOF an EOF after each non-empty group."""
        eofs = 0 if self.deprecate_eof else (params > 0) + (columns > 0)
        return params + columns + eofs


@dataclass(frozen=True)
class TextResult:
    """One result set's payloads, split: head (column count, definitions, their EOF),
    rows, and the packet that ends it (EOF, OK-as-EOF or ERR)."""

    head: list[bytes]
    rows: list[bytes]
    end: bytes

    @property
    def column_count(self) -> int:
        return read_lenenc_int(self.head[0], 0)[0]

    def payloads(self) -> list[bytes]:
        return [*self.head, *self.rows, self.end]


def split_result(response: list[bytes], shape: ResultShape) -> TextResult | None:
    """A single result set's response (proxy.upstream.internal.read_response) split into its
    parts; None for an OK or ERR response, or one too short to be a result."""
    if not response or response[0][:1] in (b"\x00", b"\xff"):
        return None
    size = shape.head_size(response[0])
    if len(response) < size + 1:
        return None
    return TextResult(response[:size], response[size:-1], response[-1])
