"""A raw MySQL/MariaDB client for tests that compare responses byte for byte.

It logs in with the capabilities a test chooses, MariaDB's extended ones included
(CLIENT_DEPRECATE_EOF, MARIADB_CLIENT_EXTENDED_METADATA, MARIADB_CLIENT_CACHE_METADATA),
to a server directly or to the proxy, and returns each response as its payloads. Where
a response ends is decided here, from the protocol's rules, independently of the
proxy's own scanner (the thing under test): the same client against the server is the
oracle.
"""

from __future__ import annotations

import contextlib
import socket
import struct
from dataclasses import dataclass, field

from proxy.wire import scramble

CLIENT_MYSQL = 1
CLIENT_CONNECT_WITH_DB = 1 << 3
CLIENT_PROTOCOL_41 = 1 << 9
CLIENT_TRANSACTIONS = 1 << 13
CLIENT_SECURE_CONNECTION = 1 << 15
CLIENT_MULTI_STATEMENTS = 1 << 16
CLIENT_MULTI_RESULTS = 1 << 17
CLIENT_PS_MULTI_RESULTS = 1 << 18
CLIENT_PLUGIN_AUTH = 1 << 19
CLIENT_DEPRECATE_EOF = 1 << 24
MARIADB_CLIENT_EXTENDED_METADATA = 1 << 35
MARIADB_CLIENT_CACHE_METADATA = 1 << 36

BASE_CAPABILITIES = (
    CLIENT_PROTOCOL_41
    | CLIENT_TRANSACTIONS
    | CLIENT_SECURE_CONNECTION
    | CLIENT_MULTI_STATEMENTS
    | CLIENT_MULTI_RESULTS
    | CLIENT_PS_MULTI_RESULTS
    | CLIENT_PLUGIN_AUTH
)
#: Everything result-shaping a MariaDB client may ask for.
ALL_SHAPING = (
    CLIENT_DEPRECATE_EOF | MARIADB_CLIENT_EXTENDED_METADATA | MARIADB_CLIENT_CACHE_METADATA
)

_MORE_RESULTS = 0x08
_CURSOR_EXISTS = 0x40
UTF8MB4_GENERAL_CI = 45


class OutOfOrder(Exception):
    """A packet's sequence id is not the one after the previous packet's."""


class LoginRefused(Exception):
    def __init__(self, payload: bytes) -> None:
        super().__init__(payload[3:].decode("utf-8", "replace"))
        self.payload = payload
        self.code = int.from_bytes(payload[1:3], "little")


@dataclass
class RawClient:
    """One logged-in connection; ``capabilities`` is what both sides agreed on."""

    sock: socket.socket
    capabilities: int
    server_capabilities: int
    _buffer: bytearray = field(default_factory=bytearray)
    #: The sequence id of the last packet of the current exchange (checked on each read).
    _seq: int = -1

    @classmethod
    def connect(
        cls,
        port: int,
        user: str,
        password: str,
        database: str = "",
        capabilities: int = 0,
        host: str = "127.0.0.1",
    ) -> RawClient:
        """Log in asking for BASE_CAPABILITIES plus ``capabilities`` (those the server
        offers); raises LoginRefused with the server's ERR."""
        sock = socket.create_connection((host, port), timeout=10)
        client = cls(sock, 0, 0)
        try:
            client._log_in(user.encode(), password.encode(), database.encode(), capabilities)
        except BaseException:
            sock.close()
            raise
        return client

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.send(b"\x01")
        self.sock.close()

    def __enter__(self) -> RawClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- packets ----------------------------------------------------------------------

    def send(self, payload: bytes, seq: int = 0) -> None:
        self._seq = seq
        self.sock.sendall(len(payload).to_bytes(3, "little") + bytes((seq & 0xFF,)) + payload)

    def read(self) -> tuple[int, bytes]:
        while len(self._buffer) < 4:
            self._recv()
        length = int.from_bytes(self._buffer[:3], "little")
        while len(self._buffer) < 4 + length:
            self._recv()
        seq, payload = self._buffer[3], bytes(self._buffer[4 : 4 + length])
        del self._buffer[: 4 + length]
        if seq != (self._seq + 1) & 0xFF:
            raise OutOfOrder(f"packet {seq} after {self._seq}: {payload[:40]!r}")
        self._seq = seq
        return seq, payload

    def _recv(self) -> None:
        chunk = self.sock.recv(1 << 16)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        self._buffer += chunk

    # -- login ------------------------------------------------------------------------

    def _log_in(self, user: bytes, password: bytes, database: bytes, wanted: int) -> None:
        _, greeting = self.read()
        server_caps, nonce, plugin = _parse_greeting(greeting)
        self.server_capabilities = server_caps
        caps = (BASE_CAPABILITIES | wanted) & (server_caps | CLIENT_CONNECT_WITH_DB)
        if database:
            caps |= CLIENT_CONNECT_WITH_DB
        self.capabilities = caps
        if plugin != scramble.CACHING_SHA2:
            plugin = scramble.NATIVE
        answer = _scramble(plugin, password, nonce)
        body = b"".join(
            (
                struct.pack("<IIB19s", caps & 0xFFFFFFFF, 1 << 24, UTF8MB4_GENERAL_CI, b""),
                (0 if caps & CLIENT_MYSQL else caps >> 32).to_bytes(4, "little"),
                user + b"\x00",
                bytes((len(answer),)) + answer,
                database + b"\x00" if database else b"",
                plugin.encode() + b"\x00",
            )
        )
        self.send(body, 1)
        self._finish_login(password, nonce, plugin)

    def _finish_login(self, password: bytes, nonce: bytes, plugin: str) -> None:
        while True:
            seq, reply = self.read()
            head = reply[:1]
            if head == b"\x00":
                return
            if head == b"\xff":
                raise LoginRefused(reply)
            if head == b"\xfe":  # switch: answer with the plugin asked for
                name, _, rest = reply[1:].partition(b"\x00")
                plugin, nonce = name.decode(), rest.rstrip(b"\x00")
                self.send(_scramble(plugin, password, nonce), seq + 1)
            elif reply == b"\x01\x04":  # caching_sha2 full: RSA (no TLS here)
                self.send(b"\x02", seq + 1)
                seq, key = self.read()
                self.send(scramble.rsa_encrypt_password(password, nonce, key[1:]), seq + 1)
            elif reply != b"\x01\x03":
                raise ValueError(f"unexpected login packet {reply[:40]!r}")

    # -- commands ---------------------------------------------------------------------

    @property
    def deprecate_eof(self) -> bool:
        return bool(self.capabilities & CLIENT_DEPRECATE_EOF)

    @property
    def cache_metadata(self) -> bool:
        return bool(self.capabilities & MARIADB_CLIENT_CACHE_METADATA)

    def query(self, sql: str) -> list[bytes]:
        """COM_QUERY: every payload of the response (all its results)."""
        self.send(b"\x03" + sql.encode())
        return self.results()

    def prepare(self, sql: str) -> tuple[int, list[bytes]]:
        """COM_STMT_PREPARE: (statement id, every payload of the response)."""
        self.send(b"\x16" + sql.encode())
        _, first = self.read()
        if first[:1] == b"\xff":
            return 0, [first]
        columns = int.from_bytes(first[5:7], "little")
        params = int.from_bytes(first[7:9], "little")
        payloads = [first]
        for count in (params, columns):
            for _ in range(count + (1 if count and not self.deprecate_eof else 0)):
                payloads.append(self.read()[1])
        return int.from_bytes(first[1:5], "little"), payloads

    def execute(
        self, statement: int, params: list[int] | None = None, cursor: bool = False
    ) -> list[bytes]:
        """COM_STMT_EXECUTE with BIGINT parameters (``cursor``: a read-only cursor)."""
        body = (
            statement.to_bytes(4, "little")
            + bytes((1 if cursor else 0,))
            + (1).to_bytes(4, "little")
        )
        if params:
            body += bytes((len(params) + 7) // 8) + b"\x01" + b"\x08\x00" * len(params)
            body += b"".join(p.to_bytes(8, "little", signed=True) for p in params)
        self.send(b"\x17" + body)
        return self.results(cursor=cursor)

    def fetch(self, statement: int, rows: int) -> list[bytes]:
        """COM_STMT_FETCH: the rows and the packet that ends them."""
        self.send(b"\x1c" + statement.to_bytes(4, "little") + rows.to_bytes(4, "little"))
        return self.rows()

    def field_list(self, table: str) -> list[bytes]:
        """COM_FIELD_LIST: the definitions and the packet that ends them."""
        self.send(b"\x04" + table.encode() + b"\x00")
        return self.rows()

    def rows(self) -> list[bytes]:
        """Packets up to the one that ends rows (or an ERR)."""
        payloads: list[bytes] = []
        self._rows(payloads)
        return payloads

    def close_statement(self, statement: int) -> None:
        self.send(b"\x19" + statement.to_bytes(4, "little"))

    def results(self, cursor: bool = False) -> list[bytes]:
        """Read results until one without SERVER_MORE_RESULTS_EXISTS."""
        payloads: list[bytes] = []
        while True:
            _, first = self.read()
            payloads.append(first)
            if first[:1] == b"\xff":
                return payloads
            if first[:1] == b"\x00":
                status = _ok_status(first)
            else:
                status = self._result_set(first, payloads, cursor)
            if not status & _MORE_RESULTS:
                return payloads

    def _result_set(self, first: bytes, payloads: list[bytes], cursor: bool) -> int:
        count, pos = _lenenc(first, 0)
        follow = not self.cache_metadata or first[pos] == 1
        for _ in range(count if follow else 0):
            payloads.append(self.read()[1])
        if not self.deprecate_eof:
            _, eof = self.read()
            payloads.append(eof)
            status = int.from_bytes(eof[3:5], "little")
            if cursor and status & _CURSOR_EXISTS and not status & _MORE_RESULTS:
                return status
        return self._rows(payloads)

    def _rows(self, payloads: list[bytes]) -> int:
        limit = 0xFFFFFF if self.deprecate_eof else 9
        while True:
            _, payload = self.read()
            payloads.append(payload)
            if payload[:1] == b"\xff":
                return 0
            if payload[:1] == b"\xfe" and len(payload) < limit:
                if self.deprecate_eof:
                    return _ok_status(payload)
                return int.from_bytes(payload[3:5], "little")


def _parse_greeting(payload: bytes) -> tuple[int, bytes, str]:
    pos = payload.index(b"\x00", 1) + 1 + 4
    nonce = payload[pos : pos + 8]
    pos += 9
    caps = int.from_bytes(payload[pos : pos + 2], "little")
    caps |= int.from_bytes(payload[pos + 5 : pos + 7], "little") << 16
    nonce_length = payload[pos + 7]
    extended = int.from_bytes(payload[pos + 14 : pos + 18], "little")
    if not caps & CLIENT_MYSQL:
        caps |= extended << 32
    pos += 18
    part2 = max(13, nonce_length - 8)
    nonce += payload[pos : pos + part2].rstrip(b"\x00")
    plugin = payload[pos + part2 :].split(b"\x00", 1)[0].decode()
    return caps, nonce, plugin


def _scramble(plugin: str, password: bytes, nonce: bytes) -> bytes:
    if plugin == scramble.CACHING_SHA2:
        return scramble.sha2_scramble(password, nonce)
    if plugin == scramble.NATIVE:
        return scramble.native_scramble(password, nonce)
    raise ValueError(f"the test client has no {plugin}")


def _lenenc(buf: bytes, pos: int) -> tuple[int, int]:
    first = buf[pos]
    if first < 0xFB:
        return first, pos + 1
    width = {0xFC: 2, 0xFD: 3, 0xFE: 8}[first]
    return int.from_bytes(buf[pos + 1 : pos + 1 + width], "little"), pos + 1 + width


def _ok_status(payload: bytes) -> int:
    _, pos = _lenenc(payload, 1)
    _, pos = _lenenc(payload, pos)
    return int.from_bytes(payload[pos : pos + 2], "little")


def column_definitions(payloads: list[bytes]) -> list[bytes]:
    """The column definitions among a response's payloads (they start with the
    catalog, always "def")."""
    return [p for p in payloads if p.startswith(b"\x03def")]


def extended_type_info(definition: bytes) -> bytes | None:
    """A column definition's MariaDB extended type information (the length-encoded
    string after org_name), as MARIADB_CLIENT_EXTENDED_METADATA sends it."""
    pos = 0
    for _ in range(6):
        length, pos = _lenenc(definition, pos)
        pos += length
    length, pos = _lenenc(definition, pos)
    return definition[pos : pos + length]
