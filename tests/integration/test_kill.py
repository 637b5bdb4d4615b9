"""KILL through the proxy: proxy connection ids are translated to backend thread ids.

A client knows only the id from the proxy's greeting (``conn.thread_id()``); the proxy
maps it to the session's backend thread and runs the KILL on the issuer's own backend
connection, so the backend still checks privileges. Backend ids (from SHOW PROCESSLIST)
pass through unchanged. The oracle throughout is the same KILL made directly.
Also covered: a client that vanishes while its statement runs.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeAlias

import pymysql
import pytest
from pymysql.constants import COMMAND

from proxy.session.kill import PROXY_ID_BASE
from tests.conftest import APP, OTHER, TEST_DB, Account, RunningProxy, admin_connect, wait_until
from tests.support.backend import BackendInfo

Connection: TypeAlias = "pymysql.Connection[Any]"
Outcome: TypeAlias = tuple[str, Any]

ER_NO_SUCH_THREAD = 1094
ER_KILL_DENIED = 1095
ER_QUERY_INTERRUPTED = 1317
ER_CONNECTION_KILLED = 1927
CR_SERVER_LOST = 2013

#: Long enough that only a KILL ends it within the test's waits.
LONG_SLEEP = 30
#: How long a killed statement or connection may take to go away.
WITHIN = 5.0


# -- helpers ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(max_workers=4, thread_name_prefix="kill-test") as executor:
        yield executor


@pytest.fixture
def admin(backend: BackendInfo) -> Iterator[Connection]:
    connection = admin_connect(backend)
    yield connection
    connection.close()


@pytest.fixture
def connections() -> Iterator[list[Connection]]:
    """Connections a test opens; all are closed afterwards, killed or not."""
    opened: list[Connection] = []
    yield opened
    for connection in opened:
        with contextlib.suppress(pymysql.err.Error):  # already killed: nothing to close
            connection.close()


def unverified_tls() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def direct_connect(backend: BackendInfo, account: Account = APP) -> Connection:
    return pymysql.connect(
        host=backend.host,
        port=backend.port,
        user=account.user,
        password=account.password,
        database=TEST_DB,
        autocommit=True,
    )


Opener = Callable[[Account], Connection]


@pytest.fixture(params=["proxy", "direct"])
def opener(
    request: pytest.FixtureRequest,
    proxy: RunningProxy,
    backend: BackendInfo,
    connections: list[Connection],
) -> Opener:
    """Open connections through the proxy, or straight to the backend (the oracle)."""

    def open_connection(account: Account = APP) -> Connection:
        if request.param == "proxy":
            connection = proxy.connect(account)
        else:
            connection = direct_connect(backend, account)
        connections.append(connection)
        return connection

    return open_connection


def outcome(connection: Connection, sql: str) -> Outcome:
    """What a statement gave the client: ("ok", rows) or ("error", code)."""
    try:
        with connection.cursor() as cur:
            cur.execute(sql)
            return "ok", cur.fetchall()
    except pymysql.err.MySQLError as exc:
        return "error", exc.args[0]


def backend_thread(connection: Connection) -> int:
    with connection.cursor() as cur:
        cur.execute("SELECT CONNECTION_ID()")
        (thread_id,) = cur.fetchone()
    return int(thread_id)


def running_statement(admin: Connection, thread_id: int) -> str | None:
    """The statement a backend thread runs now; None when idle or gone."""
    with admin.cursor() as cur:
        cur.execute(
            "SELECT INFO FROM information_schema.PROCESSLIST WHERE ID = %s AND COMMAND = 'Query'",
            (thread_id,),
        )
        row = cur.fetchone()
    return None if row is None else row[0]


def thread_exists(admin: Connection, thread_id: int) -> bool:
    with admin.cursor() as cur:
        cur.execute(
            "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = %s", (thread_id,)
        )
        (count,) = cur.fetchone()
    return bool(count)


def start_sleep(
    pool: ThreadPoolExecutor, admin: Connection, connection: Connection, sql: str
) -> Future[Outcome]:
    """Run ``sql`` in a thread and return once the backend is executing it."""
    thread_id = backend_thread(connection)
    future = pool.submit(outcome, connection, sql)
    assert wait_until(lambda: running_statement(admin, thread_id) == sql), sql
    return future


def kill_leftover(admin: Connection, thread_id: int) -> None:
    """Cleanup: make sure no test leaves a long sleep behind on the backend."""
    with admin.cursor() as cur:
        try:
            cur.execute(f"KILL {thread_id}")
        except pymysql.err.OperationalError as exc:
            assert exc.args[0] == ER_NO_SUCH_THREAD


# -- KILL QUERY by proxy connection id ---------------------------------------------------------


def kill_query_scenario(
    opener: Opener, pool: ThreadPoolExecutor, admin: Connection, statement: str
) -> dict[str, Any]:
    victim, killer = opener(APP), opener(APP)
    thread_id = backend_thread(victim)
    future = start_sleep(pool, admin, victim, statement)
    started = time.monotonic()
    kill_result = outcome(killer, f"KILL QUERY {victim.thread_id()}")
    interrupted = future.result(timeout=WITHIN)
    elapsed = time.monotonic() - started
    return {
        "kill": kill_result,
        "victim": interrupted,
        "quick": elapsed < WITHIN,
        "victim_after": outcome(victim, "SELECT 1"),
        "same_backend_thread": backend_thread(victim) == thread_id,
    }


@pytest.mark.parametrize(
    "statement", [f"SELECT SLEEP({LONG_SLEEP})", f"DO SLEEP({LONG_SLEEP})"], ids=["select", "do"]
)
def test_kill_query_by_proxy_id_acts_like_a_direct_kill_query(
    proxy: RunningProxy,
    backend: BackendInfo,
    pool: ThreadPoolExecutor,
    admin: Connection,
    connections: list[Connection],
    statement: str,
) -> None:
    def through(account: Account) -> Connection:
        connection = proxy.connect(account)
        connections.append(connection)
        return connection

    def direct(account: Account) -> Connection:
        connection = direct_connect(backend, account)
        connections.append(connection)
        return connection

    via_proxy = kill_query_scenario(through, pool, admin, statement)
    assert via_proxy == kill_query_scenario(direct, pool, admin, statement)
    assert via_proxy["quick"]
    assert via_proxy["victim_after"] == ("ok", ((1,),))  # the victim's connection lives on
    assert via_proxy["same_backend_thread"]
    if statement.startswith("SELECT"):
        assert via_proxy["victim"] == ("error", ER_QUERY_INTERRUPTED)


def test_victims_proxy_id_is_not_its_backend_thread_id(
    proxy: RunningProxy, conn: Connection
) -> None:
    """The premise of the translation: the greeting's id is the proxy's own."""
    assert conn.thread_id() >= PROXY_ID_BASE
    assert backend_thread(conn) < PROXY_ID_BASE


# -- KILL CONNECTION by proxy connection id ------------------------------------------------------


def process_kill(killer: Connection, thread_id: int) -> Outcome:
    """COM_PROCESS_KILL (the protocol command, not a statement)."""
    try:
        killer.kill(thread_id)
    except pymysql.err.MySQLError as exc:
        return "error", exc.args[0]
    return "ok", ()


KILL_FORMS: dict[str, Callable[[Connection, int], Outcome]] = {
    "KILL CONNECTION n": lambda killer, n: outcome(killer, f"KILL CONNECTION {n}"),
    "KILL n": lambda killer, n: outcome(killer, f"KILL {n}"),
    "kill  connection n;": lambda killer, n: outcome(killer, f"kill  connection {n};"),
    "COM_PROCESS_KILL": process_kill,
}


@pytest.mark.parametrize("form", KILL_FORMS.values(), ids=KILL_FORMS.keys())
def test_kill_connection_of_an_idle_connection(
    opener: Opener, admin: Connection, form: Callable[[Connection, int], Outcome]
) -> None:
    victim, killer = opener(APP), opener(APP)
    thread_id = backend_thread(victim)
    assert form(killer, victim.thread_id())[0] == "ok"
    assert wait_until(lambda: not thread_exists(admin, thread_id))
    with pytest.raises(pymysql.err.OperationalError):
        outcome_or_raise(victim, "SELECT 1")
    assert outcome(killer, "SELECT 1") == ("ok", ((1,),))


def outcome_or_raise(connection: Connection, sql: str) -> Any:
    with connection.cursor() as cur:
        cur.execute(sql)
        return cur.fetchall()


def test_kill_connection_during_a_statement_ends_it_and_closes_the_client(
    opener: Opener, pool: ThreadPoolExecutor, admin: Connection
) -> None:
    victim, killer = opener(APP), opener(APP)
    thread_id = backend_thread(victim)
    future = start_sleep(pool, admin, victim, f"SELECT SLEEP({LONG_SLEEP})")
    assert outcome(killer, f"KILL CONNECTION {victim.thread_id()}")[0] == "ok"
    kind, _ = future.result(timeout=WITHIN)
    assert kind == "error"
    assert wait_until(lambda: not thread_exists(admin, thread_id))
    with pytest.raises(pymysql.err.Error):  # Operational- or InterfaceError: it is gone
        outcome_or_raise(victim, "SELECT 1")


def test_killed_client_leaves_no_proxy_session(
    proxy: RunningProxy, connections: list[Connection]
) -> None:
    victim, killer = proxy.connect(), proxy.connect()
    connections += [victim, killer]
    assert proxy.server is not None and proxy.server.ctx is not None
    sessions = proxy.server.ctx.sessions
    assert victim.thread_id() in sessions
    outcome(killer, f"KILL {victim.thread_id()}")
    assert wait_until(lambda: victim.thread_id() not in sessions)


def test_kill_connection_of_itself_matches_the_backend(opener: Opener) -> None:
    """Killing one's own connection: error 1927, then the connection is gone (2013)."""
    connection = opener(APP)
    assert outcome(connection, f"KILL CONNECTION {connection.thread_id()}") == (
        "error",
        ER_CONNECTION_KILLED,
    )
    assert outcome(connection, "SELECT 1") == ("error", CR_SERVER_LOST)


# -- ids that are no proxy connection ------------------------------------------------------------


def unused_proxy_id(proxy: RunningProxy) -> int:
    assert proxy.server is not None and proxy.server.ctx is not None
    candidate = PROXY_ID_BASE + 999_983
    while candidate in proxy.server.ctx.sessions:
        candidate += 1
    return candidate


@pytest.mark.parametrize("kind", ["QUERY", "CONNECTION"])
def test_kill_of_an_unknown_id_in_the_proxy_range_is_1094_like_the_backend(
    proxy: RunningProxy, backend: BackendInfo, conn: Connection, direct: Connection, kind: str
) -> None:
    sql = f"KILL {kind} {unused_proxy_id(proxy)}"
    with pytest.raises(pymysql.err.OperationalError) as through:
        outcome_or_raise(conn, sql)
    with pytest.raises(pymysql.err.OperationalError) as straight:
        outcome_or_raise(direct, sql)
    assert through.value.args == straight.value.args
    assert through.value.args[0] == ER_NO_SUCH_THREAD
    assert outcome(conn, "SELECT 1") == ("ok", ((1,),))


def test_com_process_kill_of_an_unknown_proxy_id_is_1094(
    proxy: RunningProxy, conn: Connection
) -> None:
    with pytest.raises(pymysql.err.OperationalError) as caught:
        conn.kill(unused_proxy_id(proxy))
    assert caught.value.args[0] == ER_NO_SUCH_THREAD


def test_backend_thread_id_passes_through_unchanged(
    conn: Connection,
    backend: BackendInfo,
    pool: ThreadPoolExecutor,
    admin: Connection,
    connections: list[Connection],
) -> None:
    """An id read from SHOW PROCESSLIST (a backend id) kills that backend thread's query."""
    victim = direct_connect(backend)
    connections.append(victim)
    future = start_sleep(pool, admin, victim, f"SELECT SLEEP({LONG_SLEEP})")
    with conn.cursor() as cur:
        cur.execute("SHOW PROCESSLIST")
        listed = {row[0] for row in cur.fetchall()}
    assert victim.thread_id() in listed  # the id a client would find there
    assert outcome(conn, f"KILL QUERY {victim.thread_id()}")[0] == "ok"
    assert future.result(timeout=WITHIN) == ("error", ER_QUERY_INTERRUPTED)


def test_kill_query_id_passes_through_unchanged(
    conn: Connection,
    backend: BackendInfo,
    pool: ThreadPoolExecutor,
    admin: Connection,
    connections: list[Connection],
) -> None:
    """MariaDB's KILL QUERY ID names a query id, not a thread id: never translated."""
    victim = direct_connect(backend)
    connections.append(victim)
    future = start_sleep(pool, admin, victim, f"SELECT SLEEP({LONG_SLEEP})")
    with admin.cursor() as cur:
        cur.execute(
            "SELECT QUERY_ID FROM information_schema.PROCESSLIST WHERE ID = %s",
            (victim.thread_id(),),
        )
        (query_id,) = cur.fetchone()
    assert outcome(conn, f"KILL QUERY ID {query_id}")[0] == "ok"
    assert future.result(timeout=WITHIN) == ("error", ER_QUERY_INTERRUPTED)


def test_kill_query_after_a_leading_comment_is_translated(
    proxy: RunningProxy,
    pool: ThreadPoolExecutor,
    admin: Connection,
    connections: list[Connection],
) -> None:
    victim, killer = proxy.connect(), proxy.connect()
    connections += [victim, killer]
    thread_id = backend_thread(victim)
    future = start_sleep(pool, admin, victim, f"SELECT SLEEP({LONG_SLEEP})")
    try:
        assert outcome(killer, f"/* app=report */ KILL QUERY {victim.thread_id()}")[0] == "ok"
        assert future.result(timeout=WITHIN) == ("error", ER_QUERY_INTERRUPTED)
    finally:
        with admin.cursor() as cur:
            cur.execute(f"KILL QUERY {thread_id}")
        future.result(timeout=WITHIN)


# -- privileges: KILL runs as the issuer ---------------------------------------------------------


@pytest.mark.parametrize("kind", ["QUERY", "CONNECTION"])
def test_other_user_cannot_kill_apps_statement(
    opener: Opener, pool: ThreadPoolExecutor, admin: Connection, kind: str
) -> None:
    """The backend refuses (1095) as it refuses OTHER directly; APP's statement runs on."""
    victim, intruder = opener(APP), opener(OTHER)
    thread_id = backend_thread(victim)
    statement = f"SELECT SLEEP({LONG_SLEEP})"
    future = start_sleep(pool, admin, victim, statement)
    try:
        assert outcome(intruder, f"KILL {kind} {victim.thread_id()}") == (
            "error",
            ER_KILL_DENIED,
        )
        time.sleep(0.3)
        assert not future.done()
        assert running_statement(admin, thread_id) == statement
    finally:
        with admin.cursor() as cur:
            cur.execute(f"KILL QUERY {thread_id}")
    assert future.result(timeout=WITHIN) == ("error", ER_QUERY_INTERRUPTED)
    assert outcome(victim, "SELECT 1") == ("ok", ((1,),))


def test_refused_kill_message_is_the_backends(
    proxy: RunningProxy,
    backend: BackendInfo,
    admin: Connection,
    connections: list[Connection],
) -> None:
    """Through the proxy the 1095 text is the backend's, naming the backend thread id
    (the same text OTHER gets when it names that thread directly)."""
    victim = proxy.connect(APP)
    intruder, direct_intruder = proxy.connect(OTHER), direct_connect(backend, OTHER)
    connections += [victim, intruder, direct_intruder]
    with pytest.raises(pymysql.err.OperationalError) as through:
        outcome_or_raise(intruder, f"KILL QUERY {victim.thread_id()}")
    with pytest.raises(pymysql.err.OperationalError) as straight:
        outcome_or_raise(direct_intruder, f"KILL QUERY {backend_thread(victim)}")
    assert through.value.args == straight.value.args


# -- a client that vanishes mid-statement --------------------------------------------------------


def send_query_and_vanish(connection: Connection, sql: str, running: Callable[[], bool]) -> None:
    """Send COM_QUERY, wait until the backend runs it, then drop the connection without
    reading the answer (no COM_QUIT: the way a killed client process goes). The wait
    comes first because the proxy notices the client leave, and kills the statement,
    within milliseconds: sooner than a poll of the process list would see it run."""
    connection._execute_command(COMMAND.COM_QUERY, sql)
    assert wait_until(running)
    sock: socket.socket = connection._sock
    sock.shutdown(socket.SHUT_RDWR)  # close() alone would wait for PyMySQL's file object
    sock.close()


@pytest.mark.parametrize("tls", [False, True], ids=["plain", "tls"])
def test_disconnect_during_a_silent_statement_kills_the_backend_statement(
    proxy: RunningProxy, admin: Connection, tls: bool
) -> None:
    """A statement with no output yet (SLEEP): the proxy must notice the closed client
    without writing to it, and stop the backend statement."""
    options: dict[str, Any] = {"ssl": unverified_tls()} if tls else {"ssl_disabled": True}
    victim = proxy.connect(**options)
    thread_id = backend_thread(victim)
    statement = f"SELECT SLEEP({LONG_SLEEP})"
    try:
        send_query_and_vanish(
            victim, statement, lambda: running_statement(admin, thread_id) == statement
        )
        assert wait_until(lambda: running_statement(admin, thread_id) is None)
    finally:
        kill_leftover(admin, thread_id)


def test_disconnect_while_rows_stream_kills_the_backend_statement(
    proxy: RunningProxy, admin: Connection
) -> None:
    """Once the proxy has rows to write, a vanished client is noticed and the backend
    statement is stopped (with KILL QUERY from a side connection)."""
    victim = proxy.connect(ssl_disabled=True)
    thread_id = backend_thread(victim)
    # 100 KB rows, one every 50 ms for 30 s: each row reaches the proxy on its own.
    statement = "SELECT REPEAT('x', 100000), SLEEP(0.05) FROM seq_1_to_600"
    try:
        send_query_and_vanish(
            victim, statement, lambda: running_statement(admin, thread_id) == statement
        )
        assert wait_until(lambda: running_statement(admin, thread_id) is None)
    finally:
        kill_leftover(admin, thread_id)
