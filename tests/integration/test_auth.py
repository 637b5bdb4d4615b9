"""Client authentication end to end: who a client logs in as, and who is refused.

Through the proxy, real clients (PyMySQL, mysql-connector-python) and a small raw-protocol
client log in with caching_sha2_password (over TLS, or RSA-encrypted without TLS),
mysql_clear_password (TLS only) and mysql_native_password (users-file accounts only).
The backend is the oracle: CURRENT_USER() and the backend's own refusals, compared with
the same login made directly. Also covered: require_tls, a configured certificate,
COM_CHANGE_USER, TLS started with the ClientHello already pipelined, and malformed
input before authentication.
"""

from __future__ import annotations

import contextlib
import logging
import random
import selectors
import socket
import ssl
import struct
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mysql.connector
import pymysql
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from pymysql import _auth as pymysql_auth
from pymysql.constants import CLIENT

from proxy.transport.tls import generate_rsa_key, private_key_pem, self_signed_certificate
from tests.conftest import APP, OTHER, TEST_DB, Account, RunningProxy, admin_connect, start_proxy
from tests.support.backend import BackendInfo

ER_ACCESS_DENIED = 1045
#: MariaDB refuses an unknown user as if it were one of its accounts chosen by a hash of
#: the name (so that unknown users cannot be told apart); when that account uses
#: unix_socket the code is 1698 instead of 1045. The proxy relays whichever it is.
ER_ACCESS_DENIED_NO_PASSWORD = 1698
ER_SECURE_TRANSPORT_REQUIRED = 3159

CACHING_SHA2 = b"caching_sha2_password"
NATIVE = b"mysql_native_password"
CLEAR = b"mysql_clear_password"

#: What the raw client announces: a plain MySQL 4.1+ client with plugin auth.
RAW_CAPS = (
    CLIENT.LONG_PASSWORD
    | CLIENT.PROTOCOL_41
    | CLIENT.TRANSACTIONS
    | CLIENT.SECURE_CONNECTION
    | CLIENT.MULTI_RESULTS
    | CLIENT.PLUGIN_AUTH
    | CLIENT.PLUGIN_AUTH_LENENC_CLIENT_DATA
)
UTF8MB4_GENERAL_CI = 45

#: How long a refused client may wait for the proxy to close its connection.
CLOSE_WITHIN = 5.0


# -- helpers: TLS contexts, backend oracle ---------------------------------------------------


def unverified_tls() -> ssl.SSLContext:
    """Encrypt without checking the certificate (the proxy's default one is self-signed)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def whoami(conn: Any) -> tuple[str, str]:
    """(CURRENT_USER(), USER()) as the backend sees this connection (PyMySQL or connector)."""
    cursor = conn.cursor()
    try:
        cursor.execute("SELECT CURRENT_USER(), USER()")
        current, user = cursor.fetchone()
    finally:
        cursor.close()
    return str(current), str(user)


def direct_whoami(backend: BackendInfo, account: Account) -> tuple[str, str]:
    with pymysql.connect(
        host=backend.host, port=backend.port, user=account.user, password=account.password
    ) as conn:
        return whoami(conn)


@contextlib.contextmanager
def backend_logins(admin: pymysql.Connection[Any]) -> Iterator[Callable[[str], int]]:
    """While the block runs, the backend's general log records connection attempts; the
    function yielded counts those that logged in, or were refused, as a given user. (The
    proxy opens its backend connection before the client logs in and leaves it, when the
    client fails, with a login as a user of its own: only logins as the client's user
    show that the client's credentials reached the backend.)"""
    with admin.cursor() as cur:
        cur.execute("SET GLOBAL log_output = 'TABLE'")
        cur.execute("TRUNCATE TABLE mysql.general_log")
        cur.execute("SET GLOBAL general_log = 1")

    def logins(user: str) -> int:
        with admin.cursor() as cur:
            cur.execute(
                "SELECT COUNT(*) FROM mysql.general_log WHERE command_type = 'Connect'"
                " AND (argument LIKE %s OR argument LIKE %s)",
                (f"{user}@%", f"%'{user}'@%"),
            )
            (count,) = cur.fetchone()
        return int(count)

    try:
        yield logins
    finally:
        with admin.cursor() as cur:
            cur.execute("SET GLOBAL general_log = 0")


def connector(port: int, account: Account = APP, **options: Any) -> Any:
    """mysql-connector-python (pure Python) through the proxy or to the backend."""
    settings: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": port,
        "user": account.user,
        "password": account.password,
        "database": TEST_DB,
        "use_pure": True,
        "connection_timeout": 10,
    }
    settings.update(options)
    return mysql.connector.connect(**settings)


def connector_error(port: int, account: Account, **options: Any) -> tuple[int, str, str]:
    with pytest.raises(mysql.connector.Error) as caught:
        connector(port, account, **options).close()
    error = caught.value
    return error.errno, str(error.sqlstate), str(error.msg)


@pytest.fixture
def temp_account(backend: BackendInfo) -> Iterator[Callable[[str], Account]]:
    """Create accounts on the backend for one test; they are dropped afterwards."""
    created: list[str] = []

    def create(password: str) -> Account:
        name = f"auth_{uuid.uuid4().hex[:10]}"
        with admin_connect(backend) as admin, admin.cursor() as cur:
            if password:
                cur.execute(f"CREATE USER '{name}'@'%%' IDENTIFIED BY %s", (password,))
            else:
                cur.execute(f"CREATE USER '{name}'@'%'")
            cur.execute(f"GRANT ALL ON {TEST_DB}.* TO '{name}'@'%'")
        created.append(name)
        return Account(name, password)

    yield create
    with admin_connect(backend) as admin, admin.cursor() as cur:
        for name in created:
            cur.execute(f"DROP USER IF EXISTS '{name}'@'%'")


# -- a raw protocol client: exactly the bytes the tests want on the wire ----------------------


class MemoryTLS:
    """Client-side TLS over a plain socket with memory BIOs, so the test decides when each
    TLS byte is sent (e.g. the ClientHello in the same segment as the SSLRequest)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.incoming = ssl.MemoryBIO()
        self.outgoing = ssl.MemoryBIO()
        self.tls = unverified_tls().wrap_bio(self.incoming, self.outgoing)

    def client_hello(self) -> bytes:
        with pytest.raises(ssl.SSLWantReadError):
            self.tls.do_handshake()
        return self.outgoing.read()

    def _flush(self) -> None:
        data = self.outgoing.read()
        if data:
            self.sock.sendall(data)

    def _fill(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise EOFError("the proxy closed the connection")
        self.incoming.write(data)

    def finish_handshake(self) -> None:
        while True:
            try:
                self.tls.do_handshake()
            except ssl.SSLWantReadError:
                self._flush()
                self._fill()
            else:
                self._flush()
                return

    def sendall(self, data: bytes) -> None:
        self.tls.write(data)
        self._flush()

    def recv(self, size: int) -> bytes:
        while True:
            try:
                return self.tls.read(size)
            except ssl.SSLWantReadError:
                self._flush()
                try:
                    self._fill()
                except EOFError:
                    return b""
            except ssl.SSLZeroReturnError:
                return b""


@dataclass
class ServerGreeting:
    connection_id: int
    nonce: bytes
    capabilities: int
    auth_plugin: bytes


@dataclass
class Reply:
    """One packet from the server, with the fields of an ERR packet when it is one."""

    payload: bytes

    @property
    def is_ok(self) -> bool:
        return self.payload[:1] == b"\x00"

    @property
    def is_err(self) -> bool:
        return self.payload[:1] == b"\xff"

    @property
    def error(self) -> tuple[int, str]:
        assert self.is_err, self.payload
        code = struct.unpack("<H", self.payload[1:3])[0]
        assert self.payload[3:4] == b"#"
        return code, self.payload[4:9].decode("ascii")


class RawClient:
    """A minimal MySQL client: packets in and out, the login steps spelled out."""

    def __init__(self, port: int, timeout: float = 10.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.io: socket.socket | MemoryTLS = self.sock
        self.tls = False
        self.seq = 0
        self.greeting = self._read_greeting()

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> RawClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _recv_exactly(self, size: int) -> bytes:
        data = b""
        while len(data) < size:
            chunk = self.io.recv(size - len(data))
            if not chunk:
                raise EOFError("the proxy closed the connection")
            data += chunk
        return data

    def read(self) -> Reply:
        header = self._recv_exactly(4)
        self.seq = (header[3] + 1) & 0xFF
        return Reply(self._recv_exactly(int.from_bytes(header[:3], "little")))

    def frame(self, payload: bytes) -> bytes:
        data = len(payload).to_bytes(3, "little") + bytes((self.seq,)) + payload
        self.seq = (self.seq + 1) & 0xFF
        return data

    def send(self, payload: bytes) -> None:
        self.io.sendall(self.frame(payload))

    def _read_greeting(self) -> ServerGreeting:
        payload = self.read().payload
        assert payload[0] == 10, payload
        pos = payload.index(b"\x00", 1) + 1
        connection_id = struct.unpack("<I", payload[pos : pos + 4])[0]
        nonce = payload[pos + 4 : pos + 12]
        pos += 13
        caps = struct.unpack("<H", payload[pos : pos + 2])[0]
        caps |= struct.unpack("<H", payload[pos + 5 : pos + 7])[0] << 16
        nonce_length = payload[pos + 7]
        pos += 18
        part2 = max(13, nonce_length - 8)
        nonce += payload[pos : pos + part2].rstrip(b"\x00")
        plugin = payload[pos + part2 :].split(b"\x00")[0]
        return ServerGreeting(connection_id, nonce, caps, plugin)

    @staticmethod
    def fixed_part(caps: int) -> bytes:
        return struct.pack("<IIB23s", caps, 1 << 24, UTF8MB4_GENERAL_CI, b"")

    def ssl_request(self) -> bytes:
        return self.frame(self.fixed_part(RAW_CAPS | CLIENT.SSL))

    def start_tls(self) -> None:
        self.sock.sendall(self.ssl_request())
        self.sock = self.io = unverified_tls().wrap_socket(self.sock)
        self.tls = True

    def use_memory_tls(self, tls: MemoryTLS) -> None:
        self.io = tls
        self.tls = True

    def handshake_response(
        self, user: str, auth: bytes, plugin: bytes, database: str | None = None
    ) -> bytes:
        caps = RAW_CAPS | (CLIENT.SSL if self.tls else 0)
        if database is not None:
            caps |= CLIENT.CONNECT_WITH_DB
        parts = [self.fixed_part(caps), user.encode() + b"\x00", bytes((len(auth),)) + auth]
        if database is not None:
            parts.append(database.encode() + b"\x00")
        parts.append(plugin + b"\x00")
        return b"".join(parts)

    def login_sha2_over_tls(self, account: Account) -> Reply:
        """caching_sha2_password as clients do it: the scramble first; then either the
        server accepts it (fast path) or asks for full authentication, and gets the
        password in clear (the channel is TLS). Returns the final OK or ERR."""
        password = account.password.encode()
        scramble = pymysql_auth.scramble_caching_sha2(password, self.greeting.nonce)
        self.send(self.handshake_response(account.user, scramble, CACHING_SHA2))
        return self.finish_sha2(password)

    def finish_sha2(self, password: bytes) -> Reply:
        reply = self.read()
        if reply.payload == b"\x01\x03":  # fast path: the scramble was enough
            return self.read()
        if reply.payload == b"\x01\x04":
            self.send(password + b"\x00")
            return self.read()
        return reply

    def closed_by_peer(self, within: float = CLOSE_WITHIN) -> bool:
        """Whether the proxy closes the connection (EOF) within ``within`` seconds;
        anything it still sends meanwhile is read and dropped."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                if not self.io.recv(65536):
                    return True
            except TimeoutError:
                return False
            except (ConnectionError, ssl.SSLError):
                return True
        return False


def opened_connections(caplog: pytest.LogCaptureFixture) -> set[int]:
    """Ids of the connections the proxy logged as logged in (its "opened" line)."""
    opened = (r for r in caplog.records if r.getMessage().startswith("opened: "))
    return {int(r.__dict__["connection_id"]) for r in opened}


# -- logging in ------------------------------------------------------------------------------


def test_pymysql_over_tls_runs_as_the_clients_own_account(
    proxy: RunningProxy, backend: BackendInfo
) -> None:
    with proxy.connect(ssl=unverified_tls()) as conn:
        assert isinstance(conn._sock, ssl.SSLSocket)
        current, user = whoami(conn)
    assert current == "app@%"
    assert (current, user) == direct_whoami(backend, APP)


def test_pymysql_without_tls_gets_the_proxys_rsa_key_and_runs_as_itself(
    proxy: RunningProxy, backend: BackendInfo, temp_account: Callable[[str], Account]
) -> None:
    # A new account: the proxy has no cached password for it, so this is the full path.
    account = temp_account("rsa-" + uuid.uuid4().hex[:8])
    with proxy.connect(account, ssl_disabled=True) as conn:
        assert not isinstance(conn._sock, ssl.SSLSocket)
        current, user = whoami(conn)
        # The client asked for the public key and encrypted its password with it.
        assert proxy.server is not None and proxy.server.ctx is not None
        expected_key = (
            proxy.server.ctx.auth.rsa_key.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .strip()
        )
        assert conn.server_public_key is not None
        assert conn.server_public_key.strip() == expected_key
    assert current == f"{account.user}@%"
    assert (current, user) == direct_whoami(backend, account)


def test_returning_plaintext_client_needs_no_rsa_exchange(
    proxy: RunningProxy, backend: BackendInfo, temp_account: Callable[[str], Account]
) -> None:
    account = temp_account("again-" + uuid.uuid4().hex[:8])
    with proxy.connect(account, ssl_disabled=True) as first:
        assert first.server_public_key is not None
    with proxy.connect(account, ssl_disabled=True) as second:
        assert second.server_public_key is None  # the fast path was enough
        assert whoami(second) == direct_whoami(backend, account)


def test_returning_client_with_a_wrong_password_is_still_refused(
    proxy: RunningProxy, backend: BackendInfo, temp_account: Callable[[str], Account]
) -> None:
    account = temp_account("known-" + uuid.uuid4().hex[:8])
    with proxy.connect(account):
        pass  # the proxy now knows the password
    wrong = Account(account.user, "not-" + account.password)
    through = connector_error(proxy.port, wrong)
    assert through == connector_error(backend.port, wrong)
    assert through[:2] == (ER_ACCESS_DENIED, "28000")


@pytest.mark.parametrize("tls", [True, False], ids=["tls", "plain"])
def test_each_account_runs_as_itself(proxy: RunningProxy, backend: BackendInfo, tls: bool) -> None:
    options: dict[str, Any] = {"ssl": unverified_tls()} if tls else {"ssl_disabled": True}
    with proxy.connect(OTHER, **options) as other, proxy.connect(APP, **options) as app:
        assert whoami(other) == direct_whoami(backend, OTHER)
        assert whoami(app) == direct_whoami(backend, APP)
        assert whoami(other)[0] == "other@%"


@pytest.mark.parametrize("tls", [True, False], ids=["tls", "plain"])
def test_account_with_an_empty_password_logs_in(
    proxy: RunningProxy, backend: BackendInfo, temp_account: Callable[[str], Account], tls: bool
) -> None:
    account = temp_account("")
    options: dict[str, Any] = {"ssl": unverified_tls()} if tls else {"ssl_disabled": True}
    with proxy.connect(account, **options) as conn:
        current, _ = whoami(conn)
    assert current == f"{account.user}@%"
    assert current == direct_whoami(backend, account)[0]


def test_password_given_for_an_account_without_one_is_refused(
    proxy: RunningProxy, backend: BackendInfo, temp_account: Callable[[str], Account]
) -> None:
    account = Account(temp_account("").user, "not-empty")
    through = connector_error(proxy.port, account)
    assert through == connector_error(backend.port, account)
    assert through[:2] == (ER_ACCESS_DENIED, "28000")


# -- refused logins --------------------------------------------------------------------------

REFUSED = {
    "wrong-password": Account(APP.user, "not-" + APP.password),
    "unknown-user": Account("nobody_" + uuid.uuid4().hex[:8], "whatever"),
    "empty-password": Account(APP.user, ""),
}


def refusal_codes(account: Account) -> set[int]:
    if account.user == APP.user:
        return {ER_ACCESS_DENIED}
    return {ER_ACCESS_DENIED, ER_ACCESS_DENIED_NO_PASSWORD}


@pytest.mark.parametrize("account", REFUSED.values(), ids=REFUSED.keys())
def test_refused_login_gets_the_backends_own_error(
    proxy: RunningProxy, backend: BackendInfo, account: Account
) -> None:
    """Code, SQLSTATE and message are what the backend says to the same login direct."""
    through = connector_error(proxy.port, account)
    assert through == connector_error(backend.port, account)
    assert through[0] in refusal_codes(account)
    assert through[1] == "28000"


@pytest.mark.parametrize("account", REFUSED.values(), ids=REFUSED.keys())
def test_refused_login_is_followed_by_the_proxy_closing_the_connection(
    proxy: RunningProxy, account: Account
) -> None:
    with RawClient(proxy.port) as client:
        client.start_tls()
        code, sqlstate = client.login_sha2_over_tls(account).error
        assert code in refusal_codes(account)
        assert sqlstate == "28000"
        assert client.closed_by_peer()


def test_pymysql_reports_a_refused_login_as_1045(proxy: RunningProxy) -> None:
    with pytest.raises(pymysql.err.OperationalError) as caught:
        proxy.connect(REFUSED["wrong-password"])
    assert caught.value.args[0] == ER_ACCESS_DENIED


def wait_for_sessions(proxy: RunningProxy, count: int, within: float = CLOSE_WITHIN) -> int:
    """Poll until the proxy serves ``count`` sessions (or the time is up); return the count."""
    deadline = time.monotonic() + within
    while proxy.session_count() != count and time.monotonic() < deadline:
        time.sleep(0.05)
    return proxy.session_count()


def test_refused_sessions_are_not_kept(strict_proxy: RunningProxy) -> None:
    assert wait_for_sessions(strict_proxy, 0) == 0
    for account in REFUSED.values():
        with RawClient(strict_proxy.port) as client:
            client.start_tls()
            assert client.login_sha2_over_tls(account).is_err
            assert client.closed_by_peer()
    assert wait_for_sessions(strict_proxy, 0) == 0


# -- mysql_clear_password --------------------------------------------------------------------


def test_clear_password_over_tls_logs_in(proxy: RunningProxy, backend: BackendInfo) -> None:
    conn = connector(
        proxy.port, auth_plugin="mysql_clear_password", ssl_verify_cert=False, ssl_disabled=False
    )
    try:
        assert whoami(conn) == direct_whoami(backend, APP)
    finally:
        conn.close()


def test_clear_password_over_tls_with_a_wrong_password_is_refused(proxy: RunningProxy) -> None:
    with RawClient(proxy.port) as client:
        client.start_tls()
        password = b"not-" + APP.password.encode() + b"\x00"
        client.send(client.handshake_response(APP.user, password, CLEAR))
        assert client.read().error == (ER_ACCESS_DENIED, "28000")
        assert client.closed_by_peer()


def test_raw_clear_password_over_tls_logs_in(proxy: RunningProxy) -> None:
    with RawClient(proxy.port) as client:
        client.start_tls()
        password = APP.password.encode() + b"\x00"
        client.send(client.handshake_response(APP.user, password, CLEAR, TEST_DB))
        assert client.read().is_ok


def test_clear_password_without_tls_is_refused_before_the_backend(
    proxy: RunningProxy, backend: BackendInfo
) -> None:
    with admin_connect(backend) as admin, backend_logins(admin) as logins:
        with RawClient(proxy.port) as client:
            password = APP.password.encode() + b"\x00"
            client.send(client.handshake_response(APP.user, password, CLEAR))
            assert client.read().error == (ER_ACCESS_DENIED, "28000")
            assert client.closed_by_peer()
        assert logins(APP.user) == 0


# -- the users file: mysql_native_password-only clients --------------------------------------


@pytest.fixture(scope="module")
def users_proxy(
    backend: BackendInfo, tmp_path_factory: pytest.TempPathFactory, proxy_loop: str
) -> Iterator[RunningProxy]:
    """A proxy with a users file naming APP (and not OTHER)."""
    path = tmp_path_factory.mktemp("users") / "users.toml"
    path.write_text(f'[users]\n{APP.user} = "{APP.password}"\n', encoding="utf-8")
    running = start_proxy(backend, users_file=str(path), loop=proxy_loop)
    yield running
    running.stop()


def test_native_only_client_logs_in_with_a_users_file_account(
    users_proxy: RunningProxy, backend: BackendInfo
) -> None:
    conn = connector(users_proxy.port, auth_plugin="mysql_native_password", ssl_disabled=True)
    try:
        assert whoami(conn) == direct_whoami(backend, APP)
    finally:
        conn.close()


def test_users_file_account_native_scramble_is_accepted_without_a_switch(
    users_proxy: RunningProxy,
) -> None:
    """A client that only knows mysql_native_password answers the greeting with a native
    scramble; for a users-file account the next packet is the final OK."""
    with RawClient(users_proxy.port) as client:
        scramble = pymysql_auth.scramble_native_password(
            APP.password.encode(), client.greeting.nonce
        )
        client.send(client.handshake_response(APP.user, scramble, NATIVE, TEST_DB))
        assert client.read().is_ok


def test_account_outside_the_users_file_is_switched_to_caching_sha2(
    users_proxy: RunningProxy,
) -> None:
    """The control case: without the file the proxy cannot check a native scramble, so it
    asks for caching_sha2_password (which a native-only client cannot do)."""
    with RawClient(users_proxy.port) as client:
        scramble = pymysql_auth.scramble_native_password(
            OTHER.password.encode(), client.greeting.nonce
        )
        client.send(client.handshake_response(OTHER.user, scramble, NATIVE))
        reply = client.read()
        assert reply.payload.startswith(b"\xfe" + CACHING_SHA2 + b"\x00")


def test_caching_sha2_client_with_a_users_file_account_uses_the_fast_path(
    users_proxy: RunningProxy, backend: BackendInfo
) -> None:
    with users_proxy.connect(ssl_disabled=True) as conn:
        assert whoami(conn) == direct_whoami(backend, APP)
        assert conn.server_public_key is None  # no RSA exchange was needed


@pytest.mark.parametrize("plugin", [NATIVE, CACHING_SHA2])
def test_wrong_password_for_a_users_file_account_is_refused_by_the_proxy(
    users_proxy: RunningProxy, backend: BackendInfo, plugin: bytes
) -> None:
    with admin_connect(backend) as admin, backend_logins(admin) as logins:
        with RawClient(users_proxy.port) as client:
            wrong = b"not-" + APP.password.encode()
            nonce = client.greeting.nonce
            if plugin == NATIVE:
                scramble = pymysql_auth.scramble_native_password(wrong, nonce)
            else:
                scramble = pymysql_auth.scramble_caching_sha2(wrong, nonce)
            client.send(client.handshake_response(APP.user, scramble, plugin))
            assert client.read().error == (ER_ACCESS_DENIED, "28000")
            assert client.closed_by_peer()
        # The proxy checked the scramble itself: the backend never saw a login as the user.
        assert logins(APP.user) == 0


def test_wrong_password_outside_the_users_file_reaches_the_backend(
    users_proxy: RunningProxy, backend: BackendInfo
) -> None:
    """The control case for the counter above: it does count refused backend logins."""
    with admin_connect(backend) as admin, backend_logins(admin) as logins:
        with RawClient(users_proxy.port) as client:
            client.start_tls()
            reply = client.login_sha2_over_tls(Account(OTHER.user, "not-" + OTHER.password))
            assert reply.error == (ER_ACCESS_DENIED, "28000")
        assert logins(OTHER.user) > 0  # MariaDB logs the attempt and the denial


# -- require_tls and the configured certificate -----------------------------------------------


@pytest.fixture(scope="module")
def tls_only_proxy(backend: BackendInfo, proxy_loop: str) -> Iterator[RunningProxy]:
    running = start_proxy(backend, require_tls=True, loop=proxy_loop)
    yield running
    running.stop()


def test_require_tls_refuses_a_plaintext_client_with_3159(tls_only_proxy: RunningProxy) -> None:
    with pytest.raises(pymysql.err.OperationalError) as caught:
        tls_only_proxy.connect(ssl_disabled=True)
    assert caught.value.args[0] == ER_SECURE_TRANSPORT_REQUIRED


def test_require_tls_refusal_closes_the_connection(tls_only_proxy: RunningProxy) -> None:
    with RawClient(tls_only_proxy.port) as client:
        scramble = pymysql_auth.scramble_caching_sha2(APP.password.encode(), client.greeting.nonce)
        client.send(client.handshake_response(APP.user, scramble, CACHING_SHA2))
        assert client.read().error[0] == ER_SECURE_TRANSPORT_REQUIRED
        assert client.closed_by_peer()


def test_require_tls_admits_a_tls_client(
    tls_only_proxy: RunningProxy, backend: BackendInfo
) -> None:
    with tls_only_proxy.connect(ssl=unverified_tls()) as conn:
        assert whoami(conn) == direct_whoami(backend, APP)


def write_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost, and its key (PEM files)."""
    key = generate_rsa_key()
    certificate = self_signed_certificate(
        key, "mlproxy-test", ip_addresses=("127.0.0.1",), dns_names=("localhost",), days=1
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(certificate)
    key_path.write_bytes(private_key_pem(key))
    return cert_path, key_path


def test_configured_certificate_is_presented_and_verifies(
    backend: BackendInfo, tmp_path: Path, proxy_loop: str
) -> None:
    cert_path, key_path = write_certificate(tmp_path)
    expected_der = x509.load_pem_x509_certificate(cert_path.read_bytes()).public_bytes(
        serialization.Encoding.DER
    )
    running = start_proxy(backend, tls_cert=str(cert_path), tls_key=str(key_path), loop=proxy_loop)
    try:
        with running.connect(ssl_ca=str(cert_path), ssl_verify_identity=True) as conn:
            assert conn._sock.getpeercert(binary_form=True) == expected_der
            assert whoami(conn)[0] == "app@%"
    finally:
        running.stop()


def test_default_certificate_does_not_verify_against_another_ca(
    proxy: RunningProxy, tmp_path: Path
) -> None:
    """The control case: verification above is real, a foreign certificate fails it."""
    cert_path, _ = write_certificate(tmp_path)
    with pytest.raises(pymysql.err.OperationalError) as caught:
        proxy.connect(ssl_ca=str(cert_path), ssl_verify_cert=True)
    assert "CERTIFICATE_VERIFY_FAILED" in str(caught.value)


# -- TLS started with bytes already pipelined behind the SSLRequest ---------------------------


def test_client_hello_in_the_same_segment_as_the_ssl_request_is_not_lost(
    proxy: RunningProxy,
) -> None:
    """Clients send the ClientHello right behind the SSLRequest without waiting; when both
    arrive in one read the proxy must still see the ClientHello (it used to hang until the
    handshake timeout: asyncio's start_tls dropped the bytes already read)."""
    with RawClient(proxy.port) as client:
        tls = MemoryTLS(client.sock)
        client.sock.sendall(client.ssl_request() + tls.client_hello())
        tls.finish_handshake()
        client.use_memory_tls(tls)
        password = APP.password.encode() + b"\x00"
        client.send(client.handshake_response(APP.user, password, CLEAR, TEST_DB))
        assert client.read().is_ok


def test_plaintext_pipelined_behind_the_ssl_request_is_not_taken_as_tls_data(
    proxy: RunningProxy, caplog: pytest.LogCaptureFixture
) -> None:
    """Bytes sent in clear before the TLS handshake (a MITM's injection) must not be read
    later as if they had come through TLS (the STARTTLS injection problem)."""
    caplog.set_level(logging.INFO, logger="mlproxy.proxy")
    with RawClient(proxy.port) as client:
        injected = client.handshake_response(
            APP.user, APP.password.encode() + b"\x00", CLEAR, TEST_DB
        )
        tls = MemoryTLS(client.sock)
        client.sock.sendall(client.ssl_request() + client.frame(injected))
        client.sock.sendall(tls.client_hello())
        logged_in = False
        try:
            tls.finish_handshake()
            client.use_memory_tls(tls)
            logged_in = client.read().is_ok
        except (ssl.SSLError, EOFError, ConnectionError, TimeoutError):
            pass
        assert not logged_in
        assert client.closed_by_peer()
    assert client.greeting.connection_id not in opened_connections(caplog)


def test_tls_client_that_never_answers_close_notify_is_still_disconnected(
    proxy: RunningProxy,
) -> None:
    """After a refused login the proxy closes TLS with close_notify; a client that never
    answers it must not keep the proxy's socket open (asyncio alone waits 30 s)."""
    with RawClient(proxy.port) as client:
        tls = MemoryTLS(client.sock)
        client.sock.sendall(client.ssl_request() + tls.client_hello())
        tls.finish_handshake()
        client.use_memory_tls(tls)
        client.send(client.handshake_response(APP.user, b"wrong\x00", CLEAR))
        assert client.read().error == (ER_ACCESS_DENIED, "28000")
        # Read raw TCP from here on: the close_notify arrives, is not answered, then EOF.
        client.io = client.sock
        assert client.closed_by_peer(within=CLOSE_WITHIN)


# -- COM_CHANGE_USER --------------------------------------------------------------------------


def session_view(conn: Any, temporary_table: str) -> dict[str, Any]:
    """Who the session is, its @marker and database, and whether ``temporary_table`` is
    still there (None) or the error that says it is gone."""
    cur = conn.cursor()
    cur.execute("SELECT CURRENT_USER(), @marker, DATABASE()")
    current, marker, database = cur.fetchone()
    try:
        cur.execute(f"SELECT * FROM {temporary_table}")
        cur.fetchall()
        temp_table_error = None
    except mysql.connector.Error as exc:
        temp_table_error = exc.errno
    cur.close()
    return {
        "current_user": current,
        "marker": marker,
        "database": database,
        "temp_table_error": temp_table_error,
    }


def change_user_outcome(port: int) -> dict[str, Any]:
    """As APP: set session state, change to OTHER, then report what the session sees."""
    conn = connector(port, ssl_verify_cert=False)
    try:
        cur = conn.cursor()
        cur.execute("SET @marker = 42")
        cur.execute("CREATE TEMPORARY TABLE change_user_tmp (a INT)")
        cur.close()
        conn.cmd_change_user(OTHER.user, OTHER.password, TEST_DB)
        return session_view(conn, "change_user_tmp")
    finally:
        conn.close()


def test_change_user_runs_as_the_new_account_with_fresh_session_state(
    proxy: RunningProxy, backend: BackendInfo
) -> None:
    through = change_user_outcome(proxy.port)
    assert through == change_user_outcome(backend.port)
    assert through["current_user"] == "other@%"
    assert through["marker"] is None
    assert through["temp_table_error"] == 1146  # ER_NO_SUCH_TABLE


def test_change_user_moves_the_session_to_a_new_backend_thread(
    proxy: RunningProxy, backend: BackendInfo
) -> None:
    conn = connector(proxy.port, ssl_verify_cert=False)
    try:
        cur = conn.cursor()
        cur.execute("SELECT CONNECTION_ID()")
        (old_thread,) = cur.fetchone()
        cur.close()
        conn.cmd_change_user(OTHER.user, OTHER.password, TEST_DB)
        cur = conn.cursor()
        cur.execute("SELECT CONNECTION_ID(), CURRENT_USER()")
        new_thread, current = cur.fetchone()
        cur.close()
    finally:
        conn.close()
    assert current == "other@%"
    with admin_connect(backend) as admin, admin.cursor() as cur:
        cur.execute(
            "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = %s", (old_thread,)
        )
        assert cur.fetchone() == (0,)  # APP's backend connection is not left behind
    assert new_thread != old_thread


def test_failed_change_user_reports_1045_and_keeps_the_old_user(proxy: RunningProxy) -> None:
    """A refused COM_CHANGE_USER gets the backend's 1045, and the session stays the
    previous account's, as on the server (never the account the client failed to log
    in as); a ping after it is answered."""
    with RawClient(proxy.port) as client:
        client.start_tls()
        assert client.login_sha2_over_tls(APP).is_ok
        wrong = b"not-" + OTHER.password.encode()
        scramble = pymysql_auth.scramble_caching_sha2(wrong, client.greeting.nonce)
        client.seq = 0
        client.send(
            b"\x11"
            + OTHER.user.encode()
            + b"\x00"
            + bytes((len(scramble),))
            + scramble
            + TEST_DB.encode()
            + b"\x00"
            + struct.pack("<H", UTF8MB4_GENERAL_CI)
            + CACHING_SHA2
            + b"\x00"
        )
        assert client.finish_sha2(wrong).error == (ER_ACCESS_DENIED, "28000")
        assert not client.closed_by_peer(within=0.5)


def failed_change_user_outcome(port: int) -> dict[str, Any]:
    """As APP: set session state, fail to change to OTHER three times and a fourth, then
    report what the session is."""
    conn = connector(port, ssl_verify_cert=False)
    try:
        cur = conn.cursor()
        cur.execute("SET @marker = 42")
        cur.execute("CREATE TEMPORARY TABLE failed_change_tmp (a INT)")
        cur.close()
        errors = []
        for _ in range(4):
            try:
                conn.cmd_change_user(OTHER.user, "not-" + OTHER.password, TEST_DB)
            except mysql.connector.Error as exc:
                errors.append((exc.errno, exc.sqlstate))
        return {"errors": errors, **session_view(conn, "failed_change_tmp")}
    finally:
        conn.close()


def test_failed_change_user_behaves_as_directly(proxy: RunningProxy, backend: BackendInfo) -> None:
    """Three refused changes (1045), then COM_CHANGE_USER is refused as an unknown
    command (1047, MariaDB's MDEV-3915); the session is the old account's, reset as a
    change of user resets it (its variables and temporary tables gone)."""
    through = failed_change_user_outcome(proxy.port)
    assert through == failed_change_user_outcome(backend.port)
    assert through["errors"] == [(ER_ACCESS_DENIED, "28000")] * 3 + [(1047, "08S01")]
    assert through["current_user"] == "app@%"
    assert through["marker"] is None


# -- malformed input before authentication -----------------------------------------------------

FUZZ_SEED = 20240611
FUZZ_CASES = 60
FUZZ_HANDSHAKE_TIMEOUT = 2.0


@pytest.fixture(scope="module")
def strict_proxy(backend: BackendInfo, proxy_loop: str) -> Iterator[RunningProxy]:
    running = start_proxy(backend, handshake_timeout=FUZZ_HANDSHAKE_TIMEOUT, loop=proxy_loop)
    yield running
    running.stop()


def _header(length: int, seq: int = 1) -> bytes:
    return (length & 0xFFFFFF).to_bytes(3, "little") + bytes((seq & 0xFF,))


def malformed_inputs(rng: random.Random, nonce_source: RawClient) -> list[tuple[str, bytes]]:
    """Named byte strings a broken or hostile client might send after the greeting."""
    nonce = nonce_source.greeting.nonce
    valid = nonce_source.handshake_response(
        APP.user, pymysql_auth.scramble_caching_sha2(APP.password.encode(), nonce), CACHING_SHA2
    )
    ssl_request = RawClient.fixed_part(RAW_CAPS | CLIENT.SSL)
    cases: list[tuple[str, bytes]] = [
        ("silence", b""),
        ("half-header", b"\x05\x00"),
        ("empty-packet", _header(0)),
        ("max-length-field", _header(0xFFFFFF) + bytes(64)),
        ("just-over-64k", _header(0x10001) + bytes(1024)),
        ("ssl-request-then-junk", _header(32) + ssl_request + b"GET / HTTP/1.1\r\n\r\n"),
        ("two-ssl-requests", (_header(32) + ssl_request) * 2),
        ("http", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
    ]
    while len(cases) < FUZZ_CASES:
        kind = rng.choice(["random", "truncated", "short-frame", "flipped", "structured"])
        if kind == "random":
            data = rng.randbytes(rng.randint(1, 300))
        elif kind == "truncated":  # the header promises the whole response, less arrives
            data = _header(len(valid)) + valid[: rng.randint(0, len(valid) - 1)]
        elif kind == "short-frame":  # a well-framed packet holding a prefix of a response
            cut = valid[: rng.randint(0, len(valid) - 1)]
            data = _header(len(cut)) + cut
        elif kind == "flipped":
            flipped = bytearray(valid)
            for _ in range(rng.randint(1, 6)):
                flipped[rng.randrange(len(flipped))] = rng.randrange(256)
            data = _header(len(flipped)) + bytes(flipped)
        else:
            caps = rng.getrandbits(32) | CLIENT.PROTOCOL_41
            body = (
                struct.pack("<IIB23s", caps, rng.getrandbits(32), rng.randrange(256), b"")
                + rng.randbytes(rng.randint(0, 40))
                + b"\x00"
                + rng.randbytes(rng.randint(0, 60))
            )
            data = _header(len(body)) + body
        cases.append((kind, data))
    return cases


def wait_all_closed(clients: list[tuple[str, RawClient]], within: float) -> list[str]:
    """Read every socket until the proxy closes it; return the names of those still open."""
    selector = selectors.DefaultSelector()
    for name, client in clients:
        client.sock.setblocking(False)
        selector.register(client.sock, selectors.EVENT_READ, name)
    deadline = time.monotonic() + within
    try:
        while selector.get_map() and time.monotonic() < deadline:
            for key, _ in selector.select(timeout=max(0.0, deadline - time.monotonic())):
                sock: socket.socket = key.fileobj  # type: ignore[assignment]
                try:
                    data = sock.recv(65536)
                except BlockingIOError:
                    continue
                except ConnectionError:
                    data = b""
                if not data:
                    selector.unregister(sock)
        return sorted(str(key.data) for key in selector.get_map().values())
    finally:
        selector.close()


def test_malformed_input_before_login_never_authenticates_and_is_closed_in_time(
    strict_proxy: RunningProxy, backend: BackendInfo, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="mlproxy.proxy")
    rng = random.Random(FUZZ_SEED)
    clients: list[tuple[str, RawClient]] = []
    try:
        with RawClient(strict_proxy.port) as template:
            cases = malformed_inputs(rng, template)
        started = time.monotonic()
        for index, (name, data) in enumerate(cases):
            client = RawClient(strict_proxy.port)
            clients.append((f"{index}:{name}", client))
            with contextlib.suppress(ConnectionError):  # already refused and closed
                client.sock.sendall(data)
        still_open = wait_all_closed(clients, FUZZ_HANDSHAKE_TIMEOUT + 4.0)
        assert still_open == []
        assert time.monotonic() - started < FUZZ_HANDSHAKE_TIMEOUT + 4.0
    finally:
        for _, client in clients:
            client.close()
    fuzzed = {client.greeting.connection_id for _, client in clients}
    assert not opened_connections(caplog) & fuzzed
    problems = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert problems == [], [r.getMessage() for r in problems]
    # The proxy is still healthy: a normal login works and no session was left behind.
    with strict_proxy.connect() as conn:
        assert whoami(conn) == direct_whoami(backend, APP)
    assert wait_for_sessions(strict_proxy, 0) == 0


def test_silent_client_is_closed_after_the_handshake_timeout(strict_proxy: RunningProxy) -> None:
    with RawClient(strict_proxy.port) as client:
        started = time.monotonic()
        assert client.closed_by_peer(within=FUZZ_HANDSHAKE_TIMEOUT + 4.0)
        elapsed = time.monotonic() - started
    assert FUZZ_HANDSHAKE_TIMEOUT - 0.5 <= elapsed < FUZZ_HANDSHAKE_TIMEOUT + 4.0


def test_oversized_length_field_is_refused_without_an_internal_error(
    strict_proxy: RunningProxy, caplog: pytest.LogCaptureFixture
) -> None:
    """A handshake packet announced larger than any login needs is a protocol error."""
    caplog.set_level(logging.INFO, logger="mlproxy.proxy")
    with RawClient(strict_proxy.port) as client:
        client.sock.sendall(_header(0xFFFFFF) + bytes(100))
        started = time.monotonic()
        assert client.closed_by_peer(within=FUZZ_HANDSHAKE_TIMEOUT + 4.0)
        assert time.monotonic() - started < FUZZ_HANDSHAKE_TIMEOUT
    assert not [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


def test_generated_certificate_passes_host_name_verification(
    proxy: RunningProxy, tmp_path: Any
) -> None:
    """A client that trusts the generated certificate and checks the host name (as
    DBD::MariaDB's mariadb_ssl_verify_server_cert does) connects by 127.0.0.1 and by
    localhost: the certificate names them (subjectAltName)."""
    with pymysql.connect(
        host="127.0.0.1",
        port=proxy.port,
        user=APP.user,
        password=APP.password,
        ssl={"check_hostname": False, "verify_mode": ssl.CERT_NONE},
    ) as first:
        der = first._sock.getpeercert(binary_form=True)
    ca = tmp_path / "proxy.pem"
    ca.write_text(ssl.DER_cert_to_PEM_cert(der))
    for host in ("127.0.0.1", "localhost"):
        with (
            pymysql.connect(
                host=host,
                port=proxy.port,
                user=APP.user,
                password=APP.password,
                ssl_ca=str(ca),
                ssl_verify_cert=True,
                ssl_verify_identity=True,
            ) as conn,
            conn.cursor() as cur,
        ):
            cur.execute("SELECT CURRENT_USER()")
            assert cur.fetchone()[0].startswith(APP.user + "@")
