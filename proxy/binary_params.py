"""COM_STMT_EXECUTE parameters, decoded and written back as SQL literals.

Implements page_protocol_com_stmt_execute (null bitmap, new-params-bound flag, types,
values in the binary protocol encoding of page_protocol_binary_resultset). Used only for
prepared statements that call ML functions: their parameters must reach the proxy's
text rewrite. Every value becomes a literal that cannot change the statement's structure:
numbers are formatted from their decoded value, temporal values from their fields, and
strings and bytes are hex literals.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from mysql_mimic.types import ColumnType

from proxy.packets import read_lenenc_str

_INTEGERS = {
    ColumnType.TINY: (1, "b", "B"),
    ColumnType.SHORT: (2, "<h", "<H"),
    ColumnType.YEAR: (2, "<h", "<H"),
    ColumnType.LONG: (4, "<i", "<I"),
    ColumnType.INT24: (4, "<i", "<I"),
    ColumnType.LONGLONG: (8, "<q", "<Q"),
}
_TEMPORAL = {ColumnType.DATE, ColumnType.DATETIME, ColumnType.TIMESTAMP}
_DECIMALS = {ColumnType.DECIMAL, ColumnType.NEWDECIMAL}


@dataclass
class ExecuteRequest:
    """A decoded COM_STMT_EXECUTE: the statement id, flags, and each parameter as SQL."""

    statement_id: int
    flags: int
    literals: list[str]
    types: list[tuple[int, bool]]


def parse_execute(
    payload: bytes,
    param_count: int,
    previous_types: list[tuple[int, bool]],
    long_data: dict[int, bytes],
    charset: str,
) -> ExecuteRequest:
    """Decode COM_STMT_EXECUTE (the payload includes the command byte). ``previous_types``
    are reused when the client does not send types again; ``long_data`` holds values sent
    with COM_STMT_SEND_LONG_DATA. Raises ValueError on malformed input."""
    statement_id = int.from_bytes(payload[1:5], "little")
    flags = payload[5]
    pos = 10
    if param_count == 0:
        return ExecuteRequest(statement_id, flags, [], [])
    bitmap_len = (param_count + 7) // 8
    nulls = payload[pos : pos + bitmap_len]
    pos += bitmap_len
    types = previous_types
    if payload[pos] == 1:
        pos += 1
        types = [
            (payload[pos + 2 * i], bool(payload[pos + 2 * i + 1] & 0x80))
            for i in range(param_count)
        ]
        pos += 2 * param_count
    else:
        pos += 1
    if len(types) != param_count:
        raise ValueError("parameter types were never sent")
    literals = []
    for index, (kind, unsigned) in enumerate(types):
        if nulls[index // 8] & (1 << (index % 8)):
            literals.append("NULL")
        elif index in long_data:
            literals.append(_string_literal(long_data[index], kind, charset))
        else:
            literal, pos = _value(payload, pos, kind, unsigned, charset)
            literals.append(literal)
    return ExecuteRequest(statement_id, flags, literals, types)


def _value(payload: bytes, pos: int, kind: int, unsigned: bool, charset: str) -> tuple[str, int]:
    if kind == ColumnType.NULL:
        return "NULL", pos
    if kind in _INTEGERS:
        size, signed_fmt, unsigned_fmt = _INTEGERS[ColumnType(kind)]
        (value,) = struct.unpack(
            unsigned_fmt if unsigned else signed_fmt, payload[pos : pos + size]
        )
        return str(value), pos + size
    if kind == ColumnType.FLOAT:
        return _double(struct.unpack("<f", payload[pos : pos + 4])[0]), pos + 4
    if kind == ColumnType.DOUBLE:
        return _double(struct.unpack("<d", payload[pos : pos + 8])[0]), pos + 8
    if kind in _TEMPORAL:
        return _datetime(payload, pos, kind)
    if kind == ColumnType.TIME:
        return _time(payload, pos)
    raw, pos = read_lenenc_str(payload, pos)
    if kind in _DECIMALS:
        return _decimal(raw), pos
    return _string_literal(raw, kind, charset), pos


def _double(value: float) -> str:
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError("not a finite number")
    text = repr(value)
    return text if "e" in text else text + "e0"


def _decimal(raw: bytes) -> str:
    text = raw.decode("ascii")
    if not text or any(c not in "0123456789.-+eE" for c in text):
        raise ValueError("malformed DECIMAL parameter")
    return text


def _string_literal(raw: bytes, kind: int, charset: str) -> str:
    """Bytes as a hex literal; text types in the connection's character set."""
    text_types = {ColumnType.VARCHAR, ColumnType.VAR_STRING, ColumnType.STRING, ColumnType.JSON}
    if kind in text_types:
        return f"_{charset} X'{raw.hex()}'" if raw else f"_{charset}''"
    return f"X'{raw.hex()}'" if raw else "_binary''"


def _datetime(payload: bytes, pos: int, kind: int) -> tuple[str, int]:
    length = payload[pos]
    fields = payload[pos + 1 : pos + 1 + length]
    year = int.from_bytes(fields[0:2], "little") if length >= 4 else 0
    month, day = (fields[2], fields[3]) if length >= 4 else (0, 0)
    hour, minute, second = (fields[4], fields[5], fields[6]) if length >= 7 else (0, 0, 0)
    micro = int.from_bytes(fields[7:11], "little") if length >= 11 else 0
    date = f"{year:04d}-{month:02d}-{day:02d}"
    if kind == ColumnType.DATE:
        return f"DATE'{date}'", pos + 1 + length
    return f"TIMESTAMP'{date} {hour:02d}:{minute:02d}:{second:02d}.{micro:06d}'", pos + 1 + length


def _time(payload: bytes, pos: int) -> tuple[str, int]:
    length = payload[pos]
    fields = payload[pos + 1 : pos + 1 + length]
    negative = length >= 8 and fields[0] == 1
    days = int.from_bytes(fields[1:5], "little") if length >= 8 else 0
    hour, minute, second = (fields[5], fields[6], fields[7]) if length >= 8 else (0, 0, 0)
    micro = int.from_bytes(fields[8:12], "little") if length >= 12 else 0
    sign = "-" if negative else ""
    return f"TIME'{sign}{days * 24 + hour}:{minute:02d}:{second:02d}.{micro:06d}'", pos + 1 + length
