"""Statements the proxy itself runs on a session's backend connection (the ML path's key
queries and temporary tables), with their text-protocol results decoded."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ml_backends.slices import CHECK_EVERY, LoopSlices
from proxy.errors import BackendLost, BackendRejected
from proxy.upstream.backend import BackendConnection
from proxy.wire.packets import (
    EOF_HEADER,
    ERR_HEADER,
    OK_HEADER,
    lenenc_str,
    parse_err,
    read_lenenc_int,
)

Row = tuple[bytes | None, ...]


def decode_text_row(payload: bytes, columns: int) -> Row:
    """A text-protocol row: each value a length-encoded string, 0xFB for NULL."""
    values: list[bytes | None] = []
    pos = 0
    for _ in range(columns):
        length = payload[pos]
        if length == 0xFB:
            values.append(None)
            pos += 1
            continue
        if length < 0xFB:  # the usual one-byte length, read without a call
            pos += 1
        else:
            length, pos = read_lenenc_int(payload, pos)
        values.append(payload[pos : pos + length])
        pos += length
    return tuple(values)


def encode_text_row(values: Row) -> bytes:
    """A text-protocol row (the inverse of decode_text_row)."""
    return b"".join(b"\xfb" if v is None else lenenc_str(v) for v in values)


async def send_command(backend: BackendConnection, payload: bytes) -> None:
    """Send a command of the proxy's own. A backend that has closed (it ends a
    connection after some errors, or at wait_timeout) is BackendLost, as on the relay's
    path, whichever loop's transport reports it (uvloop raises RuntimeError)."""
    try:
        await backend.stream.send(payload, 0)
    except (OSError, RuntimeError) as exc:
        raise BackendLost("lost the connection to the backend MySQL server") from exc


async def fetch_rows(
    backend: BackendConnection, sql: str, charge: Callable[[int], None] | None = None
) -> list[Row]:
    """Run a statement and return its rows (none for a statement without a result set).

    ``charge`` is told each row's payload size before the row is kept; when it raises
    (a memory budget is spent), the rest of the result is read and dropped, so the
    connection stays in step, and its exception is raised. Decoding yields to the event
    loop once per slice: a result of many rows must not hold up other sessions."""
    await send_command(backend, backend.query_payload(backend.encode(sql)))
    return await read_rows(backend, charge)


async def read_rows(
    backend: BackendConnection, charge: Callable[[int], None] | None = None
) -> list[Row]:
    """The rows of a statement already sent (see fetch_rows)."""
    first = (await backend.read()).payload
    if first[0] == ERR_HEADER:
        raise BackendRejected(parse_err(first))
    if first[0] == OK_HEADER:
        return []
    columns, _ = read_lenenc_int(first, 0)
    shape = backend.shape
    payload_now = backend.stream.payload_now
    for _ in range(shape.head_size(first) - 1):  # the definitions, then their EOF if any
        if payload_now() is None:
            await backend.read()
    rows: list[Row] = []
    slices = LoopSlices()
    end_limit = shape.end_limit
    while True:
        payload = payload_now()
        if payload is None:
            payload = (await backend.read()).payload
        if payload[0] == ERR_HEADER:
            raise BackendRejected(parse_err(payload))
        if payload[0] == EOF_HEADER and len(payload) < end_limit:
            return rows
        if charge is not None:
            try:
                charge(len(payload))
            except Exception:
                rows.clear()
                await _skip_rows(backend)
                raise
        rows.append(decode_text_row(payload, columns))
        if len(rows) % CHECK_EVERY == 0:
            await slices.pause()


async def _skip_rows(backend: BackendConnection) -> None:
    """Read the rest of a result set (to its final EOF or ERR), keeping nothing."""
    slices = LoopSlices()
    payload_now = backend.stream.payload_now
    is_last = backend.shape.is_last
    while True:
        payload = payload_now()
        if payload is None:
            payload = (await backend.read()).payload
        if is_last(payload):
            return
        await slices.pause()


async def read_response(backend: BackendConnection) -> list[bytes]:
    """Every payload of one text-protocol response: [ERR], [OK], or the column count,
    definitions, EOF (without DEPRECATE_EOF), rows and the packet that ends them (EOF,
    OK-as-EOF, or an ERR in place of it): proxy.wire.result_shape.split_result parts it."""
    first = (await backend.read()).payload
    if first[0] in (ERR_HEADER, OK_HEADER):
        return [first]
    shape = backend.shape
    payloads = [first]
    for _ in range(shape.head_size(first) - 1):
        payloads.append((await backend.read()).payload)
    while True:
        payload = (await backend.read()).payload
        payloads.append(payload)
        if shape.is_last(payload):
            return payloads


async def prepare_statement(backend: BackendConnection, sql: str) -> PreparedInternally:
    """COM_STMT_PREPARE a statement for the proxy's own use: its id, and its column
    definitions (what a client caching metadata must be given, proxy.transport.metadata_relay)."""
    await send_command(backend, b"\x16" + backend.encode(sql))
    first = (await backend.read()).payload
    if first[0] == ERR_HEADER:
        raise BackendRejected(parse_err(first))
    columns = int.from_bytes(first[5:7], "little")
    params = int.from_bytes(first[7:9], "little")
    shape = backend.shape
    payloads = []
    for _ in range(shape.definitions_of_prepare(params, columns)):
        payloads.append((await backend.read()).payload)
    # The column definitions are the last group: before its EOF, if there is one.
    last = len(payloads) - (0 if shape.deprecate_eof or not columns else 1)
    return PreparedInternally(int.from_bytes(first[1:5], "little"), payloads[last - columns : last])


@dataclass(frozen=True)
class PreparedInternally:
    """A statement the proxy prepared: its id, and its result's column definitions."""

    statement_id: int
    columns: list[bytes]


def execute_command(statement_id: int) -> bytes:
    """COM_STMT_EXECUTE without parameters or cursor (page_protocol_com_stmt_execute)."""
    return b"\x17" + statement_id.to_bytes(4, "little") + b"\x00" + (1).to_bytes(4, "little")


async def close_statement(backend: BackendConnection, statement_id: int) -> None:
    """COM_STMT_CLOSE (it has no response)."""
    await send_command(backend, b"\x19" + statement_id.to_bytes(4, "little"))
