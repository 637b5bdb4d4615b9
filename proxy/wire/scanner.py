"""Find where a backend response ends, reading packet headers, never decoding rows.

The proxy forwards the backend's bytes to the client as they arrive; this sans-IO
scanner follows along, chunk by chunk, and says when the response to the current
command is complete. It reads the few payload bytes that decide the protocol state:
the first byte of each packet (OK, ERR, EOF, LOCAL INFILE, column count), the column
count, the status flags of OK/EOF packets (SERVER_MORE_RESULTS_EXISTS for multi-results
and CALL; SERVER_STATUS_CURSOR_EXISTS only where it means that rows wait for
COM_STMT_FETCH, see Shape.CURSOR), and COM_STMT_PREPARE_OK's counts.
Packets of 16 MiB and more are followed as continuations without inspection.

Response shapes (page_protocol_com_query_response, page_protocol_com_stmt_prepare_response,
page_protocol_com_field_list_response) follow the connection's capabilities
(proxy.wire.result_shape): with CLIENT_DEPRECATE_EOF no EOF follows definitions and rows end
with an OK packet headed 0xFE; with MARIADB_CLIENT_CACHE_METADATA a byte after the column
count says whether the definitions follow.
"""

from __future__ import annotations

import enum

from mysql_mimic.types import ServerStatus

from proxy.wire.capabilities import CLIENT_DEPRECATE_EOF, MARIADB_CLIENT_CACHE_METADATA
from proxy.wire.packets import (
    EOF_HEADER,
    ERR_HEADER,
    LOCAL_INFILE_HEADER,
    MAX_PAYLOAD,
    OK_HEADER,
    eof_status,
    ok_status,
    read_lenenc_int,
)

# Plain ints: IntFlag's __and__ costs a microsecond per response on the hot path.
_MORE_RESULTS = int(ServerStatus.SERVER_MORE_RESULTS_EXISTS)
_CURSOR_EXISTS = int(ServerStatus.SERVER_STATUS_CURSOR_EXISTS)

# Enough payload to decode any OK packet's status: 1 + 9 + 9 + 2 bytes.
_OK_PREFIX = 21


class Shape(enum.Enum):
    """What kind of response a command gets."""

    RESULT = "result"  # COM_QUERY, COM_STMT_EXECUTE, COM_PROCESS_INFO
    #: COM_STMT_EXECUTE that asked for a cursor: its first result's rows wait for
    #: COM_STMT_FETCH when the server opened one (SERVER_STATUS_CURSOR_EXISTS).
    CURSOR = "cursor"
    PREPARE = "prepare"  # COM_STMT_PREPARE
    FIELDS = "fields"  # COM_FIELD_LIST
    ROWS = "rows"  # COM_STMT_FETCH
    SINGLE = "single"  # one packet: COM_PING, COM_INIT_DB, COM_STATISTICS, ...


# The scanner's states: plain ints, since an enum member costs an attribute lookup on
# every packet of the hot loop.
_FIRST = 1  # first packet of a (possibly further) result
_DEFS = 2  # column or parameter definitions to skip
_DEFS_EOF = 3  # the EOF after definitions
_ROWS = 4  # rows until EOF or ERR
_PREPARE_OK = 5
_FIELDS = 6
_SINGLE = 7
_LOCAL_INFILE = 8  # paused: the client must send a file
_DONE = 9

_STATE_NAMES = {
    _FIRST: "FIRST",
    _DEFS: "DEFS",
    _DEFS_EOF: "DEFS_EOF",
    _ROWS: "ROWS",
    _PREPARE_OK: "PREPARE_OK",
    _FIELDS: "FIELDS",
    _SINGLE: "SINGLE",
    _LOCAL_INFILE: "LOCAL_INFILE",
    _DONE: "DONE",
}

_INITIAL_STATE = {
    Shape.RESULT: _FIRST,
    Shape.CURSOR: _FIRST,
    Shape.PREPARE: _PREPARE_OK,
    Shape.FIELDS: _FIELDS,
    Shape.ROWS: _ROWS,
    Shape.SINGLE: _SINGLE,
}

# By state: how many payload bytes of a packet its decision needs (the packet's whole
# payload when it is shorter): the first byte of a row (ERR or EOF?), an EOF's status,
# COM_STMT_PREPARE_OK's counts, an OK packet's status.
_PREFIX_NEEDED = (0, _OK_PREFIX, 0, 5, 5, 9, 5, _OK_PREFIX, _OK_PREFIX, _OK_PREFIX)
#: The same with CLIENT_DEPRECATE_EOF: rows and field lists end with an OK packet.
_PREFIX_NEEDED_OK_END = (0, _OK_PREFIX, 0, 5, _OK_PREFIX, 9, _OK_PREFIX, *(_OK_PREFIX,) * 3)

#: A 0xFE packet shorter than this ends rows: an EOF, or with DEPRECATE_EOF an OK.
_EOF_LIMIT = 9
_OK_END_LIMIT = MAX_PAYLOAD


class ResponseScanner:
    """Follows one response through the byte stream; see the module docstring."""

    # One scanner per relayed command: slots make building and reading it cheaper.
    __slots__ = (
        "_cache_metadata",
        "_carry",
        "_continued",
        "_defs_left",
        "_end_after_skip",
        "_end_limit",
        "_ok_end",
        "_prefix_needed",
        "_shape",
        "_skip",
        "_state",
        "_then_columns",
        "_whole",
        "error",
        "statement_id",
        "status",
    )

    def __init__(self, shape: Shape, capabilities: int = 0) -> None:
        """``capabilities``: the connection's (those of proxy.wire.result_shape count)."""
        self.status = 0
        self._ok_end = bool(capabilities & CLIENT_DEPRECATE_EOF)
        self._cache_metadata = bool(capabilities & MARIADB_CLIENT_CACHE_METADATA)
        self._end_limit = _OK_END_LIMIT if self._ok_end else _EOF_LIMIT
        self._prefix_needed = _PREFIX_NEEDED_OK_END if self._ok_end else _PREFIX_NEEDED
        self._state = _INITIAL_STATE[shape]
        self._shape = shape
        self._defs_left = 0
        self._then_columns = 0  # COM_STMT_PREPARE: column definitions after the parameters
        self._skip = 0  # payload bytes of the current packet still to pass
        self._continued = False  # the current packet continues a 16 MiB one
        self._end_after_skip = False
        self._carry = b""  # a header or decision prefix cut by a chunk boundary
        self.error: bool = False  # the response ended with an ERR packet
        self.statement_id = 0  # COM_STMT_PREPARE: the id the backend gave the statement
        self._whole = shape is Shape.RESULT  # the first chunk may hold it all: whole_result

    @property
    def done(self) -> bool:
        return self._state == _DONE

    @property
    def wants_local_file(self) -> bool:
        return self._state == _LOCAL_INFILE

    def resume_after_local_file(self) -> None:
        """The client has sent its file; the server now answers with OK or ERR."""
        self._state = _FIRST
        self._end_after_skip = False

    def feed(self, data: bytes | bytearray | memoryview) -> int:
        """Consume a chunk; return where in it the response (or phase) ends, or -1."""
        if self._whole:
            self._whole = False
            whole = whole_result(data, self._ok_end, self._cache_metadata)
            if whole is not None:
                end, self.status, self.error = whole
                self._state = _DONE
                return end
        carried = len(self._carry)
        buf: bytes | bytearray | memoryview = self._carry + bytes(data) if carried else data
        self._carry = b""
        end = self._scan(buf)
        return end if end < 0 else end - carried

    def _scan(self, buf: bytes | bytearray | memoryview) -> int:
        """Pass what is left of a packet begun in an earlier chunk, then read each header,
        let ``_on_packet`` decide on the packet's first bytes, and hop over its payload.

        Longer than house style on purpose: it runs for every packet of every response
        (a point select's is five), and helper calls per packet cost more than the
        scanning itself (6.6 us a point select with them, 2.1 us without)."""
        pos, size = 0, len(buf)
        if self._skip:
            if self._skip > size:
                self._skip -= size
                return -1
            pos, self._skip = self._skip, 0
            if self._end_after_skip and not self._continued:
                return pos
        while pos < size:
            if self._state == _ROWS and not self._continued:
                pos = self._skip_rows(buf, pos, size)
                if pos >= size:
                    return -1
            if size - pos < 4:
                self._carry = bytes(buf[pos:])
                return -1
            length = buf[pos] | buf[pos + 1] << 8 | buf[pos + 2] << 16
            if self._continued:
                pass
            elif self._state == _DEFS:  # a definition decides nothing: only count it
                self._defs_left -= 1
                if not self._defs_left:
                    self._definitions_done()
            elif size - pos - 4 < min(length, self._prefix_needed[self._state]):
                self._carry = bytes(buf[pos:])
                return -1
            else:
                self._on_packet(buf, pos + 4, length)
            self._continued = length == MAX_PAYLOAD
            pos += 4 + length
            if pos > size:
                self._skip = pos - size
                return -1
            if self._end_after_skip and not self._continued:
                return pos
        return -1

    def _skip_rows(self, buf: bytes | bytearray | memoryview, pos: int, size: int) -> int:
        """The hot loop of a large result: hop from row header to row header, leaving to
        the general path any packet that may end the result (0xFF, or 0xFE shorter than
        the end limit), a 16 MiB packet, and a header or first byte cut by the chunk's end."""
        end_limit = self._end_limit
        while pos + 4 < size:
            length = buf[pos] | buf[pos + 1] << 8 | buf[pos + 2] << 16
            first = buf[pos + 4]
            if first == ERR_HEADER or (first == EOF_HEADER and length < end_limit):
                return pos
            if not length or length == MAX_PAYLOAD:
                return pos
            pos += 4 + length
            if pos > size:
                self._skip = pos - size
                return size
        return pos

    def _finish(self, state: int) -> None:
        self._state = state
        self._end_after_skip = True

    def _on_packet(self, buf: bytes | bytearray | memoryview, at: int, length: int) -> None:
        state = self._state
        if state in (_ROWS, _FIELDS):
            self._on_row(buf, at, length)
        elif state == _DEFS_EOF:
            self._on_defs_eof(buf, at)
        elif state == _FIRST:
            self._on_first(buf, at, length)
        elif state == _PREPARE_OK:
            self._on_prepare_ok(buf, at, length)
        elif state == _SINGLE:
            self._finish(_DONE)
        else:  # DONE or LOCAL_INFILE (DEFS is _scan's): more than the protocol allows
            raise ValueError(f"unexpected packet from the backend in state {_STATE_NAMES[state]}")

    def _on_row(self, buf: bytes | bytearray | memoryview, at: int, length: int) -> None:
        first = buf[at] if length else 0
        if first == ERR_HEADER:
            self.error = True
            self._finish(_DONE)
        elif first == EOF_HEADER and length < self._end_limit:
            self.status = ok_status(buf, at) if self._ok_end else eof_status(buf, at)
            self._end_of_result()

    def _end_of_result(self) -> None:
        if self.status & _MORE_RESULTS and self._shape is not Shape.FIELDS:
            self._state = _FIRST
            self._end_after_skip = False
        else:
            self._finish(_DONE)

    def _definitions_done(self) -> None:
        """The last definition of a group has passed (or none followed the column count)."""
        if not self._ok_end:
            self._state = _DEFS_EOF
        elif self._then_columns:  # COM_STMT_PREPARE: the columns after the parameters
            self._defs_left, self._then_columns = self._then_columns, 0
            self._state = _DEFS
        elif self._shape is Shape.PREPARE:
            self._finish(_DONE)
        else:
            # A cursor's result ends here with an OK (SERVER_STATUS_CURSOR_EXISTS) in
            # place of rows: the rows' rule ends it as any result.
            self._state = _ROWS

    def _on_defs_eof(self, buf: bytes | bytearray | memoryview, at: int) -> None:
        self.status = eof_status(buf, at)
        if self._then_columns:
            self._defs_left, self._then_columns = self._then_columns, 0
            self._state = _DEFS
        elif self._shape is Shape.PREPARE or (
            # Only here does the flag mean "no rows now": a stored program holding a
            # cursor sets it on every result it sends, text results included, and a
            # CALL's results (which a cursor never holds) carry SERVER_MORE_RESULTS_EXISTS.
            self._shape is Shape.CURSOR
            and self.status & (_CURSOR_EXISTS | _MORE_RESULTS) == _CURSOR_EXISTS
        ):
            self._finish(_DONE)
        else:
            self._state = _ROWS

    def _on_first(self, buf: bytes | bytearray | memoryview, at: int, length: int) -> None:
        first = buf[at] if length else 0
        if first == ERR_HEADER:
            self.error = True
            self._finish(_DONE)
        elif first == OK_HEADER:
            self.status = ok_status(buf[at : at + min(length, _OK_PREFIX)])
            self._end_of_result()
        elif first == LOCAL_INFILE_HEADER:
            self._finish(_LOCAL_INFILE)
        else:
            count, pos = read_lenenc_int(buf, at)
            if self._cache_metadata and pos < at + length and not buf[pos]:
                self._definitions_done()  # the client has them: the byte after the count is 0
            else:
                self._defs_left = count
                self._state = _DEFS

    def _on_prepare_ok(self, buf: bytes | bytearray | memoryview, at: int, length: int) -> None:
        if length == 0 or buf[at] == ERR_HEADER:
            self.error = True
            self._finish(_DONE)
            return
        self.statement_id = int.from_bytes(bytes(buf[at + 1 : at + 5]), "little")
        columns = int(buf[at + 5]) | int(buf[at + 6]) << 8
        params = int(buf[at + 7]) | int(buf[at + 8]) << 8
        if params:
            self._defs_left, self._then_columns = params, columns
            self._state = _DEFS
        elif columns:
            self._defs_left = columns
            self._state = _DEFS
        else:
            self._finish(_DONE)


def whole_result(
    buf: bytes | bytearray | memoryview, ok_end: bool = False, cache_metadata: bool = False
) -> tuple[int, int, bool] | None:
    """The usual response in one pass: an OK, an ERR, or one result set (text or binary
    rows), whole in the first chunk. Returns (end, status flags, whether it is an ERR),
    or None for anything else: more results, a cursor, LOCAL INFILE, a response cut by
    the chunk's end, packets of 16 MiB; the state machine then scans the chunk as usual.
    ``ok_end``: CLIENT_DEPRECATE_EOF; ``cache_metadata``: MARIADB_CLIENT_CACHE_METADATA.

    Why a second reading of the same protocol: a point select's five packets cost the
    state machine 2.1 us, this loop a third of that (docs/performance.md, Benchmarks). It decides
    exactly as ``_scan`` does: an EOF is 0xFE in a packet shorter than 9 bytes (column
    definitions start with the catalog's length, rows can start with 0xFE only when
    longer; with ``ok_end``, an OK headed 0xFE shorter than 0xFFFFFF), an ERR 0xFF.

    >>> ok = bytes([7, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0])
    >>> whole_result(ok)
    (11, 2, False)
    >>> whole_result(ok[:6]) is None
    True
    """
    size = len(buf)
    if size < 5:
        return None
    length = buf[0] | buf[1] << 8 | buf[2] << 16
    first = buf[4]
    end = 4 + length
    if end > size or length == MAX_PAYLOAD:
        return None
    if first == ERR_HEADER:
        return end, 0, True
    if first == OK_HEADER:
        status = ok_status(buf[4 : 4 + min(length, _OK_PREFIX)])
        return None if status & _MORE_RESULTS else (end, status, False)
    if first >= LOCAL_INFILE_HEADER:  # LOCAL INFILE, or a column count of 251 or more
        return None
    definitions = 0 if cache_metadata and length > 1 and not buf[5] else first
    pos = end
    for _ in range(definitions):
        if pos + 4 > size:
            return None
        pos += 4 + (buf[pos] | buf[pos + 1] << 8 | buf[pos + 2] << 16)
    if ok_end:
        return _rows_to_ok(buf, pos, size)
    return _rows_to_end(buf, pos, size, after_definitions=True)


def _rows_to_ok(
    buf: bytes | bytearray | memoryview, pos: int, size: int
) -> tuple[int, int, bool] | None:
    """whole_result's rest with CLIENT_DEPRECATE_EOF: rows to the OK headed 0xFE (or
    an ERR) that ends them."""
    while pos + 4 < size:
        length = buf[pos] | buf[pos + 1] << 8 | buf[pos + 2] << 16
        first = buf[pos + 4]
        end = pos + 4 + length
        if end > size or not length or length == MAX_PAYLOAD:
            return None
        if first == ERR_HEADER:
            return end, 0, True
        if first == EOF_HEADER:
            status = ok_status(buf[pos + 4 : pos + 4 + min(length, _OK_PREFIX)])
            return None if status & _MORE_RESULTS else (end, status, False)
        pos = end
    return None


def _rows_to_end(
    buf: bytes | bytearray | memoryview, pos: int, size: int, after_definitions: bool
) -> tuple[int, int, bool] | None:
    """whole_result's rest: the EOF after the definitions, then rows to the last EOF
    (or an ERR, which keeps the status flags of the EOF before it, as ``_scan`` does)."""
    status = 0
    while pos + 4 < size:
        length = buf[pos] | buf[pos + 1] << 8 | buf[pos + 2] << 16
        first = buf[pos + 4]
        end = pos + 4 + length
        if end > size or not length or length == MAX_PAYLOAD:
            return None
        if first == ERR_HEADER and not after_definitions:
            return end, status, True
        if first == EOF_HEADER and length < 9:
            status = buf[pos + 7] | buf[pos + 8] << 8 if length >= 5 else 0
            if after_definitions:
                if status & _CURSOR_EXISTS:
                    return None
                after_definitions = False
            elif status & _MORE_RESULTS:
                return None
            else:
                return end, status, False
        elif after_definitions:
            return None  # not the EOF the definitions must end with
        pos = end
    return None
