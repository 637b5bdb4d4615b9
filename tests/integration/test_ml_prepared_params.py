"""Binary-protocol parameters of ML prepared statements, type by type, against the server.

The proxy binds an ML prepared statement's parameters by writing them into its text as
literals (proxy.wire.binary_params). Each type class the binary protocol carries is sent
here as raw COM_STMT_EXECUTE bytes, ordinary values and hostile ones, once to an ML
statement through the proxy and once to the same statement straight to the backend
(its ML call replaced by the constant the local model answers): the rows must be
byte for byte the same. Values the server would bind oddly the proxy refuses with the
server's own 1210, never binds as SQL.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from proxy.wire import scramble
from proxy.wire.scanner import Shape
from tests.conftest import APP, RunningProxy, admin_connect, private_database, start_proxy
from tests.support.backend import BackendInfo
from tests.support.fuzz_wire import Outcome, Wire, handshake_response, log_in, parse_greeting

DB = "mlproxy_params"
ML_CALL = "aws_comprehend_detect_sentiment('I love it', 'en')"
ML_ANSWER = "'POSITIVE'"  # what the local model answers for ML_CALL
UNSIGNED = 0x80


@dataclass(frozen=True)
class Param:
    """One binary-protocol parameter: its type byte, unsigned flag and encoded value."""

    kind: int
    value: bytes
    unsigned: bool = False


def lenenc(value: bytes) -> bytes:
    assert len(value) < 0xFB
    return bytes((len(value),)) + value


def execute(statement_id: int, params: list[Param], nulls: int = 0) -> bytes:
    head = b"\x17" + statement_id.to_bytes(4, "little") + b"\x00" + (1).to_bytes(4, "little")
    types = b"".join(bytes((p.kind, UNSIGNED if p.unsigned else 0)) for p in params)
    values = b"".join(p.value for i, p in enumerate(params) if not nulls & (1 << i))
    return head + nulls.to_bytes((len(params) + 7) // 8, "little") + b"\x01" + types + values


class Client:
    """A raw connection (proxy or backend) that prepares and executes statements."""

    def __init__(self, wire: Wire) -> None:
        self.wire = wire

    def query(self, sql: str) -> None:
        self.wire.send(b"\x03" + sql.encode())
        answer = self.wire.read_response(Shape.RESULT, Outcome()).payloads[0]
        assert answer[:1] == b"\x00", answer

    def prepare(self, sql: str) -> int:
        self.wire.send(b"\x16" + sql.encode())
        first = self.wire.read_response(Shape.PREPARE, Outcome()).payloads[0]
        assert first[:1] == b"\x00", first
        return int.from_bytes(first[1:5], "little")

    def run(self, sql: str, params: list[Param], nulls: int = 0) -> list[bytes]:
        """The statement's rows as raw binary-protocol payloads, or [the ERR payload]."""
        statement = self.prepare(sql)
        self.wire.send(execute(statement, params, nulls))
        payloads = self.wire.read_response(Shape.RESULT, Outcome()).payloads
        self.wire.send(b"\x19" + statement.to_bytes(4, "little"))
        if payloads[0][:1] in (b"\xff", b"\x00"):
            return payloads[:1]
        columns = payloads[0][0]
        return payloads[columns + 2 : -1]


def direct_wire(backend: BackendInfo) -> Wire:
    """A raw connection straight to the backend as APP (mysql_native_password)."""
    wire = Wire(backend.port, 10)
    greeting = parse_greeting(wire.read_packet()[1])
    answer = scramble.native_scramble(APP.password.encode(), greeting.nonce)
    response = handshake_response(APP.user.encode(), answer, DB.encode())
    wire.send(response.replace(scramble.CACHING_SHA2.encode(), scramble.NATIVE.encode()), 1)
    assert wire.read_packet()[1][:1] == b"\x00"
    return wire


@pytest.fixture(scope="module")
def params_proxy(backend: BackendInfo) -> Iterator[RunningProxy]:
    with private_database(backend, DB):
        with admin_connect(backend, database=DB) as admin, admin.cursor() as cur:
            cur.execute(
                "CREATE TABLE p (id INT PRIMARY KEY, i BIGINT, u BIGINT UNSIGNED, "
                "d DECIMAL(30,10), f DOUBLE, dt DATETIME(6), da DATE, tm TIME(6), "
                "s VARCHAR(50), b VARBINARY(50)) CHARSET utf8mb4"
            )
            cur.execute(
                "INSERT INTO p VALUES "
                "(1, -5, 18446744073709551615, 12.5, 1.5, '2024-02-29 05:06:07', "
                "'2024-02-29', '26:03:04', 'I love it', 0x00ff), "
                "(2, 7, 7, 1, 0.1, '2024-02-29 05:06:07.1', '2024-03-01', '-01:02:03.5', "
                "'é', 0x27)"
            )
        proxy = start_proxy(backend)
        try:
            yield proxy
        finally:
            proxy.stop()


@pytest.fixture
def clients(params_proxy: RunningProxy, backend: BackendInfo) -> Iterator[tuple[Client, Client]]:
    through = log_in(params_proxy.port, APP.user, APP.password, DB, 10)
    direct = direct_wire(backend)
    yield Client(through), Client(direct)
    through.close()
    direct.close()


def datetime_bytes(*fields: int, length: int) -> bytes:
    packed = struct.pack("<HBBBBBI", *fields)
    return bytes((length,)) + packed[:length]


def time_bytes(negative: int, days: int, h: int, m: int, s: int, micro: int, length: int) -> bytes:
    return bytes((length,)) + struct.pack("<BIBBBI", negative, days, h, m, s, micro)[:length]


#: (column, parameter): each type class, ordinary and hostile values.
CASES = [
    ("i", Param(0x01, struct.pack("b", -5))),
    ("u", Param(0x01, struct.pack("B", 7), unsigned=True)),
    ("i", Param(0x02, struct.pack("<h", 7))),
    ("i", Param(0x03, struct.pack("<i", -5))),
    ("i", Param(0x08, struct.pack("<q", -5))),
    ("u", Param(0x08, struct.pack("<Q", 2**64 - 1), unsigned=True)),
    ("f", Param(0x04, struct.pack("<f", 1.5))),
    ("f", Param(0x05, struct.pack("<d", 0.1))),
    ("d", Param(0xF6, lenenc(b"12.5"))),
    ("d", Param(0x00, lenenc(b"1.00000"))),
    ("d", Param(0xF6, lenenc(b"1.25e1"))),
    ("d", Param(0xF6, lenenc(b" 12.5x"))),
    ("d", Param(0xF6, lenenc(b"1--"))),  # the reproduction: binds as 1
    ("d", Param(0xF6, lenenc(b"1) OR (1=1"))),
    ("d", Param(0xF6, lenenc(b"1 OR 1=1 -- "))),
    ("dt", Param(0x0C, datetime_bytes(2024, 2, 29, 5, 6, 7, 0, length=7))),
    ("dt", Param(0x0C, datetime_bytes(2024, 2, 29, 5, 6, 7, 100000, length=11))),
    ("dt", Param(0x07, datetime_bytes(2024, 2, 29, 5, 6, 7, 0, length=7))),
    ("dt", Param(0x0C, datetime_bytes(2024, 2, 29, 0, 0, 0, 0, length=4))),
    ("da", Param(0x0A, datetime_bytes(2024, 2, 29, 0, 0, 0, 0, length=4))),
    ("da", Param(0x0A, datetime_bytes(2024, 3, 1, 5, 6, 7, 0, length=7))),
    ("tm", Param(0x0B, time_bytes(0, 1, 2, 3, 4, 0, length=8))),
    ("tm", Param(0x0B, time_bytes(1, 0, 1, 2, 3, 500000, length=12))),
    ("tm", Param(0x0B, b"\x00")),
    ("s", Param(0xFD, lenenc(b"I love it"))),
    ("s", Param(0xFE, lenenc("é".encode()))),
    ("s", Param(0x0F, lenenc(b"I love it"))),
    ("s", Param(0xF7, lenenc(b"I love it"))),  # ENUM
    ("s", Param(0xF8, lenenc(b"I love it"))),  # SET
    ("s", Param(0xFD, lenenc(b"' OR '1'='1"))),
    ("s", Param(0xFD, lenenc(b"\\' OR 1=1 -- "))),
    ("s", Param(0xFD, lenenc(b"x' OR s LIKE '%"))),
    ("s", Param(0xFD, lenenc(b""))),
    ("b", Param(0xFC, lenenc(b"\x00\xff"))),  # BLOB: a binary string
    ("b", Param(0xF9, lenenc(b"'"))),
]


@pytest.mark.parametrize(("column", "param"), CASES, ids=lambda v: repr(v)[:40])
def test_each_type_binds_as_the_server_binds_it(
    clients: tuple[Client, Client], column: str, param: Param
) -> None:
    through, direct = clients
    template = (
        f"SELECT id, CONCAT(?, '') AS v, {column} = ? AS same, ? IS NULL AS n, {{call}} AS s "
        "FROM p ORDER BY id"
    )
    expected = direct.run(template.format(call=ML_ANSWER), [param] * 3)
    assert expected and expected[0][:1] != b"\xff", expected  # the server binds it
    assert through.run(template.format(call=ML_CALL), [param] * 3) == expected


@pytest.mark.parametrize(
    "value", [b"1--", b"1) OR (1=1", b"1 -- ", b"1/**/OR/**/1", b"+1e0--"], ids=repr
)
def test_a_hostile_decimal_changes_no_statement(
    clients: tuple[Client, Client], value: bytes
) -> None:
    """The issue's reproduction: ``WHERE id = ? AND id < 0`` with a NEWDECIMAL '1--'
    returned a row through the proxy; it returns none, as directly."""
    through, direct = clients
    sql = "SELECT id, {call} FROM p WHERE id = ? AND id < 0"
    param = [Param(0xF6, lenenc(value))]
    assert direct.run(sql.format(call=ML_ANSWER), param) == []
    assert through.run(sql.format(call=ML_CALL), param) == []


def test_null_bitmap_and_long_data_bind_as_the_server_binds_them(
    clients: tuple[Client, Client],
) -> None:
    through, direct = clients
    template = "SELECT id, ?, CONCAT(?, '|'), {call} FROM p WHERE s = ? ORDER BY id"
    params = [Param(0xFD, lenenc(b"x")), Param(0xFD, b""), Param(0xFD, b"")]
    answers = []
    for client, call in ((direct, ML_ANSWER), (through, ML_CALL)):
        statement = client.prepare(template.format(call=call))
        for index, chunk in ((1, b"' OR '"), (1, b"1'='1"), (2, b"I love"), (2, b" it")):
            long_data = b"\x18" + statement.to_bytes(4, "little") + index.to_bytes(2, "little")
            client.wire.send(long_data + chunk)
        client.wire.send(execute(statement, params, nulls=0b001))
        payloads = client.wire.read_response(Shape.RESULT, Outcome()).payloads
        answers.append(payloads[payloads[0][0] + 2 : -1])  # the rows
    assert answers[0] and answers[1] == answers[0]


#: Well-formed values the server binds oddly (a zero date with a warning, NULL, '') or
#: refuses: the proxy refuses each with the server's 1210.
REFUSED = [
    Param(0x0C, datetime_bytes(2024, 13, 45, 5, 6, 7, 0, length=7)),
    Param(0x0C, datetime_bytes(2024, 2, 29, 24, 0, 0, 0, length=7)),
    Param(0x0C, datetime_bytes(2024, 2, 29, 5, 6, 7, 1_000_000, length=11)),
    Param(0x0B, time_bytes(0, 0xFFFFFFFF, 23, 59, 59, 0, length=8)),
    Param(0x0B, time_bytes(0, 0, 24, 0, 0, 0, length=8)),
    Param(0xF6, lenenc(b"abc")),
    Param(0xF6, lenenc(b"1e999999")),
    Param(0x05, struct.pack("<d", float("nan"))),
    Param(0x0D, struct.pack("<h", 2024)),  # YEAR: MariaDB binds it as NULL
    Param(0x09, struct.pack("<i", 7)),  # INT24: the same
    Param(0x06, b""),  # the NULL type outside the null bitmap: the server refuses it
    Param(0x10, lenenc(b"\x01")),  # BIT
    Param(0xFF, lenenc(b"\x01")),  # GEOMETRY
    Param(0x0E, lenenc(b"\x01")),  # NEWDATE
    Param(0x11, lenenc(b"\x01")),  # TIMESTAMP2: the server refuses it as well
    Param(0x50, lenenc(b"\x01")),
]


@pytest.mark.parametrize("param", REFUSED, ids=lambda p: repr(p)[:50])
def test_values_the_server_binds_oddly_are_refused(
    clients: tuple[Client, Client], param: Param
) -> None:
    through, _ = clients
    answer = through.run(f"SELECT {ML_CALL}, ?", [param])
    assert answer[0][:3] == b"\xff" + (1210).to_bytes(2, "little"), answer
    assert answer[0][3:9] == b"#HY000"


#: Bytes that do not follow the layout: 1835, and the session goes on.
MALFORMED = [
    [Param(0x05, b"\x00\x00")],  # the issue's: a DOUBLE of two bytes
    [Param(0x08, b"\x01\x02\x03")],
    [Param(0xFD, b"\xfc\xff\xff")],  # a length past the end
    [Param(0x0C, b"\x05\xe8\x07\x02\x1d\x05")],  # a DATETIME of 5 bytes
    [Param(0x0B, b"\x09" + bytes(9))],
    [Param(0xF6, b"")],
]


@pytest.mark.parametrize("params", MALFORMED, ids=lambda p: repr(p)[:50])
def test_malformed_parameter_blocks_get_1835_and_the_session_goes_on(
    clients: tuple[Client, Client], params: list[Param]
) -> None:
    through, _ = clients
    answer = through.run(f"SELECT {ML_CALL}, ?", params)
    assert answer[0][:3] == b"\xff" + (1835).to_bytes(2, "little"), answer
    assert through.run(f"SELECT {ML_CALL}, ?", [Param(0x03, struct.pack("<i", 1))])


#: (character set, a string parameter in it): after SET NAMES the client sends its
#: parameters in that set, and the server reads them so; the proxy binds them the same.
CHARSET_CASES = [
    ("latin1", "é à ü"),
    ("cp1251", "привет"),
    ("sjis", "日本語 表示"),  # 表 ends in 0x5C, a backslash in ASCII
    ("utf8mb4", "é 😀"),
]


@pytest.mark.parametrize(("charset", "text"), CHARSET_CASES, ids=lambda v: str(v))
def test_string_parameters_are_read_in_the_sessions_character_set(
    clients: tuple[Client, Client], charset: str, text: str
) -> None:
    """Parameters are in character_set_client when the statement runs, which SET NAMES
    changes after the login (they were bound as the login's character set)."""
    through, direct = clients
    value = text.encode(charset.replace("utf8mb4", "utf-8").replace("sjis", "shift_jis"))
    template = "SELECT id, CONCAT(?, '') AS v, HEX(CONVERT(? USING utf8mb4)), {call} FROM p"
    answers = []
    for client, call in ((direct, ML_ANSWER), (through, ML_CALL)):
        client.query(f"SET NAMES {charset}")
        answers.append(client.run(template.format(call=call), [Param(0xFD, lenenc(value))] * 2))
    assert answers[0] and answers[0][0][:1] != b"\xff", answers[0]
    assert text.encode().hex().upper().encode() in answers[0][0]  # the server read it so
    assert answers[1] == answers[0]
