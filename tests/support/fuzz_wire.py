"""A raw MySQL client for the protocol fuzzer: packets in and out, nothing checked for it.

Unlike the client libraries it sends whatever bytes it is given (wrong sequence ids,
truncated or split packets, mutated logins) and reports what came back: the packets of
a response, whether the connection closed, whether it went silent. The end of a response
is found with the proxy's own sans-IO scanner (proxy.wire.scanner, tested on its own), given
the shape the command's response has.
"""

from __future__ import annotations

import contextlib
import socket
import struct
from dataclasses import dataclass, field

from pymysql.constants import CLIENT

from proxy.wire import scramble
from proxy.wire.scanner import ResponseScanner, Shape

#: What a login asks for: protocol 4.1, plugin auth, a database; no TLS, no DEPRECATE_EOF.
LOGIN_CAPS = (
    CLIENT.LONG_PASSWORD
    | CLIENT.LONG_FLAG
    | CLIENT.CONNECT_WITH_DB
    | CLIENT.PROTOCOL_41
    | CLIENT.TRANSACTIONS
    | CLIENT.SECURE_CONNECTION
    | CLIENT.MULTI_RESULTS
    | CLIENT.PS_MULTI_RESULTS
    | CLIENT.PLUGIN_AUTH
    | CLIENT.CONNECT_ATTRS
)
UTF8MB4_GENERAL_CI = 45
#: Connection attributes as clients send them (a length, then name/value pairs).
CONNECT_ATTRS = b"\x13\x0c_client_name\x06fuzzer"
ERR = 0xFF


class Closed(Exception):
    """The peer closed the connection (or reset it)."""


class Silent(Exception):
    """The peer sent nothing within the read timeout."""


@dataclass
class Outcome:
    """What one case got: the payloads read, and how the exchange ended."""

    payloads: list[bytes] = field(default_factory=list)
    closed: bool = False
    silent: bool = False
    #: The fuzzer itself left (reset its side): a close is no proxy's doing.
    client_left: bool = False

    @property
    def errors(self) -> list[bytes]:
        return [p for p in self.payloads if p[:1] == b"\xff"]

    def error_codes(self) -> list[int]:
        return [int.from_bytes(p[1:3], "little") for p in self.errors]


class Wire:
    """One blocking connection to the proxy."""

    def __init__(self, port: int, timeout: float) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._buffer = bytearray()
        self.closed = False

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()
        self.closed = True

    def leave(self) -> None:
        """Close abruptly (a reset rather than a FIN), as a crashing client does."""
        with contextlib.suppress(OSError):
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close()

    def send_raw(self, data: bytes) -> bool:
        """Send bytes as they are; False when the peer has already closed."""
        try:
            self.sock.sendall(data)
        except OSError:
            return False
        return True

    def send(self, payload: bytes, seq: int = 0) -> bool:
        return self.send_raw(frame(payload, seq))

    def _fill(self, size: int) -> None:
        while len(self._buffer) < size:
            try:
                chunk = self.sock.recv(1 << 16)
            except TimeoutError as exc:
                raise Silent from exc
            except OSError as exc:
                raise Closed from exc
            if not chunk:
                raise Closed
            self._buffer += chunk

    def read_packet(self) -> tuple[int, bytes]:
        """(sequence id, payload) of the next packet; raises Closed or Silent."""
        self._fill(4)
        length = int.from_bytes(self._buffer[:3], "little")
        self._fill(4 + length)
        seq = self._buffer[3]
        payload = bytes(self._buffer[4 : 4 + length])
        del self._buffer[: 4 + length]
        return seq, payload

    def read_response(self, shape: Shape | None, outcome: Outcome, caps: int = 0) -> Outcome:
        """Read one response of ``shape`` into ``outcome`` (nothing for None), on a
        connection of capabilities ``caps`` (CLIENT_DEPRECATE_EOF counts)."""
        if shape is None:
            return outcome
        scanner = ResponseScanner(shape, caps)
        try:
            while True:
                _, payload = self.read_packet()
                outcome.payloads.append(payload)
                if scanner.feed(frame(payload, 0)) >= 0:
                    return outcome
        except Closed:
            outcome.closed = True
            self.close()
        except Silent:
            outcome.silent = True
        except ValueError:
            pass  # not a response of that shape: the caller judges the payloads
        return outcome

    def closes(self, outcome: Outcome) -> Outcome:
        """Read until the peer closes (recording what it sends first) or goes silent."""
        try:
            while True:
                outcome.payloads.append(self.read_packet()[1])
        except Closed:
            outcome.closed = True
            self.close()
        except Silent:
            outcome.silent = True
        return outcome


def frame(payload: bytes, seq: int) -> bytes:
    return len(payload).to_bytes(3, "little") + bytes((seq & 0xFF,)) + payload


@dataclass(frozen=True)
class Greeting:
    connection_id: int
    nonce: bytes


def parse_greeting(payload: bytes) -> Greeting:
    if payload[:1] != b"\x0a":
        raise Closed(f"not a greeting: {payload[:40]!r}")
    pos = payload.index(b"\x00", 1) + 1
    connection_id = int.from_bytes(payload[pos : pos + 4], "little")
    nonce = payload[pos + 4 : pos + 12]
    pos += 13 + 18
    nonce += payload[pos : pos + 12]
    return Greeting(connection_id, nonce)


def handshake_response(user: bytes, auth: bytes, database: bytes, caps: int = LOGIN_CAPS) -> bytes:
    """A HandshakeResponse41 answering with caching_sha2_password."""
    return b"".join(
        (
            struct.pack("<IIB23s", caps, 1 << 24, UTF8MB4_GENERAL_CI, b""),
            user + b"\x00",
            bytes((len(auth),)) + auth,
            database + b"\x00",
            scramble.CACHING_SHA2.encode() + b"\x00",
            CONNECT_ATTRS,
        )
    )


def finish_sha2(wire: Wire, password: bytes, nonce: bytes, seq: int) -> tuple[int, bytes]:
    """The rest of a caching_sha2_password exchange after the scramble was sent:
    the fast path, or the full one with the proxy's RSA key. Returns the final packet."""
    seq, reply = wire.read_packet()
    if reply == b"\x01\x03":
        return wire.read_packet()
    if reply != b"\x01\x04":
        return seq, reply
    wire.send(b"\x02", seq + 1)
    seq, key = wire.read_packet()
    wire.send(scramble.rsa_encrypt_password(password, nonce, key[1:]), seq + 1)
    return wire.read_packet()


def log_in(
    port: int, user: str, password: str, database: str, timeout: float, caps: int = LOGIN_CAPS
) -> Wire:
    """A connection logged in with the capabilities ``caps`` (raises Closed when the
    proxy refuses it)."""
    wire = Wire(port, timeout)
    try:
        greeting = parse_greeting(wire.read_packet()[1])
        secret = password.encode()
        answer = scramble.sha2_scramble(secret, greeting.nonce)
        wire.send(handshake_response(user.encode(), answer, database.encode(), caps), 1)
        _, final = finish_sha2(wire, secret, greeting.nonce, 1)
    except BaseException:
        wire.close()
        raise
    if final[:1] != b"\x00":
        wire.close()
        raise Closed(f"login refused: {final!r}")
    return wire
