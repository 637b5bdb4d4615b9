"""MySQL 8's query attributes (CLIENT_QUERY_ATTRIBUTES) through the proxy.

The rule of issue 11: a capability is offered when the client and the backend both have
it, and relayed unchanged. MariaDB has no query attributes, so in front of it the proxy
never offers them; in front of a MySQL 8 (here the stand-in of
tests/support/attributes_backend.py, MariaDB behind a relay that speaks them) it does,
relays each client's commands byte for byte, still finds an ML statement's text after
the attributes, and writes an empty block before the statements of its own making.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import APP, TEST_DB, RunningProxy, start_proxy
from tests.support.attributes_backend import (
    LONGLONG,
    PARAMETER_COUNT_AVAILABLE,
    QUERY_ATTRIBUTES,
    AttributesBackend,
)
from tests.support.backend import BackendInfo
from tests.support.raw_client import RawClient

VAR_STRING = 0xFD
SENTIMENT = "aws_comprehend_detect_sentiment"


def lenenc(data: bytes) -> bytes:
    assert len(data) < 0xFB
    return bytes((len(data),)) + data


def value_block(values: list[tuple[bytes, bytes | int | None]]) -> bytes:
    """Null bitmap, bound flag, types with names, values: strings, BIGINTs and NULLs."""
    bitmap = bytearray((len(values) + 7) // 8)
    types, data = [], []
    for index, (name, value) in enumerate(values):
        kind = LONGLONG if isinstance(value, int) else VAR_STRING
        types.append(bytes((kind, 0)) + lenenc(name))
        if value is None:
            bitmap[index // 8] |= 1 << (index % 8)
        elif isinstance(value, int):
            data.append(value.to_bytes(8, "little", signed=True))
        else:
            data.append(lenenc(value))
    return bytes(bitmap) + b"\x01" + b"".join(types) + b"".join(data)


ATTRIBUTES: list[tuple[bytes, bytes | int | None]] = [
    (b"trace_id", b"abc-123"),
    (b"retries", 3),
    (b"empty", None),
    (b"sql", b"SELECT aws_comprehend_detect_sentiment('x', 'en')"),
]


def query_without_attributes(client: RawClient, sql: str) -> list[bytes]:
    """COM_QUERY with an empty block, as a client with the capability sends one."""
    client.send(b"\x03\x00\x01" + sql.encode())
    return client.results()


def query_with_attributes(sql: str) -> bytes:
    count = bytes((len(ATTRIBUTES),))
    return b"\x03" + count + b"\x01" + value_block(ATTRIBUTES) + sql.encode()


def execute_with_attributes(statement: int, params: list[bytes]) -> bytes:
    values: list[tuple[bytes, bytes | int | None]] = [(b"", p) for p in params]
    values += ATTRIBUTES
    head = statement.to_bytes(4, "little") + bytes((PARAMETER_COUNT_AVAILABLE,))
    head += (1).to_bytes(4, "little")
    return b"\x17" + head + bytes((len(values),)) + value_block(values)


@pytest.fixture(scope="module")
def stand_in(backend: BackendInfo) -> Iterator[AttributesBackend]:
    relay = AttributesBackend(backend.host, backend.port).start()
    yield relay
    relay.stop()


@pytest.fixture(scope="module")
def mysql8_proxy(backend: BackendInfo, stand_in: AttributesBackend) -> Iterator[RunningProxy]:
    behind = BackendInfo(
        backend.host, stand_in.port, backend.admin_user, backend.admin_password, None
    )
    proxy = start_proxy(behind)
    yield proxy
    proxy.stop()


@pytest.fixture
def client(mysql8_proxy: RunningProxy, stand_in: AttributesBackend) -> Iterator[RawClient]:
    with RawClient.connect(
        mysql8_proxy.port, APP.user, APP.password, TEST_DB, QUERY_ATTRIBUTES
    ) as raw:
        stand_in.commands.clear()
        yield raw


def rows(payloads: list[bytes]) -> list[bytes]:
    """A text or binary result's row packets (the definitions and EOFs left out)."""
    count = payloads[0][0]
    return [p for p in payloads[1 + count :] if p[:1] not in (b"\xfe", b"\xff")]


def test_in_front_of_mariadb_query_attributes_are_never_offered(
    proxy: RunningProxy, backend: BackendInfo
) -> None:
    for port in (proxy.port, backend.port):
        with RawClient.connect(port, APP.user, APP.password, TEST_DB, QUERY_ATTRIBUTES) as raw:
            assert not raw.server_capabilities & QUERY_ATTRIBUTES
            assert not raw.capabilities & QUERY_ATTRIBUTES


def test_in_front_of_a_backend_that_has_them_they_are_offered(client: RawClient) -> None:
    assert client.server_capabilities & QUERY_ATTRIBUTES
    assert client.capabilities & QUERY_ATTRIBUTES


def test_a_query_with_attributes_reaches_the_backend_unchanged(
    client: RawClient, stand_in: AttributesBackend
) -> None:
    command = query_with_attributes("SELECT CONCAT('a', 'b') AS ab")
    client.send(command)
    answer = client.results()
    assert rows(answer) == [lenenc(b"ab")]
    assert stand_in.commands == [command]


def test_an_ml_statement_is_found_after_its_attributes(
    client: RawClient, stand_in: AttributesBackend
) -> None:
    command = query_with_attributes(f"SELECT {SENTIMENT}('I love it', 'en') AS s")
    client.send(command)
    with_attributes = rows(client.results())
    plain = rows(query_without_attributes(client, f"SELECT {SENTIMENT}('I love it', 'en') AS s"))
    assert with_attributes == plain and len(plain) == 1
    assert plain[0][1:] in (b"POSITIVE", b"NEGATIVE", b"NEUTRAL", b"MIXED")
    # What the proxy wrote itself carries an empty block; the client's went nowhere.
    assert command not in stand_in.commands
    queries = [c for c in stand_in.commands if c[:1] == b"\x03"]
    assert queries and all(c[1:3] == b"\x00\x01" for c in queries)


def test_a_prepared_statement_with_attributes_is_relayed_unchanged(
    client: RawClient, stand_in: AttributesBackend
) -> None:
    statement, _ = client.prepare("SELECT CONCAT(?, '!') AS v")
    command = execute_with_attributes(statement, [b"hi"])
    client.send(command)
    answer = client.results()
    assert answer[-2][-4:] == lenenc(b"hi!")
    assert command in stand_in.commands


def test_an_ml_prepared_statement_reads_its_parameters_before_the_attributes(
    client: RawClient,
) -> None:
    statement, _ = client.prepare(f"SELECT {SENTIMENT}(?, 'en') AS s")
    client.send(execute_with_attributes(statement, [b"I hate it"]))
    prepared = client.results()
    plain = rows(query_without_attributes(client, f"SELECT {SENTIMENT}('I hate it', 'en') AS s"))
    assert prepared[-2][-len(plain[0]) :] == plain[0]
