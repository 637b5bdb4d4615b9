"""Connections from the proxy to the backend MySQL/MariaDB server.

Each client session gets one backend connection, opened as the client's own user with
the capabilities the client negotiated with the proxy, so that the backend's packets can
be relayed to the client byte for byte. The login speaks mysql_native_password,
caching_sha2_password (fast path, full path over TLS or with the server's RSA key) and
mysql_clear_password (only over TLS or a unix socket).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from dataclasses import dataclass

from mysql_mimic.types import Capabilities

from proxy.auth.old_password import OLD, old_scramble
from proxy.errors import (
    BackendLost,
    BackendProtocolError,
    BackendRejected,
    BackendTLSError,
    BackendUnavailable,
    UnsupportedAuthMethod,
)
from proxy.transport.stream import Message, PacketStream, open_connection, open_unix_connection
from proxy.wire import scramble
from proxy.wire.capabilities import (
    CLIENT_DEPRECATE_EOF,
    CLIENT_QUERY_ATTRIBUTES,
    RELAYABLE_MARIADB,
)
from proxy.wire.handshake import (
    AUTH_MORE_DATA,
    AUTH_SWITCH,
    Greeting,
    HandshakeResponse,
    make_handshake_response,
    parse_auth_switch,
    parse_greeting,
)
from proxy.wire.packets import ERR_HEADER, OK_HEADER, ok_status, parse_err
from proxy.wire.query_attributes import query_head
from proxy.wire.result_shape import ResultShape
from rewriter.charsets import UTF8, ClientCharset

log = logging.getLogger(f"mlproxy.{__name__}")

# Capabilities a client may carry through to the backend: those whose effect on the
# byte stream the relay understands (see proxy.wire.scanner, proxy.wire.capabilities), or which only
# change server-side behaviour (FOUND_ROWS, IGNORE_SPACE, INTERACTIVE, LOCAL_FILES,
# MULTI_STATEMENTS...). MariaDB's extended ones are bits 32 and up.
RELAYABLE_CAPABILITIES = int(
    Capabilities.CLIENT_LONG_PASSWORD
    | Capabilities.CLIENT_FOUND_ROWS
    | Capabilities.CLIENT_LONG_FLAG
    | Capabilities.CLIENT_NO_SCHEMA
    | Capabilities.CLIENT_ODBC
    | Capabilities.CLIENT_LOCAL_FILES
    | Capabilities.CLIENT_IGNORE_SPACE
    | Capabilities.CLIENT_PROTOCOL_41
    | Capabilities.CLIENT_INTERACTIVE
    | Capabilities.CLIENT_IGNORE_SIGPIPE
    | Capabilities.CLIENT_TRANSACTIONS
    | Capabilities.CLIENT_SECURE_CONNECTION
    | Capabilities.CLIENT_MULTI_STATEMENTS
    | Capabilities.CLIENT_MULTI_RESULTS
    | Capabilities.CLIENT_PS_MULTI_RESULTS
    | Capabilities.CLIENT_PLUGIN_AUTH
    | Capabilities.CLIENT_CONNECT_ATTRS
    | Capabilities.CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA
    | Capabilities.CLIENT_SESSION_TRACK
) | (CLIENT_DEPRECATE_EOF | CLIENT_QUERY_ATTRIBUTES | RELAYABLE_MARIADB)

_REQUIRED = (
    Capabilities.CLIENT_PROTOCOL_41
    | Capabilities.CLIENT_SECURE_CONNECTION
    | Capabilities.CLIENT_PLUGIN_AUTH
    | Capabilities.CLIENT_TRANSACTIONS
)


@dataclass(frozen=True)
class BackendAddress:
    """Where the backend listens."""

    host: str
    port: int
    unix_socket: str | None = None

    def __str__(self) -> str:
        return self.unix_socket or f"{self.host}:{self.port}"


@dataclass(frozen=True)
class Login:
    """Who to log in as, and with what the client negotiated."""

    user: bytes
    password: bytes
    database: bytes | None
    capabilities: int
    collation: int
    max_packet_size: int = 1 << 30
    connect_attrs: bytes = b""
    #: SHA1(password) in place of the password, for a mysql_native_password account whose
    #: client the proxy checked against the stored hash (proxy.auth.native_accounts).
    native_stage1: bytes | None = None


#: What the proxy's own connections (the registry poller, the CLI) negotiate.
SERVICE_CAPABILITIES = int(
    Capabilities.CLIENT_PROTOCOL_41
    | Capabilities.CLIENT_SECURE_CONNECTION
    | Capabilities.CLIENT_PLUGIN_AUTH
    | Capabilities.CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA
    | Capabilities.CLIENT_LONG_PASSWORD
    | Capabilities.CLIENT_TRANSACTIONS
    | Capabilities.CLIENT_MULTI_RESULTS
)
UTF8MB4_GENERAL_CI = 45


def service_login(user: bytes, password: bytes, database: bytes | None = None) -> Login:
    """A login for a connection of the proxy's own (utf8mb4, no multi-statements)."""
    return Login(user, password, database, SERVICE_CAPABILITIES, UTF8MB4_GENERAL_CI)


async def _open_stream(address: BackendAddress) -> PacketStream:
    if address.unix_socket:
        return await open_unix_connection(address.unix_socket)
    return await open_connection(address.host, address.port)


async def probe(
    address: BackendAddress,
    timeout: float,
    account: Login | None = None,
    tls: ssl.SSLContext | None = None,
) -> Greeting:
    """Read the backend's greeting (version, collation, capabilities, status flags), at
    start-up: what the first clients are greeted with (proxy.wire.greeting).

    With an account (the backend URL's), the probe logs in and quits: it leaves no trace
    in the backend's error log. Without one it closes after the greeting, which the
    backend logs as a warning ("Aborted connection ... closed normally without
    authentication", as for any TCP health check) and counts once toward the proxy
    host's max_connect_errors, until the next successful login from that host resets
    the count. (It used to leave by a failed login as 'mlproxy-abandoned-login', which
    the error log reported as "Access denied"; issue 16.)"""
    if account is not None:
        connection = await BackendConnection.open(address, account, tls=tls, timeout=timeout)
        await connection.close()
        return connection.greeting
    greeted = await greet(address, timeout)
    greeted.stream.close()
    await greeted.stream.wait_closed()
    return greeted.greeting


async def greet(address: BackendAddress, timeout: float) -> GreetedBackend:
    """Connect and read the backend's greeting: its version and its current status flags
    (autocommit, NO_BACKSLASH_ESCAPES), which the client's own greeting must carry."""
    try:
        async with asyncio.timeout(timeout):  # not wait_for: before 3.12 a task per call
            stream = await _open_stream(address)
    except (TimeoutError, OSError) as exc:
        raise BackendUnavailable(f"cannot reach the backend MySQL server at {address}") from exc
    try:
        async with asyncio.timeout(timeout):
            first = await stream.read_message()
        if first.payload[:1] == bytes((ERR_HEADER,)):
            raise BackendRejected(parse_err(first.payload))  # e.g. 1040, 1129 host blocked
        return GreetedBackend(stream, address, parse_greeting(first.payload), first.next_seq)
    except BaseException as exc:
        stream.close()
        raise _login_error(exc, address) from exc


def _login_error(exc: BaseException, address: BackendAddress) -> BaseException:
    """The proxy error a failure during the connection phase stands for."""
    if isinstance(exc, TimeoutError):
        return BackendUnavailable(f"the backend at {address} did not answer in time")
    if isinstance(exc, ssl.SSLError):
        reason = exc.reason or exc.__class__.__name__
        return BackendTLSError(f"TLS to the backend at {address} failed: {reason}")
    if isinstance(exc, (OSError, asyncio.IncompleteReadError)):
        return BackendLost("the backend closed the connection during login")
    if isinstance(exc, (ValueError, IndexError)):
        return BackendProtocolError("unexpected reply from the backend during login")
    return exc


@dataclass
class GreetedBackend:
    """A backend connection that has greeted the proxy and waits for a login."""

    stream: PacketStream
    address: BackendAddress
    greeting: Greeting
    seq: int

    async def log_in(
        self, login: Login, *, tls: ssl.SSLContext | None = None, timeout: float = 10.0
    ) -> BackendConnection:
        authenticator = _Authenticator(self.stream, self.address, login, tls)
        try:
            async with asyncio.timeout(timeout):
                return await authenticator.run(self.greeting, self.seq)
        except BaseException as exc:
            self.stream.close()
            error = _login_error(exc, self.address)
            if error is exc:
                raise
            raise error from exc


class BackendConnection:
    """One logged-in connection to the backend."""

    def __init__(
        self, stream: PacketStream, greeting: Greeting, status: int, capabilities: int = 0
    ) -> None:
        self.stream = stream
        self.greeting = greeting
        self.status = status
        #: What this connection negotiated (64-bit: MariaDB's extended bits above 31):
        #: the shape of every response on it (proxy.wire.result_shape).
        self.capabilities = capabilities
        #: The session's character_set_client as last read (proxy.ml.settings): the
        #: proxy's own statements that carry the client's text are encoded in it.
        self.charset: ClientCharset = UTF8
        self._query_head = query_head(bool(capabilities & CLIENT_QUERY_ATTRIBUTES))

    def encode(self, sql: str) -> bytes:
        """A statement of the proxy's in the session's character set."""
        return self.charset.encode(sql)

    def query_payload(self, sql: bytes) -> bytes:
        """The COM_QUERY of a statement of the proxy's making (with query attributes
        negotiated, an empty block before its text: proxy.wire.query_attributes)."""
        return self._query_head + sql

    @property
    def shape(self) -> ResultShape:
        """How results look on this connection (its DEPRECATE_EOF, CACHE_METADATA)."""
        return ResultShape.of(self.capabilities)

    @property
    def thread_id(self) -> int:
        return self.greeting.connection_id

    @classmethod
    async def open(
        cls,
        address: BackendAddress,
        login: Login,
        *,
        tls: ssl.SSLContext | None = None,
        timeout: float = 10.0,
    ) -> BackendConnection:
        """Connect and log in; BackendRejected carries the backend's own ERR (e.g. 1045)."""
        greeted = await greet(address, timeout)
        return await greeted.log_in(login, tls=tls, timeout=timeout)

    async def query(self, sql: str) -> int:
        """Run a statement that answers OK or ERR (proxy-internal use: KILL, ...); return
        the OK's status flags."""
        await self.stream.send(self.query_payload(self.encode(sql)), 0)
        reply = await self.read()
        if reply.payload[:1] == bytes((ERR_HEADER,)):
            raise BackendRejected(parse_err(reply.payload))
        self.status = ok_status(reply.payload)
        return self.status

    async def read(self) -> Message:
        try:
            return await self.stream.read_message()
        except (OSError, asyncio.IncompleteReadError) as exc:
            raise BackendLost("lost the connection to the backend MySQL server") from exc

    async def close(self) -> None:
        """Say COM_QUIT and close; never raises."""
        try:
            if not self.stream.is_closing():
                self.stream.write(b"\x01", 0)
        except (OSError, RuntimeError):
            pass
        self.stream.close()
        await self.stream.wait_closed()


class _Authenticator:
    """The client side of the connection phase, against the backend."""

    def __init__(
        self,
        stream: PacketStream,
        address: BackendAddress,
        login: Login,
        tls: ssl.SSLContext | None,
    ) -> None:
        self.stream = stream
        self.address = address
        self.login = login
        self.tls = tls
        self.secure = address.unix_socket is not None
        self.plugin = ""
        self.nonce = b""

    async def run(self, greeting: Greeting, seq: int) -> BackendConnection:
        caps = self._capabilities(greeting)
        if self.tls is not None:
            seq = await self._start_tls(caps, seq)
        self.plugin, self.nonce = greeting.auth_plugin, greeting.nonce
        response = HandshakeResponse(
            capabilities=caps,
            max_packet_size=self.login.max_packet_size,
            collation=self.login.collation,
            username=self.login.user,
            auth_response=self._first_answer(),
            database=self.login.database,
            auth_plugin=self.plugin,
            connect_attrs=self.login.connect_attrs,
        )
        await self.stream.send(make_handshake_response(response), seq)
        status = await self._exchange()
        return BackendConnection(self.stream, greeting, status, caps)

    def _capabilities(self, greeting: Greeting) -> int:
        """The client's relayable capabilities the backend has, and what the login
        needs; plain ints throughout (MariaDB's bits are above an IntFlag's 32)."""
        lenenc = int(Capabilities.CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA)
        with_db = int(Capabilities.CLIENT_CONNECT_WITH_DB)
        caps = (self.login.capabilities & RELAYABLE_CAPABILITIES) | int(_REQUIRED)
        caps &= greeting.capabilities | lenenc
        caps &= ~with_db
        if self.login.database:
            caps |= with_db
        if not greeting.capabilities & lenenc:
            caps &= ~lenenc
        if self.tls is not None:
            if not greeting.capabilities & Capabilities.CLIENT_SSL:
                raise BackendUnavailable(f"the backend at {self.address} does not offer TLS")
            caps |= int(Capabilities.CLIENT_SSL)
        return caps

    async def _start_tls(self, caps: int, seq: int) -> int:
        assert self.tls is not None
        request = HandshakeResponse(caps, self.login.max_packet_size, self.login.collation)
        request.is_ssl_request = True
        seq = await self.stream.send(make_handshake_response(request), seq)
        await self.stream.start_tls(self.tls, server_side=False, hostname=self.address.host)
        self.secure = True
        return seq

    def _first_answer(self) -> bytes:
        unsupported = self.plugin not in (scramble.NATIVE, scramble.CACHING_SHA2, scramble.CLEAR)
        if unsupported or self.login.native_stage1 is not None:
            # Answer as native; a server that wants another plugin says so with a switch.
            self.plugin = scramble.NATIVE
        return self._answer()

    def _answer(self) -> bytes:
        password = self.login.password
        stage1 = self.login.native_stage1
        if stage1 is not None:
            if self.plugin != scramble.NATIVE:  # the account changed since it was read
                raise BackendUnavailable(
                    f"the backend account now uses auth plugin {self.plugin!r}: log in again"
                )
            return scramble.native_scramble_from_stage1(stage1, self.nonce)
        if self.plugin == scramble.NATIVE:
            return scramble.native_scramble(password, self.nonce)
        if self.plugin == scramble.CACHING_SHA2:
            return scramble.sha2_scramble(password, self.nonce)
        if self.plugin == scramble.CLEAR:
            if not self.secure:
                raise BackendUnavailable(
                    "the backend asks for mysql_clear_password; enable TLS to the backend"
                )
            return password + b"\x00"
        if self.plugin == OLD:
            return old_scramble(password, self.nonce)
        # unix_socket (it would log in as the proxy's own OS user: never answered), GSSAPI,
        # PAM's dialog, ed25519...: the error a server gives a client lacking the plugin.
        raise UnsupportedAuthMethod(
            f"The account {self.login.user.decode('utf-8', 'replace')!r} authenticates with"
            f" {self.plugin!r}, which mlproxy cannot use to log in to the backend"
            " (it supports mysql_native_password, caching_sha2_password, mysql_old_password,"
            " and mysql_clear_password over TLS)"
        )

    async def _exchange(self) -> int:
        """Answer switch and more-data requests until the backend says OK or ERR."""
        while True:
            reply = await self.stream.read_message()
            head = reply.payload[:1]
            if head == bytes((OK_HEADER,)):
                return ok_status(reply.payload)
            if head == bytes((ERR_HEADER,)):
                raise BackendRejected(parse_err(reply.payload))
            if reply.payload == bytes((AUTH_SWITCH,)):
                # The "old switch": the pre-4.1 scramble of the greeting's nonce.
                self.plugin = OLD
                await self.stream.send(self._answer(), reply.next_seq)
            elif head == bytes((AUTH_SWITCH,)):
                self.plugin, self.nonce = parse_auth_switch(reply.payload)
                await self.stream.send(self._answer(), reply.next_seq)
            elif head == bytes((AUTH_MORE_DATA,)) and self.plugin == scramble.CACHING_SHA2:
                await self._sha2_more_data(reply)
            else:
                raise BackendProtocolError("unexpected packet from the backend during login")

    async def _sha2_more_data(self, reply: Message) -> None:
        data = reply.payload[1:]
        if data == scramble.SHA2_FAST_AUTH_OK:
            return
        if data != scramble.SHA2_FULL_AUTH_NEEDED:
            raise BackendProtocolError("unexpected caching_sha2_password message from the backend")
        password = self.login.password
        if self.secure:
            await self.stream.send(password + b"\x00", reply.next_seq)
            return
        seq = await self.stream.send(scramble.SHA2_REQUEST_PUBLIC_KEY, reply.next_seq)
        key = await self.stream.read_message()
        if key.payload[:1] != bytes((AUTH_MORE_DATA,)) or key.first_seq != seq:
            raise BackendProtocolError("the backend did not send its RSA public key")
        encrypted = scramble.rsa_encrypt_password(password, self.nonce, key.payload[1:])
        await self.stream.send(encrypted, key.next_seq)
