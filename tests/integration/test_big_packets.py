"""Packets of 16 MiB and more through the proxy, in both directions (PyMySQL, text protocol).

A MySQL packet carries at most 0xFFFFFF payload bytes; a longer message is split into
0xFFFFFF-byte packets plus a final shorter one, which is empty when the length is an exact
multiple. These tests put the command (client to proxy to backend) and a result row (backend
to proxy to client) exactly on, one below and one above k * 0xFFFFFF for k = 0, 1, 2, and
check the bytes of the response are identical through the proxy and direct. The response is
read raw (PyMySQL logs in, then its socket is read packet by packet with PyMySQL's private
``_execute_command``/``_read_bytes``), so the tests see the framing itself, not only what a
client library makes of it. The row's last fragment is filled with 0xFE bytes: a fragment of
one to eight bytes starting with 0xFE looks like an EOF packet to anything that inspects
continuation packets. A 40 MB LONGBLOB round trip with a bound parameter covers the ordinary
client path.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pymysql
import pytest
from pymysql.constants import COMMAND

from tests.conftest import APP, TEST_DB, RunningProxy, admin_connect
from tests.support.backend import BackendInfo

pytestmark = pytest.mark.slow

MAX_PAYLOAD = 0xFFFFFF
NEEDED_MAX_ALLOWED_PACKET = 256 << 20
TIMEOUT = 120
EOF_HEADER = 0xFE
ERR_HEADER = 0xFF


@pytest.fixture(scope="module")
def big_packets_allowed(backend: BackendInfo) -> Iterator[None]:
    """The backend accepts 256 MiB packets (raised for this module if it did not)."""
    with admin_connect(backend) as admin, admin.cursor() as cur:
        cur.execute("SELECT @@global.max_allowed_packet")
        (original,) = cur.fetchone()
        if original < NEEDED_MAX_ALLOWED_PACKET:
            cur.execute(f"SET GLOBAL max_allowed_packet = {NEEDED_MAX_ALLOWED_PACKET}")
    try:
        yield
    finally:
        if original < NEEDED_MAX_ALLOWED_PACKET:
            with admin_connect(backend) as admin, admin.cursor() as cur:
                cur.execute(f"SET GLOBAL max_allowed_packet = {original}")


def _options() -> dict[str, Any]:
    return {
        "max_allowed_packet": NEEDED_MAX_ALLOWED_PACKET,
        "read_timeout": TIMEOUT,
        "write_timeout": TIMEOUT,
    }


@pytest.fixture
def big_conn(proxy: RunningProxy, big_packets_allowed: None) -> Iterator[pymysql.Connection[Any]]:
    connection = proxy.connect(**_options())
    yield connection
    connection.close()


@pytest.fixture
def big_direct(
    backend: BackendInfo, big_packets_allowed: None
) -> Iterator[pymysql.Connection[Any]]:
    connection = pymysql.connect(
        host=backend.host,
        port=backend.port,
        user=APP.user,
        password=APP.password,
        database=TEST_DB,
        autocommit=True,
        **_options(),
    )
    yield connection
    connection.close()


def test_backend_session_allows_256_mib_packets(big_conn: pymysql.Connection[Any]) -> None:
    with big_conn.cursor() as cur:
        cur.execute("SELECT @@max_allowed_packet")
        assert cur.fetchone() == (NEEDED_MAX_ALLOWED_PACKET,)


def test_40_mb_longblob_parameter_round_trips(
    big_conn: pymysql.Connection[Any], big_direct: pymysql.Connection[Any]
) -> None:
    table = "big_longblob"
    blob = os.urandom(40_000_000)  # every byte value, so PyMySQL's escaping is exercised
    digest = hashlib.sha256(blob).hexdigest()
    with big_conn.cursor() as cur, big_direct.cursor() as direct:
        cur.execute(f"CREATE TABLE {table} (id INT PRIMARY KEY, b LONGBLOB)")
        try:
            cur.execute(f"INSERT INTO {table} VALUES (%s, %s)", (1, blob))
            assert cur.rowcount == 1
            direct.execute(f"SELECT LENGTH(b), SHA2(b, 256) FROM {table} WHERE id = 1")
            assert direct.fetchone() == (len(blob), digest)
            cur.execute(f"SELECT b FROM {table} WHERE id = 1")
            (through,) = cur.fetchone()
            assert hashlib.sha256(through).hexdigest() == digest
            del through
            direct.execute(f"SELECT b FROM {table} WHERE id = 1")
            (straight,) = direct.fetchone()
            assert hashlib.sha256(straight).hexdigest() == digest
        finally:
            cur.execute(f"DROP TABLE IF EXISTS {table}")


# -- exact sizes around the packet boundary --------------------------------------------------


@dataclass
class RawResult:
    """A text result set as it came off the socket."""

    digest: str  # SHA-256 of every packet, headers included
    lengths: list[int]  # payload length of every physical packet
    rows: list[bytes]  # the row payloads, continuation packets joined


def raw_query(conn: pymysql.Connection[Any], sql: bytes) -> RawResult:
    """COM_QUERY, then read its (one-result) text result set packet by packet."""
    conn._execute_command(COMMAND.COM_QUERY, sql)
    raw = hashlib.sha256()
    lengths: list[int] = []

    def message() -> bytes:
        parts = []
        while True:
            header = conn._read_bytes(4)
            length = int.from_bytes(header[:3], "little")
            body = conn._read_bytes(length) if length else b""
            raw.update(header)
            raw.update(body)
            lengths.append(length)
            parts.append(body)
            if length < MAX_PAYLOAD:
                return b"".join(parts)

    head = message()
    assert head[0] != ERR_HEADER, f"the query failed: {head[3:]!r}"
    for _ in range(head[0] + 1):  # column definitions and their EOF
        message()
    rows = []
    while True:
        packet = message()
        if packet[0] == EOF_HEADER and len(packet) < 9:
            break
        rows.append(packet)
    return RawResult(raw.hexdigest(), lengths, rows)


def lenenc(value: int) -> bytes:
    if value < 251:
        return bytes((value,))
    if value < 1 << 16:
        return b"\xfc" + value.to_bytes(2, "little")
    if value < 1 << 24:
        return b"\xfd" + value.to_bytes(3, "little")
    return b"\xfe" + value.to_bytes(8, "little")


def row_layout(payload: int) -> tuple[int, int]:
    """Lengths of the two values of a text row whose payload is exactly ``payload``.

    A one-column row cannot have every size (nothing is 2**24 to 2**24 + 8 bytes: a value
    of 2**24 - 1 bytes makes 2**24 + 3, the next takes a 9-byte prefix), so a short second
    value fills the gap: payload = prefix + big + 1 + small. Both values end in 0xFE bytes;
    of the layouts, the first whose last packet starts with such a byte (not with the small
    value's length byte) is chosen.
    """
    last = payload % MAX_PAYLOAD
    layouts = [
        (payload - 1 - small - prefix, small)
        for small in range(16)
        for prefix in (1, 3, 4, 9)
        if payload - 1 - small - prefix >= 0 and len(lenenc(payload - 1 - small - prefix)) == prefix
    ]
    for big, small in layouts:
        if last != small + 1:
            return big, small
    raise ValueError(payload)


def framing(payload: int) -> list[int]:
    """How a message of ``payload`` bytes is split into packets."""
    full, rest = divmod(payload, MAX_PAYLOAD)
    return [MAX_PAYLOAD] * full + [rest]


# One below, on and one above each boundary; +5 and +8 leave a last fragment that looks like
# an EOF packet (0xFE and at most 8 bytes), +9 one that is just too long to look like one.
BOUNDARY_CASES = [
    *[pytest.param(0, d, id=f"small{d:+d}") for d in (-1, 0, 1)],
    *[pytest.param(1, d, id=f"1x0xFFFFFF{d:+d}") for d in (-1, 0, 1, 5, 8, 9)],
    *[pytest.param(2, d, id=f"2x0xFFFFFF{d:+d}") for d in (-1, 0, 1, 5)],
]


@pytest.mark.parametrize(("k", "d"), BOUNDARY_CASES)
def test_command_and_row_exactly_around_the_packet_boundary(
    big_conn: pymysql.Connection[Any], big_direct: pymysql.Connection[Any], k: int, d: int
) -> None:
    size = k * MAX_PAYLOAD + d if k else 1000 + d
    table = "big_boundary"
    with big_direct.cursor() as direct:
        direct.execute(f"CREATE TABLE {table} (id INT PRIMARY KEY, b LONGBLOB)")
    try:
        # Client to backend: a COM_QUERY whose payload (command byte + SQL) is exactly `size`.
        head, tail = f"INSERT INTO {table} (id, b) VALUES (1, '".encode(), b"')"
        stored = secrets.token_hex(size // 2 + 1).encode()[: size - 1 - len(head) - len(tail)]
        insert = head + stored + tail
        assert 1 + len(insert) == size
        with big_conn.cursor() as cur:
            assert cur.execute(insert) == 1
        with big_direct.cursor() as direct:
            direct.execute(f"SELECT LENGTH(b), SHA2(b, 256) FROM {table}")
            assert direct.fetchone() == (len(stored), hashlib.sha256(stored).hexdigest())

        # Backend to client: a row whose payload is exactly `size`, then a small row.
        big, small = row_layout(size)
        pad = big - len(stored)
        select = (
            f"SELECT CONCAT(b, REPEAT(x'FE', {pad})) AS v, REPEAT(x'FE', {small}) AS w"
            f" FROM {table} WHERE id = 1 UNION ALL SELECT 'tail', ''"
        ).encode()
        through = raw_query(big_conn, select)
        straight = raw_query(big_direct, select)
        assert through.lengths == straight.lengths
        assert through.digest == straight.digest
        expected_row = lenenc(big) + stored + b"\xfe" * pad + lenenc(small) + b"\xfe" * small
        assert len(expected_row) == size
        assert through.rows == [expected_row, b"\x04tail\x00"]
        rows_at = len(through.lengths) - len(framing(size)) - 2
        assert through.lengths[rows_at:] == [*framing(size), 6, 5]
        del through, straight
        with big_conn.cursor() as cur:  # the session is still in step
            cur.execute("SELECT 'after'")
            assert cur.fetchone() == ("after",)
    finally:
        with big_direct.cursor() as direct:
            direct.execute(f"DROP TABLE IF EXISTS {table}")
