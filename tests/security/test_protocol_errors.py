"""Malformed input and vanishing peers, case by case: the reproductions of the protocol
fuzzer's findings (tests/security/test_fuzz_protocol.py runs the general search).

Each case must end with an ERR packet with the code the server would give (or the client
having left), one log line with the reason, and no traceback.
"""

from __future__ import annotations

import logging
import struct
import time
from collections.abc import Callable, Iterator

import pytest

from proxy.wire.scanner import Shape
from tests.conftest import APP, TEST_DB, RunningProxy, admin_connect, wait_until
from tests.support.backend import BackendInfo
from tests.support.fuzz_wire import (
    CONNECT_ATTRS,
    LOGIN_CAPS,
    Outcome,
    Wire,
    frame,
    log_in,
    parse_greeting,
)

S = "aws_comprehend_detect_sentiment"


@pytest.fixture
def proxy_log(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """The proxy's records; the test fails if any has a traceback or is an ERROR."""
    caplog.set_level(logging.INFO, logger="mlproxy.proxy")
    yield caplog
    problems = [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert not [r.getMessage() for r in problems]


@pytest.fixture
def wires() -> Iterator[list[Wire]]:
    """Connections a test opens, closed after it."""
    opened: list[Wire] = []
    yield opened
    for each in opened:
        each.close()


@pytest.fixture
def login(proxy: RunningProxy, wires: list[Wire]) -> Callable[[], Wire]:
    def open_one() -> Wire:
        wires.append(log_in(proxy.port, APP.user, APP.password, TEST_DB, 10))
        return wires[-1]

    return open_one


def error_of(payload: bytes) -> tuple[int, str]:
    assert payload[:1] == b"\xff", payload
    return int.from_bytes(payload[1:3], "little"), payload[4:9].decode()


def sessions_end(proxy: RunningProxy, before: int) -> bool:
    return wait_until(lambda: proxy.session_count() <= before)


def test_a_command_with_a_wrong_sequence_id_gets_1156_and_the_session_ends(
    proxy: RunningProxy, proxy_log: pytest.LogCaptureFixture, login: Callable[[], Wire]
) -> None:
    """The fuzzer's reproduction: ``SELECT 1`` with sequence id 7, then an ML SELECT. The
    backend got the 7, answered 1156 and closed its connection; the ML statement then
    died on the closed transport (a traceback, a bare close)."""
    client = login()
    client.send(b"\x03SELECT 1", 7)
    answer = client.closes(Outcome())
    assert [error_of(p) for p in answer.payloads] == [(1156, "08S01")] and answer.closed
    assert "Got packets out of order" in proxy_log.text
    with proxy.connect() as conn, conn.cursor() as cur:  # the proxy serves on
        cur.execute(f"SELECT {S}('I love it', 'en')")
        assert cur.fetchall() == (("POSITIVE",),)


def test_a_backend_that_closes_under_a_session_closes_it_at_the_next_ml_statement(
    backend: BackendInfo, proxy_log: pytest.LogCaptureFixture, login: Callable[[], Wire]
) -> None:
    """As when the server itself closes: no packet, the connection closed (the client's
    library reports 2013; an ERR carrying 2013 is malformed to libmariadb, see below)."""
    client = login()
    client.send(b"\x03SELECT CONNECTION_ID()")
    thread = client.read_response(Shape.RESULT, Outcome()).payloads[3]  # the row
    with admin_connect(backend) as admin, admin.cursor() as cur:
        cur.execute(f"KILL CONNECTION {int(thread[1:])}")
    time.sleep(0.2)
    client.send(b"\x03" + f"SELECT {S}('I love it', 'en')".encode())
    answer = client.closes(Outcome())
    assert answer.payloads == [] and answer.closed


@pytest.mark.parametrize("ml", [False, True], ids=["plain", "ml"])
def test_a_session_the_backend_ends_is_lost_to_libmariadb_as_directly(
    proxy: RunningProxy, backend: BackendInfo, ml: bool
) -> None:
    """MariaDB's transaction_timeout test through the proxy: the server ends an idle
    transaction's session; the next statement fails as directly (2006 or 2013), never
    with 2027 "malformed packet" (libmariadb's reading of an ERR with a client code)."""
    mariadb = pytest.importorskip("mariadb")

    def next_statement_error(port: int) -> int:
        conn = mariadb.connect(
            host="127.0.0.1", port=port, user=APP.user, password=APP.password, database=TEST_DB
        )
        cur = conn.cursor()
        cur.execute("SET SESSION idle_transaction_timeout = 1")
        cur.execute("BEGIN")
        time.sleep(2)
        with pytest.raises(mariadb.Error) as failed:
            cur.execute(f"SELECT {S}('I love it', 'en')" if ml else "SELECT 1")
        return int(failed.value.errno)

    assert next_statement_error(backend.port) in (2006, 2013)
    assert next_statement_error(proxy.port) in (2006, 2013)


def test_change_user_abandoned_after_full_authentication_is_asked_for_logs_no_traceback(
    proxy: RunningProxy, proxy_log: pytest.LogCaptureFixture, login: Callable[[], Wire]
) -> None:
    """The fuzzer's reproduction: COM_CHANGE_USER with caching_sha2_password, and the
    client leaves after ``01 04`` (an IncompleteReadError traceback before)."""
    before = proxy.session_count()
    client = login()
    client.send(
        b"\x11"
        + APP.user.encode()
        + b"\x00\x14"
        + bytes(20)
        + TEST_DB.encode()
        + b"\x00\x2d\x00caching_sha2_password\x00"
        + CONNECT_ATTRS
    )
    assert client.read_packet() == (1, b"\x01\x04")
    client.leave()
    assert sessions_end(proxy, before)
    assert "client went away mid-command" in proxy_log.text


def test_a_malformed_change_user_gets_1835_and_ends_the_session(
    proxy: RunningProxy, proxy_log: pytest.LogCaptureFixture, login: Callable[[], Wire]
) -> None:
    """Connection attributes whose length runs past the packet (a ValueError traceback
    before); a failed change of user ends the session, as any failed change does."""
    client = login()
    client.send(b"\x11app\x00\x00" + TEST_DB.encode() + b"\x00\x2d\x00\x00\xfc\xff\xff")
    answer = client.closes(Outcome())
    assert [error_of(p) for p in answer.payloads] == [(1835, "HY000")] and answer.closed
    assert "refused a malformed command (0x11)" in proxy_log.text


def test_a_short_handshake_response_without_the_ssl_flag_is_refused_at_once(
    proxy: RunningProxy, proxy_log: pytest.LogCaptureFixture, wires: list[Wire]
) -> None:
    """32 bytes is an SSLRequest's length; without CLIENT_SSL it is a login with no user
    name, refused now (before: the proxy waited for a TLS handshake, then closed bare)."""
    client = Wire(proxy.port, 10)
    wires.append(client)
    parse_greeting(client.read_packet()[1])
    started = time.monotonic()
    client.send(struct.pack("<IIB23s", LOGIN_CAPS, 1 << 24, 45, b""), 1)
    answer = client.closes(Outcome())
    assert time.monotonic() - started < 2
    assert [error_of(p)[0] for p in answer.payloads] == [1835] and answer.closed


@pytest.mark.parametrize(
    "payload",
    [
        b"\x17\x01",  # COM_STMT_EXECUTE of one byte
        b"\x18",  # COM_STMT_SEND_LONG_DATA without a statement
        b"\x19",
        b"\x1a",
        b"\x0c\x01",  # COM_PROCESS_KILL of one byte
        b"\x03",  # an empty COM_QUERY
        b"\x16",
        b"\x04",
        b"\xff\xff",
    ],
    ids=repr,
)
def test_short_commands_are_answered_and_the_session_goes_on(
    proxy_log: pytest.LogCaptureFixture, login: Callable[[], Wire], payload: bytes
) -> None:
    client = login()
    client.send_raw(frame(payload, 0) + frame(b"\x0e", 0))  # the command, then a ping
    shape = {0x18: None, 0x19: None, 0x04: Shape.FIELDS}.get(payload[0], Shape.SINGLE)
    answer = client.read_response(shape or Shape.SINGLE, Outcome())
    if shape is not None:
        client.read_response(Shape.SINGLE, answer)
    assert not answer.closed and answer.payloads[-1][:1] == b"\x00"  # the ping's OK
