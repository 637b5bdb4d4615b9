"""Before login (issue 10, item 3): a socket that has not logged in costs the backend
nothing, and what it may hold in the proxy is bounded.

The proxy used to open a backend connection per accepted socket, before the client said
who it was: 500 silent sockets took every backend connection for the handshake timeout
(the backend's max_connections is 151 by default), and for those seconds logins through
the proxy, direct logins to the backend and even root on its unix socket got 1040. Now
the greeting is the proxy's own (proxy.wire.greeting), logins in progress are limited
overall and per source address (proxy.auth.login_gate), max_connections counts logged-in
sessions only, and the greeting stays true to the backend.

Floods come from 127.0.0.2 and other loopback addresses (Linux routes all of 127/8 to
the loopback interface), legitimate clients from 127.0.0.1, so the per-address limit can
tell them apart. Every flood is bounded: a few hundred sockets, a short handshake timeout.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import time
from collections.abc import Iterator
from typing import Any

import pymysql
import pytest
from mysql_mimic.types import Capabilities, ServerStatus

from proxy.auth.login_gate import LoginGate, source_key
from proxy.config import Config, load_config
from proxy.errors import ConfigError, TooManyConnections
from proxy.ml.activity import CLIENT_PROGRESS
from proxy.wire.handshake import Greeting, parse_greeting
from tests.conftest import (
    APP,
    TEST_LOOP,
    RunningProxy,
    admin_connect,
    start_proxy,
    wait_until,
)
from tests.integration.test_auth import RAW_CAPS, RawClient, ServerGreeting
from tests.support.backend import BackendInfo

FLOOD = 300
FLOOD_FROM = "127.0.0.2"
ER_CON_COUNT_ERROR = 1040
#: How soon a refused socket must be answered and closed (it costs nothing to refuse).
REFUSED_WITHIN = 1.0
#: How soon a legitimate login must succeed while a flood hangs.
PROMPT_LOGIN = 2.0

AUTOCOMMIT = int(ServerStatus.SERVER_STATUS_AUTOCOMMIT)
NO_BACKSLASH_ESCAPES = int(ServerStatus.SERVER_STATUS_NO_BACKSLASH_ESCAPES)
SESSION_FLAGS = AUTOCOMMIT | NO_BACKSLASH_ESCAPES

#: What the proxy may offer although the backend does not: it handles these itself.
PROXY_SIDE = int(
    Capabilities.CLIENT_PROTOCOL_41
    | Capabilities.CLIENT_SECURE_CONNECTION
    | Capabilities.CLIENT_PLUGIN_AUTH
    | Capabilities.CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA
    | Capabilities.CLIENT_CONNECT_WITH_DB
    | Capabilities.CLIENT_LONG_PASSWORD
    | Capabilities.CLIENT_CAN_HANDLE_EXPIRED_PASSWORDS
    | Capabilities.CLIENT_SSL
)


def server_status(admin: pymysql.Connection[Any], name: str) -> int:
    with admin.cursor() as cur:
        cur.execute("SHOW GLOBAL STATUS LIKE %s", (name,))
        row = cur.fetchone()
    assert row is not None
    return int(row[1])


def connect_from(port: int, source: str, timeout: float = 5.0) -> socket.socket:
    return socket.create_connection(
        ("127.0.0.1", port), timeout=timeout, source_address=(source, 0)
    )


def first_packet(sock: socket.socket) -> bytes:
    """The payload of the first packet on ``sock`` (a greeting or an ERR)."""
    header = sock.recv(4, socket.MSG_WAITALL)
    assert len(header) == 4, "closed before the first packet"
    length = int.from_bytes(header[:3], "little")
    return sock.recv(length, socket.MSG_WAITALL)


def err_code(payload: bytes) -> tuple[int, str]:
    assert payload[:1] == b"\xff", payload[:1]
    return struct.unpack("<H", payload[1:3])[0], payload[4:9].decode("ascii")


def closed_within(sock: socket.socket, seconds: float) -> bool:
    """Whether the peer closes ``sock`` within ``seconds`` (what it sends is dropped)."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            if not sock.recv(4096):
                return True
        except TimeoutError:
            return False
        except ConnectionError:
            return True
    return False


@contextlib.contextmanager
def silent_sockets(port: int, count: int, source: str = FLOOD_FROM) -> Iterator[list[bytes]]:
    """``count`` sockets that connect and never log in; yields their first packets."""
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sockets.append(connect_from(port, source))
        yield [first_packet(sock) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


@contextlib.contextmanager
def global_setting(backend: BackendInfo, name: str, expression: str) -> Iterator[None]:
    """SET GLOBAL ``name`` on the backend for the block; restored afterwards."""
    with admin_connect(backend) as admin, admin.cursor() as cur:
        cur.execute(f"SELECT @@GLOBAL.{name}")
        row = cur.fetchone()
        assert row is not None
        cur.execute(f"SET GLOBAL {name} = {expression}")
        try:
            yield
        finally:
            cur.execute(f"SET GLOBAL {name} = %s", (row[0],))


@pytest.fixture
def proxies(backend: BackendInfo) -> Iterator[list[RunningProxy]]:
    """Proxies a test starts (with start_proxy) and appends here; stopped afterwards."""
    started: list[RunningProxy] = []
    yield started
    for running in started:
        running.stop()


def started(proxies: list[RunningProxy], backend: BackendInfo, **settings: Any) -> RunningProxy:
    proxies.append(start_proxy(backend, **settings))
    return proxies[-1]


def log_in_and_ask(running: RunningProxy, **options: Any) -> Any:
    with running.connect(**options) as conn, conn.cursor() as cur:
        cur.execute("SELECT CURRENT_USER()")
        row = cur.fetchone()
    assert row is not None
    return row[0]


# -- the flood -------------------------------------------------------------------------------


def test_silent_sockets_take_no_backend_connection(
    backend: BackendInfo, proxies: list[RunningProxy]
) -> None:
    running = started(
        proxies,
        backend,
        handshake_timeout=5,
        max_pending_logins=FLOOD + 10,
        max_pending_logins_per_address=FLOOD + 10,
    )
    log_in_and_ask(running)  # the first login brings the alias poller its account
    with admin_connect(backend) as admin:
        threads = server_status(admin, "Threads_connected")
        with silent_sockets(running.port, FLOOD) as firsts:
            # The backend's connections do not grow with the silent sockets (with the
            # greeting from a backend connection: +150, and the backend was full).
            assert server_status(admin, "Threads_connected") == threads
            began = time.monotonic()
            assert log_in_and_ask(running) == f"{APP.user}@%"
            assert time.monotonic() - began < PROMPT_LOGIN
            with admin_connect(backend) as direct:  # a direct login to the backend
                assert direct.get_server_info()
            if backend.server is not None:  # and root on its unix socket
                server = backend.server
                with pymysql.connect(unix_socket=server.socket_path, user=server.socket_user):
                    pass
            assert [first[:1] for first in firsts] == [b"\x0a"] * FLOOD  # all were greeted


def test_a_flood_from_one_address_under_the_default_limits(
    backend: BackendInfo, proxies: list[RunningProxy]
) -> None:
    """The issue's flood with the default settings: the address's share of logins in
    progress hang until the handshake timeout, the rest are refused at once."""
    share = Config().max_pending_logins_per_address
    assert share < FLOOD
    running = started(proxies, backend, handshake_timeout=5)
    log_in_and_ask(running)
    with admin_connect(backend) as admin:
        threads = server_status(admin, "Threads_connected")
        with silent_sockets(running.port, FLOOD) as firsts:
            assert server_status(admin, "Threads_connected") == threads
            greeted = [first for first in firsts if first[:1] == b"\x0a"]
            refused = [err_code(first) for first in firsts if first[:1] != b"\x0a"]
            assert len(greeted) == share
            assert refused == [(ER_CON_COUNT_ERROR, "08004")] * (FLOOD - share)
            began = time.monotonic()
            assert log_in_and_ask(running) == f"{APP.user}@%"
            assert time.monotonic() - began < PROMPT_LOGIN


@pytest.mark.parametrize("name", ["max_pending_logins", "max_pending_logins_per_address"])
def test_the_login_limits_must_be_positive(name: str) -> None:
    with pytest.raises(ConfigError, match=name):
        load_config({name: 0}, env={})


def test_logins_in_progress_from_one_address_are_limited(
    backend: BackendInfo, proxies: list[RunningProxy]
) -> None:
    limit = 5
    running = started(proxies, backend, max_pending_logins=50, max_pending_logins_per_address=limit)
    with admin_connect(backend) as admin:
        connections = server_status(admin, "Connections")
        with silent_sockets(running.port, limit) as firsts:
            assert [first[:1] for first in firsts] == [b"\x0a"] * limit
            with connect_from(running.port, FLOOD_FROM) as over:
                began = time.monotonic()
                assert err_code(first_packet(over)) == (ER_CON_COUNT_ERROR, "08004")
                assert closed_within(over, REFUSED_WITHIN)
                assert time.monotonic() - began < REFUSED_WITHIN
            # The refusal cost the backend nothing; another address logs in.
            assert server_status(admin, "Connections") == connections
            assert log_in_and_ask(running) == f"{APP.user}@%"
        # The silent ones are gone: the address may log in again.
        assert wait_until(lambda: _logs_in_from(running, FLOOD_FROM))


def _logs_in_from(running: RunningProxy, source: str) -> bool:
    try:
        log_in_and_ask(running, bind_address=source)
    except pymysql.err.OperationalError as exc:
        assert exc.args[0] == ER_CON_COUNT_ERROR
        return False
    return True


def test_logins_in_progress_are_limited_overall(
    backend: BackendInfo, proxies: list[RunningProxy]
) -> None:
    running = started(proxies, backend, max_pending_logins=4, max_pending_logins_per_address=4)
    with contextlib.ExitStack() as stack:
        for index in range(4):  # one per address: the per-address limit is not what bites
            firsts = stack.enter_context(silent_sockets(running.port, 1, f"127.0.1.{index + 1}"))
            assert firsts[0][:1] == b"\x0a"
        with pytest.raises(pymysql.err.OperationalError) as refused:
            log_in_and_ask(running)
        assert refused.value.args[0] == ER_CON_COUNT_ERROR
        assert "logins in progress" in str(refused.value.args[1])
    assert wait_until(lambda: _logs_in_from(running, "127.0.0.1"))


def test_max_connections_counts_logged_in_sessions_only(
    backend: BackendInfo, proxies: list[RunningProxy]
) -> None:
    running = started(proxies, backend, max_connections=2)
    with silent_sockets(running.port, 10) as firsts:
        assert [first[:1] for first in firsts] == [b"\x0a"] * 10
        with running.connect(), running.connect():  # silent sockets take no session
            with pytest.raises(pymysql.err.OperationalError) as refused:
                running.connect()
            assert refused.value.args[0] == ER_CON_COUNT_ERROR


def test_a_client_sending_a_byte_at_a_time_is_cut_at_the_handshake_timeout(
    backend: BackendInfo, proxies: list[RunningProxy]
) -> None:
    """A slowloris-style client: one byte of its login every 0.3 s. The handshake timeout
    bounds the whole login, not each read; its place is then free again."""
    timeout, source = 1.5, "127.0.0.3"
    running = started(proxies, backend, handshake_timeout=timeout, max_pending_logins_per_address=1)
    with connect_from(running.port, source) as slow:
        greeted = time.monotonic()
        assert first_packet(slow)[:1] == b"\x0a"
        with connect_from(running.port, source) as second:  # its address's one place is taken
            assert err_code(first_packet(second)) == (ER_CON_COUNT_ERROR, "08004")
        payload = RawClient.fixed_part(RAW_CAPS) + APP.user.encode() + b"\x00" + bytes(21)
        response = len(payload).to_bytes(3, "little") + b"\x01" + payload  # whole, framed
        cut = False
        for byte in response:
            try:
                slow.sendall(bytes((byte,)))
            except ConnectionError:
                cut = True
                break
            if closed_within(slow, 0.3):
                cut = True
                break
        assert cut
        assert timeout - 0.1 < time.monotonic() - greeted < timeout + 1.0  # by the timeout
    assert wait_until(lambda: _logs_in_from(running, source))


# -- the greeting stays true -------------------------------------------------------------------


def raw_greeting(host: str, port: int) -> Greeting:
    with socket.create_connection((host, port), timeout=5) as sock:
        return parse_greeting(first_packet(sock))


def test_the_greeting_carries_the_backends_version_collation_and_status(
    backend: BackendInfo, proxies: list[RunningProxy]
) -> None:
    running = started(proxies, backend)
    direct = raw_greeting(backend.host, backend.port)
    for _ in range(2):  # from the start-up probe's greeting, then from a login's
        greeted = raw_greeting(running.host, running.port)
        assert greeted.server_version == direct.server_version + "-mlproxy"
        assert greeted.collation == direct.collation
        assert greeted.status == direct.status
        # MariaDB's progress reports too, in their pre-10.2 form (proxy.ml.activity):
        # the proxy sends its own, during ML statements.
        mariadb = "mariadb" in direct.server_version.lower()
        assert bool(greeted.capabilities & CLIENT_PROGRESS) == mariadb
        proxy_side = PROXY_SIDE | (CLIENT_PROGRESS if mariadb else 0)
        assert greeted.capabilities & ~proxy_side & ~direct.capabilities == 0
        log_in_and_ask(running)


class GreetedClient(RawClient):
    """RawClient keeping the whole greeting (its status flags)."""

    whole_greeting: Greeting

    def __enter__(self) -> GreetedClient:
        return self

    def _read_greeting(self) -> ServerGreeting:
        greeting = parse_greeting(self.read().payload)
        self.whole_greeting = greeting
        plugin = greeting.auth_plugin.encode()
        return ServerGreeting(greeting.connection_id, greeting.nonce, greeting.capabilities, plugin)


def ok_status(payload: bytes) -> int:
    """The status flags of an OK packet whose affected rows and insert id are below 251."""
    assert payload[:1] == b"\x00" and payload[1] < 251 and payload[2] < 251, payload
    return int(struct.unpack("<H", payload[3:5])[0])


@pytest.mark.parametrize(
    ("name", "expression", "flag"),
    [
        ("autocommit", "1 - @@GLOBAL.autocommit", AUTOCOMMIT),
        (
            "sql_mode",
            "IF(@@GLOBAL.sql_mode LIKE '%NO_BACKSLASH_ESCAPES%', '', 'NO_BACKSLASH_ESCAPES')",
            NO_BACKSLASH_ESCAPES,
        ),
    ],
    ids=["autocommit", "no_backslash_escapes"],
)
def test_the_session_is_what_the_greeting_said_after_a_global_change(
    backend: BackendInfo, proxies: list[RunningProxy], name: str, expression: str, flag: int
) -> None:
    """A SET GLOBAL after the proxy's last backend greeting: whatever flag a client is
    greeted with (the proxy's may be the old one), its session has it (as a server's
    session keeps the globals of the moment it greeted) and the OK of its login says
    so; the greeting has the new flag by the next login."""
    for_pymysql, for_raw = started(proxies, backend), started(proxies, backend)
    with global_setting(backend, name, expression):
        greetings: list[int] = []
        for _ in range(2):
            with for_pymysql.connect(autocommit=None) as conn:  # PyMySQL: the greeting's flags
                greeted = conn.server_status & flag
                with conn.cursor() as cur:
                    cur.execute("SELECT 1")  # a result: the session's real flags
                assert conn.server_status & flag == greeted
            greetings.append(greeted)
        # The greeting follows the global value by the next login at the latest.
        assert greetings[-1] == raw_greeting(backend.host, backend.port).status & flag
        for _ in range(2):
            with GreetedClient(for_raw.port) as client:
                client.start_tls()
                login = client.login_sha2_over_tls(APP)
                greeted = client.whole_greeting.status
                assert ok_status(login.payload) & SESSION_FLAGS == greeted & SESSION_FLAGS


# -- the start-up probe ------------------------------------------------------------------------


def test_a_proxy_start_leaves_no_failed_login_in_the_backends_error_log(
    backend: BackendInfo,
) -> None:
    """Issue 16: the start-up probe left by a failed login ("Access denied for user
    'mlproxy-abandoned-login'"). Without an account it now closes after the greeting;
    with the backend URL's account it logs in and leaves no line at all."""
    if backend.server is None:
        pytest.skip("the backend's error log is readable only for the embedded server")
    log = backend.server.error_log

    def lines_while(backend_url: str | None = None) -> str:
        offset = log.stat().st_size
        if backend_url is None:
            running = start_proxy(backend)
        else:  # start_proxy's own argument is named backend
            settings = {"listen": "127.0.0.1:0", "backend": backend_url, "loop": TEST_LOOP}
            running = RunningProxy(load_config(settings, env={}), backend).start()
        try:
            log_in_and_ask(running)
        finally:
            running.stop()
        with log.open("rb") as file:
            file.seek(offset)
            return file.read().decode("utf-8", "replace")

    anonymous = lines_while()
    assert "Access denied" not in anonymous and "mlproxy" not in anonymous
    assert lines_while(backend_url=backend.server.url()) == ""


# -- the gate itself (no sockets) --------------------------------------------------------------


def test_the_gate_counts_logins_in_progress_per_source_and_overall() -> None:
    gate = LoginGate(max_pending=3, max_pending_per_address=2, max_sessions=10)
    first, second = gate.enter("192.0.2.1"), gate.enter("192.0.2.1")
    with pytest.raises(TooManyConnections, match=r"in progress from 192\.0\.2\.1"):
        gate.enter("192.0.2.1")
    third = gate.enter("192.0.2.2")
    with pytest.raises(TooManyConnections, match=r"logins in progress$"):
        gate.enter("192.0.2.3")
    first.leave()
    first.leave()  # a second leave gives back nothing more
    assert gate.pending == 2
    gate.enter("192.0.2.1")
    for login in (second, third):
        login.leave()
    assert gate.pending == 1


def test_an_ipv6_client_counts_by_its_64() -> None:
    gate = LoginGate(max_pending=10, max_pending_per_address=1, max_sessions=10)
    gate.enter("2001:db8::1")
    with pytest.raises(TooManyConnections):
        gate.enter("2001:db8::ffff:2")  # the same /64
    gate.enter("2001:db8:0:1::1")  # the next /64
    gate.enter("::ffff:192.0.2.1")  # IPv4-mapped: the IPv4 address
    with pytest.raises(TooManyConnections):
        gate.enter("192.0.2.1")
    assert source_key("fe80::1%eth0") == "fe80::/64"


def test_the_gate_refuses_new_connections_when_the_sessions_are_full() -> None:
    gate = LoginGate(max_pending=10, max_pending_per_address=10, max_sessions=1)
    login = gate.enter("192.0.2.1")
    racing = gate.enter("192.0.2.1")  # admitted before the first logged in
    gate.open_session()
    login.leave()
    with pytest.raises(TooManyConnections, match=r"^Too many connections$"):
        gate.enter("192.0.2.1")
    with pytest.raises(TooManyConnections):
        gate.open_session()  # the racing one, once it has said who it is
    racing.leave()
    gate.close_session()
    gate.enter("192.0.2.1")
    assert TooManyConnections.code == ER_CON_COUNT_ERROR
