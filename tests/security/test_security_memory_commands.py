"""Memory on the command path is bounded (issue 10, item 4): what a client sends is relayed
as it arrives, and what the proxy must hold (an ML statement, an ML prepared statement's
long data) is capped by ``ml_max_statement_bytes``.

The proxy runs as a subprocess (``python -m proxy serve``), so its RSS is its own: the
64 MiB statements the client builds do not count. Peak RSS is the kernel's high-water mark
(VmHWM, reset through /proc/PID/clear_refs before each case); what stays after is VmRSS.
Before the fix a 64 MiB COM_QUERY took the proxy's peak up by about 270 MiB, four at once
by about 715 MiB, and 200 x 1 MiB of long data to an ML prepared statement by about
390 MiB; now by about 3, 13 and 3.5 MiB. The other cases run a proxy in-process with a
small ml_max_statement_bytes, one command of each kind over it.
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

from tests.conftest import TEST_DB, RunningProxy, admin_connect, start_proxy
from tests.integration.test_lifecycle import ProxyProcess, backend_url, free_port
from tests.support.backend import BackendInfo

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
    assert not [line for line in process.lines if "Traceback" in line], process.lines


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


@pytest.mark.slow
def test_one_64_mib_statement_is_relayed_not_held(
    proxy_process: ProxyProcess, memory: Memory
) -> None:
    warm_up(proxy_process)
    peak, retained = measured(memory, lambda: run_big_select(proxy_process, BIG))
    assert peak < ONE_PEAK_BOUND, f"peak grew by {peak / MiB:.0f} MiB"
    assert retained < RETAINED_BOUND, f"{retained / MiB:.0f} MiB retained"


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
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


def execute(
    conn: pymysql.Connection[Any], statement: int, value: bytes | None = None
) -> tuple[int, str] | list[bytes]:
    """COM_STMT_EXECUTE of a one-parameter statement: ``value`` inline, or (None) the
    long data sent before. The error it gets, or the payloads of its binary rows."""
    types = struct.pack("<BB", 0xFC, 0)  # MYSQL_TYPE_BLOB, signed
    values = b"" if value is None else lenenc(len(value)) + value
    payload = struct.pack("<IBI", statement, 0, 1) + b"\x00" + b"\x01" + types + values
    conn._execute_command(COMMAND.COM_STMT_EXECUTE, payload)
    try:
        conn._read_packet()
    except pymysql.MySQLError as exc:
        return exc.args[0], exc.args[1]
    while not conn._read_packet().is_eof_packet():  # columns
        pass
    rows = []
    while not (packet := conn._read_packet()).is_eof_packet():
        rows.append(packet.get_all_data())
    return rows


def lenenc(value: int) -> bytes:
    if value < 251:
        return bytes((value,))
    if value < 1 << 16:
        return b"\xfc" + value.to_bytes(2, "little")
    if value < 1 << 24:
        return b"\xfd" + value.to_bytes(3, "little")
    return b"\xfe" + value.to_bytes(8, "little")


def length_of(rows: tuple[int, str] | list[bytes]) -> int:
    """The value of a one-row, one-integer binary result (``SELECT LENGTH(?)``): after the
    row's header byte and its null bitmap, a little-endian INT or BIGINT."""
    assert isinstance(rows, list) and len(rows) == 1, rows
    return int.from_bytes(rows[0][2:], "little", signed=True)


@pytest.mark.slow
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
        refused = execute(conn, statement)
        assert isinstance(refused, tuple) and refused[0] == ER_NET_PACKET_TOO_LARGE, refused
        assert "ml_max_statement_bytes" in refused[1]
        send_long_data(conn, statement, b"I love it")
        assert len(execute(conn, statement)) == 1  # one row: the statement works again


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


@pytest.mark.slow
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


# -- the same limits, small: each kind of command over ml_max_statement_bytes ------------------

SMALL = 1024


@pytest.fixture(scope="module")
def small_limit_proxy(backend: BackendInfo) -> Iterator[RunningProxy]:
    proxy = start_proxy(backend, ml_max_statement_bytes=SMALL)
    yield proxy
    proxy.stop()


def padded_ml_select(size: int) -> str:
    head, tail = f"SELECT {ML}('I love it', 'en'), LENGTH('", "')"
    return head + "p" * (size - len(head) - len(tail)) + tail


def refused_with_1153(action: Callable[[], object]) -> str:
    with pytest.raises(pymysql.MySQLError) as caught:
        action()
    code, text = caught.value.args
    assert code == ER_NET_PACKET_TOO_LARGE, caught.value.args
    return str(text)


def test_an_ml_statement_up_to_the_limit_runs_and_one_over_it_is_refused(
    small_limit_proxy: RunningProxy,
) -> None:
    with small_limit_proxy.connect() as conn, conn.cursor() as cur:
        cur.execute(padded_ml_select(SMALL))
        assert cur.fetchone() == ("POSITIVE", SMALL - len(padded_ml_select(0)))
        text = refused_with_1153(lambda: cur.execute(padded_ml_select(SMALL + 1)))
        assert f"at most {SMALL} bytes (ml_max_statement_bytes)" in text
        cur.execute("SELECT 'in step'")
        assert cur.fetchone() == ("in step",)


def test_plain_commands_over_the_limit_are_relayed(small_limit_proxy: RunningProxy) -> None:
    """A statement, a prepared statement's inline parameter and its long data, each over
    the limit, reach the backend whole."""
    with small_limit_proxy.connect() as conn:
        with conn.cursor() as cur:
            cur.execute(big_select(100 * SMALL))
            assert cur.fetchone() == (100 * SMALL - len(big_select(0)), "end")
        statement, _ = prepare(conn, "SELECT LENGTH(?)")
        assert length_of(execute(conn, statement, b"v" * (50 * SMALL))) == 50 * SMALL
        for _ in range(3):
            send_long_data(conn, statement, b"l" * (20 * SMALL))
        send_long_data(conn, statement, b"tail")
        assert length_of(execute(conn, statement)) == 60 * SMALL + 4


def test_ml_prepared_statements_over_the_limit_are_refused(
    small_limit_proxy: RunningProxy,
) -> None:
    """Preparing one, executing one with a larger inline parameter (or one that makes the
    bound statement larger), long data past the budget in small pieces: 1153 each time,
    the session in step after each."""
    with small_limit_proxy.connect() as conn:
        refused_with_1153(lambda: prepare(conn, padded_ml_select(SMALL + 1)))
        statement, _ = prepare(conn, f"SELECT {ML}(?, 'en')")
        refused = execute(conn, statement, b"I love it " * SMALL)
        assert isinstance(refused, tuple) and refused[0] == ER_NET_PACKET_TOO_LARGE, refused
        refused = execute(conn, statement, b"e" * (SMALL - 20))  # read whole; bound: over
        assert isinstance(refused, tuple) and refused[0] == ER_NET_PACKET_TOO_LARGE, refused
        assert "its parameters bound" in refused[1]
        assert len(execute(conn, statement, b"I love it")) == 1
        for _ in range(5):
            send_long_data(conn, statement, b"I love it " * 30)  # 300 bytes each
        refused = execute(conn, statement)
        assert isinstance(refused, tuple) and refused[0] == ER_NET_PACKET_TOO_LARGE, refused
        for _ in range(2):
            send_long_data(conn, statement, b"I love it " * 20)
        assert len(execute(conn, statement)) == 1  # 400 bytes (bound as 800 hex digits)
        with conn.cursor() as cur:
            cur.execute("SELECT 'in step'")
            assert cur.fetchone() == ("in step",)


def test_other_commands_over_the_limit_are_refused(small_limit_proxy: RunningProxy) -> None:
    """A command the proxy must read whole, or relays without knowing it (COM_INIT_DB,
    COM_CHANGE_USER...): 1153 after the whole command is read; the session goes on."""
    with small_limit_proxy.connect() as conn:
        conn._execute_command(COMMAND.COM_INIT_DB, "d" * (2 * SMALL))
        refused_with_1153(conn._read_packet)
        with conn.cursor() as cur:
            cur.execute("SELECT DATABASE()")
            assert cur.fetchone() == (TEST_DB,)
