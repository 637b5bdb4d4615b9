"""Memory on the command path is bounded (issue 10, item 4): what a client sends is relayed
as it arrives, and what the proxy must hold (an ML statement, an ML prepared statement's
long data) is capped by ``ml_max_statement_bytes``.

The proxy runs as a subprocess (``python -m proxy serve``), so its RSS is its own: the
64 MiB statements the client builds do not count. Peak RSS is the kernel's high-water mark
(VmHWM, reset through /proc/PID/clear_refs before each case); what stays after is VmRSS.
Before the fix a 64 MiB COM_QUERY took the proxy's peak up by about 214 MiB, four at once
by about 760 MiB (with about 530 MiB still held afterwards), and 200 x 1 MiB of long data
to an ML prepared statement by about 395 MiB.
"""

from __future__ import annotations

import re
import struct
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pymysql
import pytest
from pymysql.constants import COMMAND

from tests.backend import BackendInfo
from tests.conftest import admin_connect
from tests.test_lifecycle import ProxyProcess, backend_url, free_port

pytestmark = pytest.mark.slow

MiB = 1 << 20
BIG = 64 * MiB
NEEDED_MAX_ALLOWED_PACKET = 256 * MiB
TIMEOUT = 120
ML = "aws_comprehend_detect_sentiment"
ER_NET_PACKET_TOO_LARGE = 1153
ER_SP_DOES_NOT_EXIST = 1305
CR_SERVER_LOST = 2013

#: Peak growth the proxy may show for one streamed 64 MiB statement, and for four at once:
#: a few socket reads and write buffers per session, not the statement.
ONE_PEAK_BOUND = 24 * MiB
FOUR_PEAK_BOUND = 48 * MiB
#: What may stay held after the statements (and a settling pause).
RETAINED_BOUND = 16 * MiB


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


@pytest.fixture(scope="module")
def proxy_process(backend: BackendInfo, big_packets_allowed: None) -> Iterator[ProxyProcess]:
    process = ProxyProcess(
        ["--backend", backend_url(backend), "--listen", f"127.0.0.1:{free_port()}", "--no-tls"]
    ).wait_ready()
    yield process
    process.stop()


class Memory:
    """The proxy process's resident memory, from /proc."""

    def __init__(self, pid: int) -> None:
        self.pid = pid

    def _status(self, field: str) -> int:
        text = Path(f"/proc/{self.pid}/status").read_text()
        match = re.search(rf"^{field}:\s+(\d+) kB", text, re.MULTILINE)
        assert match is not None, field
        return int(match.group(1)) * 1024

    def rss(self) -> int:
        return self._status("VmRSS")

    def reset_peak(self) -> None:
        """Start a new high-water mark at the current RSS (Linux: clear_refs 5)."""
        Path(f"/proc/{self.pid}/clear_refs").write_text("5")

    def peak(self) -> int:
        return self._status("VmHWM")


@pytest.fixture
def memory(proxy_process: ProxyProcess) -> Memory:
    return Memory(proxy_process.process.pid)


def connect(process: ProxyProcess) -> pymysql.Connection[Any]:
    return process.connect(
        max_allowed_packet=NEEDED_MAX_ALLOWED_PACKET, read_timeout=TIMEOUT, write_timeout=TIMEOUT
    )


def big_select(size: int) -> bytes:
    """A plain statement of ``size`` bytes whose answer proves it arrived whole."""
    head, tail = b"SELECT LENGTH('", b"'), 'end'"
    return head + b"x" * (size - len(head) - len(tail)) + tail


def run_big_select(process: ProxyProcess, size: int) -> None:
    with connect(process) as conn, conn.cursor() as cur:
        sql = big_select(size)
        cur.execute(sql)
        assert cur.fetchone() == (size - len(b"SELECT LENGTH('") - len(b"'), 'end'"), "end")
        cur.execute("SELECT 'after'")  # the session is still in step
        assert cur.fetchone() == ("after",)


def measured(memory: Memory, action: Callable[[], None]) -> tuple[int, int]:
    """(peak growth during ``action``, RSS growth after it)."""
    before = memory.rss()
    memory.reset_peak()
    action()
    return memory.peak() - before, memory.rss() - before


def warm_up(process: ProxyProcess) -> None:
    """One ordinary statement and one big one, so the first case does not pay for imports."""
    run_big_select(process, 2 * MiB)


def test_one_64_mib_statement_is_relayed_not_held(
    proxy_process: ProxyProcess, memory: Memory
) -> None:
    warm_up(proxy_process)
    peak, retained = measured(memory, lambda: run_big_select(proxy_process, BIG))
    assert peak < ONE_PEAK_BOUND, f"peak grew by {peak / MiB:.0f} MiB"
    assert retained < RETAINED_BOUND, f"{retained / MiB:.0f} MiB retained"


def test_four_64_mib_statements_at_once_are_relayed_not_held(
    proxy_process: ProxyProcess, memory: Memory
) -> None:
    warm_up(proxy_process)
    errors: list[BaseException] = []

    def one() -> None:
        try:
            run_big_select(proxy_process, BIG)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    def four() -> None:
        threads = [threading.Thread(target=one) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(TIMEOUT)

    peak, retained = measured(memory, four)
    assert not errors, errors
    assert peak < FOUR_PEAK_BOUND, f"peak grew by {peak / MiB:.0f} MiB"
    assert retained < RETAINED_BOUND, f"{retained / MiB:.0f} MiB retained"


# -- ML statements: their size limit ----------------------------------------------------------


def test_a_big_statement_naming_an_ml_function_early_is_refused(
    proxy_process: ProxyProcess, memory: Memory
) -> None:
    """Over ml_max_statement_bytes (1 MiB by default) with the name in its first part: a
    clear 1153, the rest of the statement read and dropped, the session still in step."""
    sql = f"SELECT {ML}('hi', 'en'), LENGTH('".encode() + b"y" * (8 * MiB) + b"')"
    with connect(proxy_process) as conn, conn.cursor() as cur:
        with pytest.raises(pymysql.MySQLError) as caught:
            cur.execute(sql)
        code, text = caught.value.args
        assert code == ER_NET_PACKET_TOO_LARGE
        assert "ml_max_statement_bytes" in text
        cur.execute("SELECT 'after'")
        assert cur.fetchone() == ("after",)


def test_an_ml_name_past_the_examined_part_is_never_evaluated(
    proxy_process: ProxyProcess,
) -> None:
    """The name only after the first ml_max_statement_bytes: the backend gets the statement
    as it is and answers as it does for any unknown function; no model is asked."""
    sql = b"SELECT LENGTH('" + b"z" * (2 * MiB) + f"'), {ML}('hi', 'en')".encode()
    with connect(proxy_process) as conn, conn.cursor() as cur:
        calls = ml_requests(cur)
        with pytest.raises(pymysql.MySQLError) as caught:
            cur.execute(sql)
        assert caught.value.args[0] == ER_SP_DOES_NOT_EXIST
        assert ml_requests(cur) == calls
        cur.execute("SELECT 'after'")
        assert cur.fetchone() == ("after",)


def ml_requests(cur: Any) -> int:
    cur.execute("SHOW STATUS LIKE 'Aurora_ml_logical_request_cnt'")
    row = cur.fetchone()
    return int(row[1]) if row else 0


# -- COM_STMT_SEND_LONG_DATA -------------------------------------------------------------------


def prepare(conn: pymysql.Connection[Any], sql: str) -> tuple[int, int]:
    """COM_STMT_PREPARE by hand (PyMySQL has no binary protocol): (statement id, params)."""
    conn._execute_command(COMMAND.COM_STMT_PREPARE, sql)
    first = conn._read_packet()
    assert first.is_ok_packet(), first.get_all_data()
    statement, columns, params = struct.unpack_from("<IHH", first.get_all_data(), 1)
    for count in (params, columns):
        for _ in range(count + 1 if count else 0):  # definitions and their EOF
            conn._read_packet()
    return statement, params


def send_long_data(conn: pymysql.Connection[Any], statement: int, data: bytes) -> None:
    """COM_STMT_SEND_LONG_DATA for parameter 0 (no response)."""
    conn._execute_command(COMMAND.COM_STMT_SEND_LONG_DATA, struct.pack("<IH", statement, 0) + data)


def execute_error(conn: pymysql.Connection[Any], statement: int) -> tuple[int, str] | None:
    """COM_STMT_EXECUTE of a one-parameter statement whose value came as long data: the
    error it gets, or None when it answered a result."""
    types = struct.pack("<BB", 0xFC, 0)  # MYSQL_TYPE_BLOB, signed
    payload = struct.pack("<IBI", statement, 0, 1) + b"\x00" + b"\x01" + types
    conn._execute_command(COMMAND.COM_STMT_EXECUTE, payload)
    try:
        conn._read_packet()
    except pymysql.MySQLError as exc:
        return exc.args[0], exc.args[1]
    while not conn._read_packet().is_eof_packet():  # columns
        pass
    while not conn._read_packet().is_eof_packet():  # rows
        pass
    return None


def test_long_data_to_an_ml_prepared_statement_is_capped(
    proxy_process: ProxyProcess, memory: Memory
) -> None:
    """200 x 1 MiB of long data: the proxy holds at most ml_max_statement_bytes of it, and
    the execution is refused with 1153 naming the setting; the statement works again
    with long data under the cap."""
    warm_up(proxy_process)
    chunk = b"w" * MiB
    with connect(proxy_process) as conn:
        statement, params = prepare(conn, f"SELECT {ML}(?, 'en')")
        assert params == 1

        def send() -> None:
            for _ in range(200):
                send_long_data(conn, statement, chunk)

        peak, retained = measured(memory, send)
        assert peak < ONE_PEAK_BOUND, f"peak grew by {peak / MiB:.0f} MiB"
        assert retained < RETAINED_BOUND, f"{retained / MiB:.0f} MiB retained"
        error = execute_error(conn, statement)
        assert error is not None and error[0] == ER_NET_PACKET_TOO_LARGE, error
        assert "ml_max_statement_bytes" in error[1]
        send_long_data(conn, statement, b"I love it")
        assert execute_error(conn, statement) is None


# -- the backend's own limit -------------------------------------------------------------------


@pytest.fixture
def small_backend_packets(backend: BackendInfo, big_packets_allowed: None) -> Iterator[int]:
    """New backend sessions accept 4 MiB packets, for this test only."""
    small = 4 * MiB
    with admin_connect(backend) as admin, admin.cursor() as cur:
        cur.execute(f"SET GLOBAL max_allowed_packet = {small}")
    try:
        yield small
    finally:
        with admin_connect(backend) as admin, admin.cursor() as cur:
            cur.execute(f"SET GLOBAL max_allowed_packet = {NEEDED_MAX_ALLOWED_PACKET}")


def test_the_backends_max_allowed_packet_error_reaches_the_client(
    proxy_process: ProxyProcess, small_backend_packets: int
) -> None:
    """A statement over the backend's max_allowed_packet, here 20 MiB (two packets) to a
    4 MiB server: the server answers 1153 as soon as it reads the header, and closes. Its
    answer reaches the client in step, after the client's whole command; or, when the
    server's reset of the connection overtakes its answer, the client gets 2013 (a client
    connected directly then gets 2006: it is still writing). The session then ends, as the
    server ended it."""
    conn = connect(proxy_process)
    with conn.cursor() as cur, pytest.raises(pymysql.MySQLError) as caught:
        cur.execute(big_select(20 * MiB))
    code, text = caught.value.args
    server_answer = code == ER_NET_PACKET_TOO_LARGE and "max_allowed_packet" in text
    assert server_answer or code == CR_SERVER_LOST, caught.value.args
    with pytest.raises(pymysql.MySQLError), conn.cursor() as cur:
        cur.execute("SELECT 1")
    conn.close()
