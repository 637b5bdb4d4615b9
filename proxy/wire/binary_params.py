"""COM_STMT_EXECUTE parameters, decoded, checked for their type and written back as SQL.

Implements page_protocol_com_stmt_execute (null bitmap, new-params-bound flag, types,
values in the binary protocol encoding of page_protocol_binary_resultset). Used only for
prepared statements that call ML functions: their parameters must reach the proxy's
text rewrite, so each value becomes a literal that cannot change the statement's
structure, built only from its decoded value: integers and floating-point numbers from
their binary form, DECIMAL from the digits of the number the server itself would read
(its longest numeric prefix, as the server's str2my_decimal reads it; see
``_decimal``), temporal values from range-checked fields, strings and bytes as hex
literals (text types with the connection's character set introducer, BLOB types as
binary strings, as the server binds them).

With MySQL 8's query attributes (CLIENT_QUERY_ATTRIBUTES, proxy.wire.query_attributes)
the block starts with the count of all its values, the statement's parameters first and
the attributes after them, and each type is followed by a name; the count is there when
the statement has parameters or the flags say PARAMETER_COUNT_AVAILABLE. Attributes are
read past, never bound.

Two errors, as the server reports them: bytes that do not follow the layout raise
MalformedParameters (the server's ER_MALFORMED_PACKET, 1835); a well-formed value of a
type the server does not take, or out of its type's range, raises WrongParameter
(ER_WRONG_ARGUMENTS, 1210: "Incorrect arguments to mysqld_stmt_execute").
"""

from __future__ import annotations

import decimal
import re
import struct
from dataclasses import dataclass

from mysql_mimic.types import ColumnType

from proxy.wire.packets import read_lenenc_int


class MalformedParameters(ValueError):
    """The parameter block does not follow COM_STMT_EXECUTE's layout."""


class WrongParameter(ValueError):
    """A parameter of a type the server refuses, or out of its type's range."""


#: YEAR and INT24 are not here: MariaDB binds a parameter of either type as NULL,
#: whatever its bytes, and clients send SHORT and LONG instead; they are refused.
_INTEGERS = {
    ColumnType.TINY: struct.Struct("b"),
    ColumnType.SHORT: struct.Struct("<h"),
    ColumnType.LONG: struct.Struct("<i"),
    ColumnType.LONGLONG: struct.Struct("<q"),
}
_UNSIGNED = {kind: struct.Struct(s.format.upper()) for kind, s in _INTEGERS.items()}
_FLOATS = {ColumnType.FLOAT: struct.Struct("<f"), ColumnType.DOUBLE: struct.Struct("<d")}
_DATES = {ColumnType.DATE, ColumnType.DATETIME, ColumnType.TIMESTAMP}
_DECIMALS = {ColumnType.DECIMAL, ColumnType.NEWDECIMAL}
#: Strings the server reads in the client's character set (JSON: MySQL 8 binds it so).
TEXT_TYPES = frozenset(
    {
        ColumnType.VARCHAR,
        ColumnType.VAR_STRING,
        ColumnType.STRING,
        ColumnType.ENUM,
        ColumnType.SET,
        ColumnType.JSON,
    }
)
#: Strings bound as binary strings (the server binds BLOB parameters with charset binary).
#: BIT, GEOMETRY and NEWDATE are refused: MariaDB binds them as NULL or '' whatever the
#: bytes say, and clients do not send them (nor NULL outside the null bitmap, which the
#: server refuses as well).
BINARY_TYPES = frozenset(
    {ColumnType.TINY_BLOB, ColumnType.MEDIUM_BLOB, ColumnType.LONG_BLOB, ColumnType.BLOB}
)

#: The digits of a DECIMAL: MariaDB keeps 65 in all and at most 38 after the point.
DECIMAL_DIGITS = 65
DECIMAL_SCALE = 38
#: What the server's str2my_decimal reads: spaces, a sign, digits with at most one
#: point, an exponent; anything after that is ignored (MariaDB binds '1--' as 1).
_DECIMAL_PREFIX = re.compile(rb"[ \t\n\v\f\r]*([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?")
_DECIMAL_CONTEXT = decimal.Context(prec=DECIMAL_DIGITS + DECIMAL_SCALE + 2)

#: TIME's range in hours (the server's TIME is -838:59:59 to 838:59:59).
MAX_TIME_HOURS = 838


@dataclass
class ExecuteRequest:
    """A decoded COM_STMT_EXECUTE: the statement id, flags, and each parameter as SQL."""

    statement_id: int
    flags: int
    literals: list[str]
    types: list[tuple[int, bool]]


#: COM_STMT_EXECUTE's flags: a parameter count precedes the block (query attributes).
PARAMETER_COUNT_AVAILABLE = 0x08


class Reader:
    """Bounds-checked reads from a payload: running past its end is MalformedParameters."""

    def __init__(self, payload: bytes, pos: int) -> None:
        self.payload = payload
        self.pos = pos

    def take(self, size: int) -> bytes:
        end = self.pos + size
        if end > len(self.payload):
            raise MalformedParameters("parameter block shorter than its types say")
        data = self.payload[self.pos : end]
        self.pos = end
        return data

    def byte(self) -> int:
        return self.take(1)[0]

    def lenenc_int(self) -> int:
        try:
            value, self.pos = read_lenenc_int(self.payload, self.pos)
        except (ValueError, IndexError) as exc:
            raise MalformedParameters("malformed length-encoded integer") from exc
        return value

    def lenenc_bytes(self) -> bytes:
        return self.take(self.lenenc_int())


def parse_execute(
    payload: bytes,
    param_count: int,
    previous_types: list[tuple[int, bool]],
    long_data: dict[int, bytes],
    charset: str,
    attributes: bool = False,
) -> ExecuteRequest:
    """Decode COM_STMT_EXECUTE (the payload includes the command byte). ``previous_types``
    are reused when the client does not send types again; ``long_data`` holds values sent
    with COM_STMT_SEND_LONG_DATA; ``attributes``: the connection has query attributes.
    Raises MalformedParameters or WrongParameter."""
    reader = Reader(payload, 1)
    statement_id = int.from_bytes(reader.take(4), "little")
    flags = reader.byte()
    reader.take(4)  # iteration count, always 1
    count = param_count
    if attributes and (param_count or flags & PARAMETER_COUNT_AVAILABLE):
        count = reader.lenenc_int()
        if count < param_count:
            raise MalformedParameters("fewer values than the statement has parameters")
    if count == 0:
        return ExecuteRequest(statement_id, flags, [], [])
    nulls = reader.take((count + 7) // 8)
    types = previous_types
    if reader.byte() == 1:
        types = _types(reader, count, attributes)
    if len(types) != count:
        raise MalformedParameters("parameter types were never sent")
    literals = []
    for index, (kind, unsigned) in enumerate(types[:param_count]):
        if nulls[index // 8] & (1 << (index % 8)):
            literals.append("NULL")
        elif index in long_data:
            literals.append(string_literal(long_data[index], kind, charset))
        else:
            literals.append(_value(reader, kind, unsigned, charset))
    return ExecuteRequest(statement_id, flags, literals, types)


def _types(reader: Reader, count: int, named: bool) -> list[tuple[int, bool]]:
    """Each value's type and unsigned flag; with query attributes each has a name after
    it (empty for the statement's parameters), which is skipped."""
    types = []
    for _ in range(count):
        kind, flag = reader.take(2)
        types.append((kind, bool(flag & 0x80)))
        if named:
            reader.lenenc_bytes()
    return types


def _value(reader: Reader, kind: int, unsigned: bool, charset: str) -> str:
    """A parameter that is not NULL in the bitmap (the server refuses the NULL type then)."""
    if kind in _INTEGERS:
        codec = (_UNSIGNED if unsigned else _INTEGERS)[ColumnType(kind)]
        return str(codec.unpack(reader.take(codec.size))[0])
    if kind in _FLOATS:
        codec = _FLOATS[ColumnType(kind)]
        return double_literal(codec.unpack(reader.take(codec.size))[0])
    if kind in _DATES:
        return _date_literal(reader, kind)
    if kind == ColumnType.TIME:
        return _time_literal(reader)
    if kind in _DECIMALS:
        return decimal_literal(reader.lenenc_bytes())
    if kind in TEXT_TYPES or kind in BINARY_TYPES:
        return string_literal(reader.lenenc_bytes(), kind, charset)
    raise WrongParameter(f"parameter type 0x{kind:02x} is not one the server binds")


def double_literal(value: float) -> str:
    """A DOUBLE as a literal the server reads as that same double."""
    if value != value or value in (float("inf"), float("-inf")):
        raise WrongParameter("a FLOAT or DOUBLE parameter is not a finite number")
    text = repr(value)
    return text if "e" in text else text + "e0"


def decimal_literal(raw: bytes) -> str:
    """The DECIMAL the server reads from ``raw``, written as plain digits.

    >>> [decimal_literal(v) for v in (b"1--", b" -1.50x", b"1.5e3", b".5", b"00012")]
    ['1', '-1.50', '1500', '0.5', '12']
    >>> decimal_literal(b"1) OR (1=1")
    '1'
    """
    match = _DECIMAL_PREFIX.match(raw)
    assert match is not None  # every part of the pattern is optional
    sign, whole, fraction, exponent = match.groups()
    if not whole and not fraction:
        raise WrongParameter("a DECIMAL parameter is not a number")
    text = (
        sign
        + (whole or b"0")
        + (b"." + fraction if fraction else b"")
        + (b"e" + exponent if exponent else b"")
    )
    number = decimal.Decimal(text.decode("ascii"))
    if number.adjusted() >= DECIMAL_DIGITS:
        raise WrongParameter("a DECIMAL parameter is out of range")
    if number.as_tuple().exponent < -DECIMAL_SCALE:  # type: ignore[operator]
        number = number.quantize(
            decimal.Decimal(1).scaleb(-DECIMAL_SCALE),
            rounding=decimal.ROUND_HALF_UP,
            context=_DECIMAL_CONTEXT,
        )
    digits = format(number, "f")
    return digits[1:] if digits.startswith("-") and not number else digits


def string_literal(raw: bytes, kind: int, charset: str) -> str:
    """Bytes as a hex literal: text types in the connection's character set (its name
    comes from the server's collation table, never from the client's bytes)."""
    if kind in BINARY_TYPES:
        return f"X'{raw.hex()}'" if raw else "_binary''"
    return f"_{charset} X'{raw.hex()}'" if raw else f"_{charset}''"


def _date_literal(reader: Reader, kind: int) -> str:
    """DATE, DATETIME or TIMESTAMP: 0, 4, 7 or 11 bytes of fields."""
    length = reader.byte()
    if length not in (0, 4, 7, 11):
        raise MalformedParameters(f"a date parameter of {length} bytes")
    fields = reader.take(length)
    year = int.from_bytes(fields[0:2], "little") if length else 0
    month, day = (fields[2], fields[3]) if length else (0, 0)
    hour, minute, second = (fields[4], fields[5], fields[6]) if length >= 7 else (0, 0, 0)
    micro = int.from_bytes(fields[7:11], "little") if length == 11 else 0
    if year > 9999 or month > 12 or day > 31:
        raise WrongParameter("a date parameter out of range")
    _check_clock(hour, minute, second, micro)
    date = f"{year:04d}-{month:02d}-{day:02d}"
    if kind == ColumnType.DATE:
        return f"DATE'{date}'"
    fraction = f".{micro:06d}" if length == 11 else ""
    return f"TIMESTAMP'{date} {hour:02d}:{minute:02d}:{second:02d}{fraction}'"


def _time_literal(reader: Reader) -> str:
    """TIME: 0, 8 or 12 bytes (sign, days, hours, minutes, seconds, microseconds)."""
    length = reader.byte()
    if length not in (0, 8, 12):
        raise MalformedParameters(f"a TIME parameter of {length} bytes")
    fields = reader.take(length)
    negative = length and fields[0]
    days = int.from_bytes(fields[1:5], "little") if length else 0
    hour, minute, second = (fields[5], fields[6], fields[7]) if length else (0, 0, 0)
    micro = int.from_bytes(fields[8:12], "little") if length == 12 else 0
    if negative not in (0, 1):
        raise MalformedParameters("a TIME parameter's sign is neither 0 nor 1")
    _check_clock(hour, minute, second, micro)
    hours = days * 24 + hour
    if hours > MAX_TIME_HOURS:
        raise WrongParameter("a TIME parameter out of range")
    sign = "-" if negative else ""
    fraction = f".{micro:06d}" if length == 12 else ""
    return f"TIME'{sign}{hours}:{minute:02d}:{second:02d}{fraction}'"


def _check_clock(hour: int, minute: int, second: int, micro: int) -> None:
    if hour > 23 or minute > 59 or second > 59 or micro > 999_999:
        raise WrongParameter("a time of day out of range")
