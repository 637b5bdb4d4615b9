"""Stopping and watching an ML statement while the proxy waits for its model (issue 12).

A slow ``python:`` model (tests.support.slow_models: 0.3 s per batch, one request in flight,
20 batches for the statement below: about 6 s) stands for a real service. The model
records each batch's start, so "no request starts after the KILL" is counted where the
requests arrive. The oracles: the statement's answers are switchable_backend's; the
statement's progress is the share of batches the model has answered.

Covered: KILL QUERY by proxy id and by backend thread id (and a user without the
privilege, refused as the backend refuses it), KILL CONNECTION, a client that vanishes,
proxy shutdown, a prepared ML statement; SHOW [FULL] PROCESSLIST during inference; the
MariaDB progress reports a client that asks for them receives, read from the socket.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeAlias

import mysql.connector
import pymysql
import pytest
from pymysql.constants import COMMAND

from proxy.ml.activity import CLIENT_PROGRESS, PROGRESS_STATE
from proxy.upstream.internal import decode_text_row
from proxy.wire.packets import Progress, parse_progress
from tests.conftest import APP, OTHER, TEST_DB, RunningProxy, admin_connect, start_proxy, wait_until
from tests.support import slow_models, switchable_backend
from tests.support.backend import BackendInfo

Connection: TypeAlias = "pymysql.Connection[Any]"
Outcome: TypeAlias = tuple[str, Any]

MODEL = "python:tests.support.slow_models:sentiment_async"
TABLE = "cancel_texts"
ROWS = 500  # distinct texts: 20 batches of 25, and a lookup table (over 256 answers)
BATCHES = ROWS // 25
SECONDS_PER_BATCH = 0.3
STATEMENT = f"SELECT id, aws_comprehend_detect_sentiment(txt, 'en') FROM {TABLE} ORDER BY id"
LOOKUP_TABLE = "_mlproxy_ml_0"  # the statement's one call site's table (proxy.ml.answers)

ER_KILL_DENIED = 1095
ER_NO_SUCH_TABLE = 1146
ER_QUERY_INTERRUPTED = 1317
ER_SERVER_SHUTDOWN = 1053
CR_SERVER_LOST = 2013
#: The issue's bound: a KILL ends the statement within a second.
WITHIN = 1.0


@pytest.fixture(scope="module")
def texts(backend: BackendInfo) -> Iterator[None]:
    with admin_connect(backend, database=TEST_DB) as admin, admin.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS {TABLE}")
        cur.execute(f"CREATE TABLE {TABLE} (id INT PRIMARY KEY, txt VARCHAR(100))")
        cur.executemany(
            f"INSERT INTO {TABLE} VALUES (%s, %s)", [(i, f"text number {i}") for i in range(ROWS)]
        )
    yield
    with admin_connect(backend, database=TEST_DB) as admin, admin.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS {TABLE}")


@pytest.fixture(scope="module")
def slow_proxy(backend: BackendInfo, texts: None) -> Iterator[RunningProxy]:
    proxy = start_proxy(backend, comprehend_backend=MODEL, ml_max_in_flight=1, ml_cache_entries=0)
    yield proxy
    proxy.stop()


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    slow_models.reset(SECONDS_PER_BATCH)
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="cancel-test") as executor:
        yield executor


@pytest.fixture
def opened() -> Iterator[list[Any]]:
    """Connections a test opens; closed afterwards, killed or not."""
    connections: list[Any] = []
    yield connections
    for connection in connections:
        with contextlib.suppress(Exception):
            connection.close()


def outcome(connection: Connection, sql: str) -> Outcome:
    """What a statement gave the client: ("ok", rows) or ("error", code)."""
    try:
        with connection.cursor() as cur:
            cur.execute(sql)
            return "ok", tuple(cur.fetchall())
    except pymysql.err.MySQLError as exc:
        return "error", exc.args[0]


def expected_rows(limit: int = ROWS) -> tuple[tuple[int, str], ...]:
    return tuple((i, switchable_backend.answer(f"text number {i}")[0]) for i in range(limit))


def start_statement(pool: ThreadPoolExecutor, victim: Connection) -> Future[Outcome]:
    """Run the slow statement in a thread; return once the model works on it."""
    future = pool.submit(outcome, victim, STATEMENT)
    assert wait_until(lambda: slow_models.started() >= 1, within=10), future
    return future


def backend_thread(connection: Connection) -> int:
    with connection.cursor() as cur:
        cur.execute("SELECT CONNECTION_ID()")
        (thread_id,) = cur.fetchone()
    return int(thread_id)


def timed_kill(killer: Connection, target: int, future: Future[Outcome]) -> dict[str, Any]:
    """KILL QUERY ``target``; what the victim got, how soon, and requests after it."""
    sent = time.monotonic()
    kill = outcome(killer, f"KILL QUERY {target}")
    answered = time.monotonic()
    victim = future.result(timeout=10)
    ended = time.monotonic()
    time.sleep(3 * SECONDS_PER_BATCH)  # time for requests that would still start
    return {
        "kill": kill,
        "victim": victim,
        "seconds": ended - sent,
        "started_after_kill": slow_models.started_after(answered),
        "batches_started": slow_models.started(),
    }


def assert_stopped(result: dict[str, Any]) -> None:
    assert result["kill"] == ("ok", ())
    assert result["victim"] == ("error", ER_QUERY_INTERRUPTED)
    assert result["seconds"] < WITHIN, result
    assert result["started_after_kill"] == 0, result
    assert result["batches_started"] < BATCHES, result


def assert_session_goes_on(victim: Connection) -> None:
    """The same backend session, no lookup table left, and the next ML statement right."""
    assert outcome(victim, f"SELECT COUNT(*) FROM {LOOKUP_TABLE}") == ("error", ER_NO_SUCH_TABLE)
    slow_models.reset(0)
    assert outcome(victim, STATEMENT + " LIMIT 30") == ("ok", expected_rows(30))


# -- KILL QUERY ------------------------------------------------------------------------------


def test_kill_query_by_proxy_id_stops_the_ml_statement_at_once(
    slow_proxy: RunningProxy, pool: ThreadPoolExecutor, opened: list[Any]
) -> None:
    victim, killer = slow_proxy.connect(), slow_proxy.connect()
    opened += [victim, killer]
    thread_id = backend_thread(victim)
    future = start_statement(pool, victim)
    result = timed_kill(killer, victim.thread_id(), future)
    assert_stopped(result)
    assert backend_thread(victim) == thread_id
    assert_session_goes_on(victim)
    print(f"KILL QUERY -> 1317 in {result['seconds'] * 1000:.1f} ms, 0 requests after")


def test_kill_query_by_backend_thread_id_from_the_process_list(
    slow_proxy: RunningProxy, pool: ThreadPoolExecutor, opened: list[Any]
) -> None:
    """The id a client reads from SHOW PROCESSLIST (the backend's) stops it too."""
    victim, killer = slow_proxy.connect(), slow_proxy.connect()
    opened += [victim, killer]
    future = start_statement(pool, victim)
    with killer.cursor() as cur:
        cur.execute("SHOW FULL PROCESSLIST")
        (listed,) = [row[0] for row in cur.fetchall() if row[7] == STATEMENT]
    assert listed == backend_thread_of(slow_proxy, victim)
    assert_stopped(timed_kill(killer, listed, future))
    assert_session_goes_on(victim)


def backend_thread_of(proxy: RunningProxy, connection: Connection) -> int:
    assert proxy.server is not None and proxy.server.ctx is not None
    backend = proxy.server.ctx.sessions[connection.thread_id()].backend
    assert backend is not None
    return backend.thread_id


def test_kill_query_without_the_privilege_leaves_the_statement_running(
    slow_proxy: RunningProxy, pool: ThreadPoolExecutor, opened: list[Any]
) -> None:
    """Another user gets the backend's 1095 and the statement runs on to its answers."""
    victim, intruder = slow_proxy.connect(APP), slow_proxy.connect(OTHER)
    opened += [victim, intruder]
    slow_models.reset(0.05)
    future = start_statement(pool, victim)
    assert outcome(intruder, f"KILL QUERY {victim.thread_id()}") == ("error", ER_KILL_DENIED)
    assert future.result(timeout=30) == ("ok", expected_rows())


def test_kill_query_ends_a_wait_in_backoff(
    backend: BackendInfo, texts: None, pool: ThreadPoolExecutor
) -> None:
    """A service that is down: the engine retries with exponential backoff (up to 2 s a
    wait, 30 attempts here). A KILL QUERY ends the wait at once."""
    proxy = start_proxy(
        backend,
        comprehend_backend="python:tests.support.slow_models:unavailable",
        ml_max_attempts=30,
    )
    victim, killer = proxy.connect(), proxy.connect()
    try:
        future = pool.submit(outcome, victim, STATEMENT)
        assert wait_until(lambda: slow_models.started() >= 6 * 8, within=20)  # waits of ~1 s
        result = timed_kill(killer, victim.thread_id(), future)
        assert result["kill"] == ("ok", ())
        assert result["victim"] == ("error", ER_QUERY_INTERRUPTED)
        assert result["seconds"] < WITHIN and result["started_after_kill"] == 0, result
    finally:
        victim.close()
        killer.close()
        proxy.stop()


# -- KILL CONNECTION, a vanished client, shutdown --------------------------------------------


@pytest.mark.parametrize("named_by", ["proxy id", "backend thread id"])
def test_kill_connection_ends_the_ml_statement_and_the_connection(
    slow_proxy: RunningProxy,
    backend: BackendInfo,
    pool: ThreadPoolExecutor,
    opened: list[Any],
    named_by: str,
) -> None:
    victim, killer = slow_proxy.connect(), slow_proxy.connect()
    opened += [victim, killer]
    thread_id = backend_thread(victim)
    target = victim.thread_id() if named_by == "proxy id" else thread_id
    future = start_statement(pool, victim)
    sent = time.monotonic()
    assert outcome(killer, f"KILL CONNECTION {target}") == ("ok", ())
    answered = time.monotonic()
    kind, code = future.result(timeout=10)
    assert (kind, code) == ("error", CR_SERVER_LOST)
    assert time.monotonic() - sent < WITHIN
    assert wait_until(lambda: victim.thread_id() not in sessions(slow_proxy))
    assert not backend_thread_exists(backend, thread_id)
    time.sleep(3 * SECONDS_PER_BATCH)
    assert slow_models.started_after(answered) == 0


def sessions(proxy: RunningProxy) -> dict[int, Any]:
    assert proxy.server is not None and proxy.server.ctx is not None
    return proxy.server.ctx.sessions


def backend_thread_exists(backend: BackendInfo, thread_id: int) -> bool:
    with admin_connect(backend) as admin, admin.cursor() as cur:
        cur.execute(
            "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = %s", (thread_id,)
        )
        (count,) = cur.fetchone()
    return bool(count)


def test_a_client_that_vanishes_stops_its_ml_statement(
    slow_proxy: RunningProxy, opened: list[Any], pool: ThreadPoolExecutor
) -> None:
    """The client sends the statement and closes its socket without reading: the proxy
    notices at once and no request starts after."""
    victim = slow_proxy.connect(ssl_disabled=True)
    opened.append(victim)
    session_id = victim.thread_id()
    victim._execute_command(COMMAND.COM_QUERY, STATEMENT)
    assert wait_until(lambda: slow_models.started() >= 1, within=10)
    sock: socket.socket = victim._sock
    sock.shutdown(socket.SHUT_RDWR)
    sock.close()
    assert wait_until(lambda: session_id not in sessions(slow_proxy), within=WITHIN)
    gone = time.monotonic()
    time.sleep(3 * SECONDS_PER_BATCH)
    assert slow_models.started_after(gone) == 0
    assert slow_models.started() < BATCHES


def test_shutdown_stops_an_ml_statement_without_waiting_for_the_model(
    backend: BackendInfo, texts: None, pool: ThreadPoolExecutor
) -> None:
    """Shutdown waits for running statements (up to shutdown_timeout, 30 s here), but an
    ML statement stops waiting for its model at once: 1053, as the server's own."""
    proxy = start_proxy(backend, comprehend_backend=MODEL, ml_max_in_flight=1, shutdown_timeout=30)
    victim = proxy.connect()
    stopping = threading.Thread(target=proxy.stop)
    try:
        future = start_statement(pool, victim)
        started = time.monotonic()
        stopping.start()
        assert future.result(timeout=10) == ("error", ER_SERVER_SHUTDOWN)
        stopping.join(20)
        assert not stopping.is_alive()
        assert time.monotonic() - started < 5
    finally:
        with contextlib.suppress(Exception):
            victim.close()
        if not stopping.is_alive() and stopping.ident is None:
            proxy.stop()


# -- a prepared ML statement -----------------------------------------------------------------


def test_kill_query_stops_a_prepared_ml_statement(
    slow_proxy: RunningProxy, pool: ThreadPoolExecutor, opened: list[Any]
) -> None:
    """COM_STMT_EXECUTE of a statement with a call (mysql-connector's prepared cursor)."""
    victim = mysql.connector.connect(
        host=slow_proxy.host,
        port=slow_proxy.port,
        user=APP.user,
        password=APP.password,
        database=TEST_DB,
    )
    killer = slow_proxy.connect()
    opened += [victim, killer]

    def execute() -> Outcome:
        cursor = victim.cursor(prepared=True)
        try:
            cursor.execute(STATEMENT.replace("ORDER BY id", "WHERE id >= ? ORDER BY id"), (0,))
            return "ok", tuple(cursor.fetchall())
        except mysql.connector.Error as exc:
            return "error", exc.errno
        finally:
            cursor.close()

    victim_id = victim.connection_id
    assert victim_id is not None
    future = pool.submit(execute)
    assert wait_until(lambda: slow_models.started() >= 1, within=10)
    assert_stopped(timed_kill(killer, victim_id, future))
    slow_models.reset(0)
    again = pool.submit(execute).result(timeout=30)
    assert again[0] == "ok" and [tuple(row) for row in again[1]] == list(expected_rows())


# -- SHOW PROCESSLIST ------------------------------------------------------------------------


def processlist_row(reader: Connection, thread_id: int, full: bool) -> dict[str, Any]:
    with reader.cursor() as cur:
        cur.execute(f"SHOW {'FULL ' if full else ''}PROCESSLIST")
        names = [d[0] for d in cur.description]
        rows = [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
    (row,) = [r for r in rows if r["Id"] == thread_id]
    return row


def process_info_row(reader: Connection, thread_id: int) -> dict[str, Any]:
    """The same row from COM_PROCESS_INFO (the protocol command old tools send)."""
    reader._execute_command(COMMAND.COM_PROCESS_INFO, "")
    reader._read_query_result()
    result = reader._result
    assert result is not None and result.description is not None and result.rows is not None
    names = [d[0] for d in result.description]
    (row,) = [dict(zip(names, r, strict=True)) for r in result.rows if r[0] == thread_id]
    return row


def test_processlist_shows_the_statement_its_state_and_a_growing_progress(
    slow_proxy: RunningProxy, pool: ThreadPoolExecutor, opened: list[Any]
) -> None:
    victim, reader = slow_proxy.connect(), slow_proxy.connect()
    opened += [victim, reader]
    thread_id = backend_thread(victim)
    future = start_statement(pool, victim)
    seen: list[float] = []
    try:
        while len(seen) < 3 and not future.done():
            answered_before = slow_models.finished()
            row = processlist_row(reader, thread_id, full=True)
            answered_after = slow_models.finished()
            assert (row["Command"], row["State"], row["Info"]) == (
                "Query",
                PROGRESS_STATE,
                STATEMENT,
            )
            # The oracle: the share of the statement's batches the model has answered.
            share = 100 / BATCHES
            assert answered_before * share <= row["Progress"] <= answered_after * share
            if not seen or row["Progress"] > seen[-1]:
                seen.append(row["Progress"])
            time.sleep(SECONDS_PER_BATCH / 2)
        short = processlist_row(reader, thread_id, full=False)
        assert short["Info"] == STATEMENT[:100]
        assert short["State"] == PROGRESS_STATE
        same = ("Id", "User", "Host", "db", "Command", "State", "Info")  # (not the clock's)
        info = process_info_row(reader, thread_id)
        assert {k: info[k] for k in same} == {k: short[k] for k in same}
    finally:
        outcome(reader, f"KILL QUERY {victim.thread_id()}")
        future.result(timeout=10)
    assert len(seen) == 3 and 0 <= seen[0] < seen[1] < seen[2] < 100, seen
    assert processlist_row(reader, thread_id, full=True)["Command"] == "Sleep"  # over


# -- MariaDB progress reports ----------------------------------------------------------------


def read_packet(connection: Connection) -> tuple[int, bytes]:
    """One packet from a PyMySQL connection's socket: (sequence id, payload)."""
    header = connection._read_bytes(4)
    length = int.from_bytes(header[:3], "little")
    return header[3], connection._read_bytes(length)


def query_with_reports(connection: Connection, sql: str) -> tuple[list[Progress], list[bytes]]:
    """Send ``sql`` and read its response packet by packet (response_with_reports)."""
    connection._execute_command(COMMAND.COM_QUERY, sql)
    return response_with_reports(connection)


def response_with_reports(connection: Connection) -> tuple[list[Progress], list[bytes]]:
    """A command's response, packet by packet: the progress reports, then the result's
    payloads (sequence ids checked: consecutive from 1, as clients check)."""
    reports: list[Progress] = []
    sequence = iter(range(1, 1 << 20))

    def packet() -> bytes:
        seq, payload = read_packet(connection)
        assert seq == next(sequence) & 0xFF
        return payload

    while (report := parse_progress(first := packet())) is not None:
        reports.append(report)
    if first[0] in (0x00, 0xFF):  # OK or ERR
        return reports, [first]
    payloads = [first, *(packet() for _ in range(first[0] + 1))]  # definitions and EOF
    while True:
        payloads.append(payload := packet())
        assert parse_progress(payload) is None, "a progress report inside the result"
        if payload[0] == 0xFF or (payload[0] == 0xFE and len(payload) < 9):
            return reports, payloads


def test_a_client_that_asks_gets_progress_reports_then_its_result(
    slow_proxy: RunningProxy, backend: BackendInfo, opened: list[Any], pool: ThreadPoolExecutor
) -> None:
    if "mariadb" not in server_version(backend).lower():
        pytest.skip("progress reports are MariaDB's")
    asking = slow_proxy.connect(client_flag=CLIENT_PROGRESS, ssl_disabled=True)
    opened.append(asking)
    assert outcome(asking, "SET SESSION progress_report_time = 1") == ("ok", ())
    slow_models.reset(0.25)  # 20 batches: 5 s, about 4 reports
    reports, payloads = query_with_reports(asking, STATEMENT)
    assert len(reports) >= 2
    assert all((r.stage, r.max_stage, r.state) == (1, 1, PROGRESS_STATE) for r in reports)
    percents = [r.percent for r in reports]
    assert percents == sorted(percents) and 0 < percents[-1] < 100
    # The result after them is the statement's: its rows, in the text protocol.
    columns = payloads[0][0]
    values = [decode_text_row(p, columns) for p in payloads[columns + 2 : -1]]
    assert values == [(str(i).encode(), label.encode()) for i, label in expected_rows()]
    assert outcome(asking, "SELECT 1") == ("ok", ((1,),))


def test_a_prepared_ml_statement_gets_progress_reports_then_binary_rows(
    slow_proxy: RunningProxy, backend: BackendInfo, opened: list[Any]
) -> None:
    """COM_STMT_EXECUTE: the reports, then the binary-protocol result numbered after them."""
    if "mariadb" not in server_version(backend).lower():
        pytest.skip("progress reports are MariaDB's")
    asking = slow_proxy.connect(client_flag=CLIENT_PROGRESS, ssl_disabled=True)
    opened.append(asking)
    outcome(asking, "SET SESSION progress_report_time = 1")
    statement = STATEMENT.replace("ORDER BY id", "WHERE id >= ? ORDER BY id")
    asking._execute_command(COMMAND.COM_STMT_PREPARE, statement)
    prepared = read_packet(asking)[1]
    statement_id, columns, params = struct.unpack_from("<IHH", prepared, 1)
    for _ in range(params + 1 + columns + 1):  # parameter and column definitions, EOFs
        read_packet(asking)
    slow_models.reset(0.15)  # 20 batches: 3 s
    value = struct.pack("<q", 100)  # id >= 100: 400 rows
    execute = struct.pack("<IBI", statement_id, 0, 1) + b"\x00\x01\x08\x00" + value
    asking._execute_command(COMMAND.COM_STMT_EXECUTE, execute)
    reports, payloads = response_with_reports(asking)
    assert len(reports) >= 2 and payloads[0] == bytes([columns]) == b"\x02"
    rows = payloads[columns + 2 : -1]
    assert len(rows) == ROWS - 100 and all(row[0] == 0 for row in rows)  # binary rows
    assert outcome(asking, "SELECT 1") == ("ok", ((1,),))


def test_an_error_after_progress_reports_has_the_next_sequence_id(
    slow_proxy: RunningProxy, backend: BackendInfo, opened: list[Any]
) -> None:
    """A KILL QUERY after the reports (one a second, the KILL at 2.5 s): the ERR
    follows them in sequence."""
    if "mariadb" not in server_version(backend).lower():
        pytest.skip("progress reports are MariaDB's")
    asking = slow_proxy.connect(client_flag=CLIENT_PROGRESS, ssl_disabled=True)
    killer = slow_proxy.connect()
    opened += [asking, killer]
    outcome(asking, "SET SESSION progress_report_time = 1")
    timer = threading.Timer(2.5, lambda: outcome(killer, f"KILL QUERY {asking.thread_id()}"))
    timer.start()
    try:
        reports, payloads = query_with_reports(asking, STATEMENT)
    finally:
        timer.join()
    assert len(reports) >= 1  # (two, unless the machine is very slow)
    assert payloads[0][:3] == b"\xff" + ER_QUERY_INTERRUPTED.to_bytes(2, "little")
    assert outcome(asking, "SELECT 1") == ("ok", ((1,),))


def server_version(backend: BackendInfo) -> str:
    with admin_connect(backend) as admin:
        return str(admin.get_server_info())
