"""Sans-IO codecs for the connection phase: greeting, handshake response, auth exchange.

Implements page_protocol_connection_phase_packets_protocol_handshake_v10,
..._protocol_handshake_response and ..._protocol_auth_switch_request of the MySQL
protocol documentation, with MariaDB's extended capabilities (the last four reserved
bytes of both packets, where CLIENT_MYSQL is not set): capabilities are 64-bit ints,
MariaDB's bits above bit 31 (proxy.wire.capabilities).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mysql_mimic.types import Capabilities

from proxy.wire.capabilities import CLIENT_MYSQL, extended, with_extended
from proxy.wire.packets import lenenc_str, read_lenenc_str, read_null_str

AUTH_MORE_DATA = 0x01
AUTH_SWITCH = 0xFE

# The part of a handshake response that precedes the user name; an SSLRequest is exactly it.
_FIXED_RESPONSE_LEN = 32


@dataclass
class Greeting:
    """The server's first packet (HandshakeV10)."""

    server_version: str
    connection_id: int
    nonce: bytes
    capabilities: int
    collation: int
    status: int
    auth_plugin: str

    @property
    def is_mariadb(self) -> bool:
        """A MariaDB server (its version says so), rather than a MySQL one."""
        return "mariadb" in self.server_version.lower()


@dataclass
class HandshakeResponse:
    """The client's answer to the greeting (HandshakeResponse41), or an SSLRequest."""

    capabilities: int
    max_packet_size: int
    collation: int
    username: bytes = b""
    auth_response: bytes = b""
    database: bytes | None = None
    auth_plugin: str = ""
    connect_attrs: bytes = b""
    is_ssl_request: bool = False
    extra: bytes = field(default=b"", repr=False)


def make_greeting(greeting: Greeting) -> bytes:
    """Encode a HandshakeV10 packet payload."""
    caps = greeting.capabilities
    nonce = greeting.nonce
    return b"".join(
        (
            b"\x0a",
            greeting.server_version.encode("utf-8") + b"\x00",
            greeting.connection_id.to_bytes(4, "little"),
            nonce[:8],
            b"\x00",
            (caps & 0xFFFF).to_bytes(2, "little"),
            bytes((greeting.collation & 0xFF,)),
            greeting.status.to_bytes(2, "little"),
            ((caps >> 16) & 0xFFFF).to_bytes(2, "little"),
            bytes((len(nonce) + 1,)),
            bytes(6),
            (0 if caps & CLIENT_MYSQL else extended(caps)).to_bytes(4, "little"),
            nonce[8:] + b"\x00",
            greeting.auth_plugin.encode("ascii") + b"\x00",
        )
    )


def parse_greeting(payload: bytes) -> Greeting:
    """Decode a HandshakeV10 packet payload; raise ValueError when it is not one."""
    if not payload or payload[0] != 10:
        raise ValueError(f"unsupported handshake protocol version {payload[:1]!r}")
    version, pos = read_null_str(payload, 1)
    connection_id = int.from_bytes(payload[pos : pos + 4], "little")
    nonce = payload[pos + 4 : pos + 12]
    pos += 13
    caps = int.from_bytes(payload[pos : pos + 2], "little")
    collation = payload[pos + 2]
    status = int.from_bytes(payload[pos + 3 : pos + 5], "little")
    caps |= int.from_bytes(payload[pos + 5 : pos + 7], "little") << 16
    nonce_len = payload[pos + 7]
    caps = with_extended(caps, int.from_bytes(payload[pos + 14 : pos + 18], "little"))
    pos += 18
    if caps & Capabilities.CLIENT_SECURE_CONNECTION:
        part2_len = max(13, nonce_len - 8)
        nonce += payload[pos : pos + part2_len].rstrip(b"\x00")
        pos += part2_len
    plugin = b"mysql_native_password"
    if caps & Capabilities.CLIENT_PLUGIN_AUTH:
        plugin, pos = read_null_str(payload, pos)
    return Greeting(
        server_version=version.decode("utf-8", "replace"),
        connection_id=connection_id,
        nonce=nonce,
        capabilities=caps,
        collation=collation,
        status=status,
        auth_plugin=plugin.decode("ascii", "replace"),
    )


def parse_handshake_response(payload: bytes) -> HandshakeResponse:
    """Decode a HandshakeResponse41 or SSLRequest; raise ValueError on malformed input."""
    if len(payload) < _FIXED_RESPONSE_LEN:
        raise ValueError("handshake response too short")
    caps = with_extended(
        int.from_bytes(payload[0:4], "little"), int.from_bytes(payload[28:32], "little")
    )
    if not caps & Capabilities.CLIENT_PROTOCOL_41:
        raise ValueError("client does not speak protocol 4.1")
    response = HandshakeResponse(
        capabilities=caps,
        max_packet_size=int.from_bytes(payload[4:8], "little"),
        collation=payload[8],
    )
    if len(payload) == _FIXED_RESPONSE_LEN:
        if not caps & Capabilities.CLIENT_SSL:
            # Only an SSLRequest is this short; without the flag it is no login at all
            # (taken as one, the proxy would wait for a TLS handshake that never comes).
            raise ValueError("handshake response without a user name")
        response.is_ssl_request = True
        return response
    _read_identity(payload, response)
    return response


def _read_identity(payload: bytes, response: HandshakeResponse) -> None:
    caps = response.capabilities
    response.username, pos = read_null_str(payload, _FIXED_RESPONSE_LEN)
    if caps & Capabilities.CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA:
        response.auth_response, pos = read_lenenc_str(payload, pos)
    elif caps & Capabilities.CLIENT_SECURE_CONNECTION:
        length = payload[pos] if pos < len(payload) else 0
        response.auth_response = payload[pos + 1 : pos + 1 + length]
        pos += 1 + length
    else:
        response.auth_response, pos = read_null_str(payload, pos)
    if caps & Capabilities.CLIENT_CONNECT_WITH_DB and pos < len(payload):
        response.database, pos = read_null_str(payload, pos)
    if caps & Capabilities.CLIENT_PLUGIN_AUTH and pos < len(payload):
        plugin, pos = read_null_str(payload, pos)
        response.auth_plugin = plugin.decode("ascii", "replace")
    if caps & Capabilities.CLIENT_CONNECT_ATTRS and pos < len(payload):
        response.connect_attrs, pos = read_lenenc_str(payload, pos)
    response.extra = payload[pos:]


def make_handshake_response(response: HandshakeResponse) -> bytes:
    """Encode a HandshakeResponse41 (or, with ``is_ssl_request``, an SSLRequest)."""
    caps = response.capabilities
    fixed = b"".join(
        (
            (caps & 0xFFFFFFFF).to_bytes(4, "little"),
            response.max_packet_size.to_bytes(4, "little"),
            bytes((response.collation & 0xFF,)),
            bytes(19),
            (0 if caps & CLIENT_MYSQL else extended(caps)).to_bytes(4, "little"),
        )
    )
    if response.is_ssl_request:
        return fixed
    parts = [fixed, response.username + b"\x00"]
    if caps & Capabilities.CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA:
        parts.append(lenenc_str(response.auth_response))
    else:
        parts.append(bytes((len(response.auth_response),)) + response.auth_response)
    if caps & Capabilities.CLIENT_CONNECT_WITH_DB:
        parts.append((response.database or b"") + b"\x00")
    if caps & Capabilities.CLIENT_PLUGIN_AUTH:
        parts.append(response.auth_plugin.encode("ascii") + b"\x00")
    if caps & Capabilities.CLIENT_CONNECT_ATTRS:
        parts.append(lenenc_str(response.connect_attrs))
    return b"".join(parts)


def make_auth_switch(plugin: str, nonce: bytes) -> bytes:
    """AuthSwitchRequest: ask the client to answer with another plugin."""
    return b"\xfe" + plugin.encode("ascii") + b"\x00" + nonce + b"\x00"


def parse_auth_switch(payload: bytes) -> tuple[str, bytes]:
    """Decode an AuthSwitchRequest into (plugin name, nonce)."""
    plugin, pos = read_null_str(payload, 1)
    nonce = payload[pos:]
    if nonce.endswith(b"\x00"):
        nonce = nonce[:-1]
    return plugin.decode("ascii", "replace"), nonce


def make_auth_more_data(data: bytes) -> bytes:
    return b"\x01" + data


@dataclass(frozen=True)
class ChangeUser:
    """COM_CHANGE_USER's contents (page_protocol_com_change_user)."""

    username: bytes
    auth_response: bytes
    database: bytes
    collation: int | None
    auth_plugin: str
    connect_attrs: bytes


def parse_change_user(payload: bytes, capabilities: int) -> ChangeUser:
    """Decode COM_CHANGE_USER (the payload includes the command byte)."""
    username, pos = read_null_str(payload, 1)
    if capabilities & Capabilities.CLIENT_SECURE_CONNECTION:
        length = payload[pos] if pos < len(payload) else 0
        auth, pos = payload[pos + 1 : pos + 1 + length], pos + 1 + length
    else:
        auth, pos = read_null_str(payload, pos)
    database, pos = read_null_str(payload, pos)
    collation = None
    if pos + 2 <= len(payload):
        collation = int.from_bytes(payload[pos : pos + 2], "little")
        pos += 2
    plugin = b""
    if capabilities & Capabilities.CLIENT_PLUGIN_AUTH and pos < len(payload):
        plugin, pos = read_null_str(payload, pos)
    attrs = b""
    if capabilities & Capabilities.CLIENT_CONNECT_ATTRS and pos < len(payload):
        attrs, pos = read_lenenc_str(payload, pos)
    return ChangeUser(username, auth, database, collation, plugin.decode("ascii", "replace"), attrs)
