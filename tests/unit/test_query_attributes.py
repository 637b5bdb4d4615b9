"""Query attributes in the sans-IO codecs: where a COM_QUERY's text starts after them,
and a COM_STMT_EXECUTE's parameters before them (proxy.wire.query_attributes,
proxy.wire.binary_params). The blocks are built here from the protocol's layout."""

from __future__ import annotations

import struct

import pytest

from proxy.wire.binary_params import MalformedParameters, parse_execute
from proxy.wire.query_attributes import query_head, query_text

SQL = b"SELECT aws_comprehend_detect_sentiment(txt, 'en') FROM t"


def named(kind: int, name: bytes, unsigned: bool = False) -> bytes:
    return bytes((kind, 0x80 if unsigned else 0, len(name))) + name


def string(data: bytes) -> bytes:
    return bytes((len(data),)) + data


#: One attribute of each encoding: (type, value bytes); None: NULL in the bitmap.
EACH_KIND: list[tuple[int, bytes | None]] = [
    (0x01, b"\x07"),  # TINY
    (0x02, struct.pack("<h", -2)),  # SHORT
    (0x0D, struct.pack("<H", 2024)),  # YEAR
    (0x03, struct.pack("<i", 5)),  # LONG
    (0x04, struct.pack("<f", 1.5)),  # FLOAT
    (0x08, struct.pack("<q", 1 << 40)),  # LONGLONG
    (0x05, struct.pack("<d", 2.5)),  # DOUBLE
    (0x0A, b"\x04" + struct.pack("<HBB", 2024, 12, 5)),  # DATE
    (0x0C, b"\x07" + struct.pack("<HBBBBB", 2024, 12, 5, 11, 30, 0)),  # DATETIME
    (0x0B, b"\x08\x00" + struct.pack("<IBBB", 1, 2, 3, 4)),  # TIME
    (0xF6, string(b"3.14")),  # NEWDECIMAL
    (0xFD, string(b"a string with \x00 and 'quotes'")),  # VAR_STRING
    (0xFC, string(bytes(range(200)))),  # BLOB
    (0xFD, None),
    (0x06, b""),  # the NULL type
]


def attribute_block(attributes: list[tuple[int, bytes | None]]) -> bytes:
    bitmap = bytearray((len(attributes) + 7) // 8)
    for index, (_, value) in enumerate(attributes):
        if value is None:
            bitmap[index // 8] |= 1 << (index % 8)
    types = b"".join(named(kind, f"a{i}".encode()) for i, (kind, _) in enumerate(attributes))
    values = b"".join(value for _, value in attributes if value is not None)
    return bytes(bitmap) + b"\x01" + types + values


def com_query(attributes: list[tuple[int, bytes | None]], sql: bytes = SQL) -> bytes:
    block = attribute_block(attributes) if attributes else b""
    return b"\x03" + bytes((len(attributes), 1)) + block + sql


def test_without_the_capability_the_text_follows_the_command_byte() -> None:
    assert query_text(b"\x03" + SQL, False) == SQL


@pytest.mark.parametrize("count", [0, 1, 7, 8, 9, len(EACH_KIND)])
def test_the_text_starts_after_every_kind_of_attribute(count: int) -> None:
    assert query_text(com_query(EACH_KIND[:count]), True) == SQL


def test_a_text_that_looks_like_a_block_is_read_as_text() -> None:
    # An empty block, then text whose first bytes would be a count and a set count.
    assert query_text(b"\x03\x00\x01\x02\x01SELECT 1", True) == b"\x02\x01SELECT 1"


@pytest.mark.parametrize(
    "payload",
    [
        b"\x03",  # no count
        b"\x03\x01",  # no set count
        com_query(EACH_KIND[:3], b"")[:-1],  # a value cut short
        b"\x03\x01\x01\x00\x00" + named(0xFD, b"a") + string(b"v"),  # no types sent
        b"\x03\x01\x01\x00\x01" + named(0xFD, b"a") + b"\xfc\xff\xff",  # too long a value
    ],
)
def test_a_malformed_block_has_no_text(payload: bytes) -> None:
    assert query_text(payload, True) is None


def test_the_proxys_own_statements_carry_an_empty_block() -> None:
    assert query_text(query_head(True) + SQL, True) == SQL
    assert query_head(False) + SQL == b"\x03" + SQL


def execute(flags: int, block: bytes) -> bytes:
    return b"\x17" + (9).to_bytes(4, "little") + bytes((flags,)) + (1).to_bytes(4, "little") + block


def test_parameters_come_before_the_attributes() -> None:
    types = named(0xFD, b"") + named(0x08, b"") + named(0xFD, b"trace")
    values = string(b"hi") + struct.pack("<q", -7) + string(b"xyz")
    payload = execute(0x08, b"\x03\x00\x01" + types + values)
    request = parse_execute(payload, 2, [], {}, "utf8mb4", attributes=True)
    assert request.literals == ["_utf8mb4 X'6869'", "-7"]
    assert len(request.types) == 3


def test_attributes_alone_when_the_count_is_available() -> None:
    payload = execute(0x08, b"\x01\x00\x01" + named(0xFD, b"trace") + string(b"xyz"))
    assert parse_execute(payload, 0, [], {}, "utf8mb4", attributes=True).literals == []


def test_no_count_without_parameters_nor_the_flag() -> None:
    assert parse_execute(execute(0, b""), 0, [], {}, "utf8mb4", attributes=True).literals == []


def test_types_sent_before_are_reused_with_their_count() -> None:
    first = execute(0x08, b"\x02\x00\x01" + named(0x08, b"") + named(0x08, b"a") + bytes(16))
    request = parse_execute(first, 1, [], {}, "utf8mb4", attributes=True)
    again = execute(0x08, b"\x02\x00\x00" + struct.pack("<qq", 5, 6))
    assert parse_execute(again, 1, request.types, {}, "utf8mb4", attributes=True).literals == ["5"]


def test_fewer_values_than_parameters_is_malformed() -> None:
    payload = execute(0x08, b"\x01\x00\x01" + named(0x08, b"") + bytes(8))
    with pytest.raises(MalformedParameters):
        parse_execute(payload, 2, [], {}, "utf8mb4", attributes=True)


def test_without_the_capability_the_layout_is_the_old_one() -> None:
    payload = execute(0, b"\x00\x01" + named(0x08, b"")[:2] + struct.pack("<q", 4))
    assert parse_execute(payload, 1, [], {}, "utf8mb4").literals == ["4"]
