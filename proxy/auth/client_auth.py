"""The server side of the connection phase: who is this client, and what is its password?

The backend is the source of truth for users and privileges, so the proxy needs each
client's password to log in to the backend as that client. It gets it through:

- caching_sha2_password with full authentication: the password arrives in clear over TLS,
  or RSA-encrypted with the proxy's key when there is no TLS (the client asks for the key);
- mysql_clear_password, over TLS only;
- an optional users file, for clients limited to mysql_native_password: the proxy checks
  their scramble against the file's password and logs in with that password;
- before those, when the backend URL's account may read the account hashes, a
  mysql_native_password account's own plugin, as a server does it: the client's answer
  gives SHA1(password), which logs in to the backend (proxy.auth.native_accounts).

The proxy does not decide whether a password is right; the backend login does, and its
ERR packet (1045) is what the client receives.
"""

from __future__ import annotations

import hmac
import os
import ssl
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric import rsa
from mysql_mimic.types import Capabilities

from proxy.auth.native_accounts import NativeAccounts, recover_stage1
from proxy.errors import (
    AuthenticationFailed,
    ClientProtocolError,
    ErrorCode,
    ProxyError,
    UnsupportedAuthMethod,
)
from proxy.transport.stream import Message, PacketStream
from proxy.wire import scramble
from proxy.wire.handshake import (
    ChangeUser,
    HandshakeResponse,
    make_auth_more_data,
    make_auth_switch,
    parse_handshake_response,
)


class InsecureTransport(ProxyError):
    code = ErrorCode.SECURE_TRANSPORT_REQUIRED


class PasswordCache:
    """Passwords of recent successful logins, by user name (bounded, least recently used
    first out), so that a returning client can use caching_sha2_password's fast path as
    with a MySQL server: it proves knowledge of the password against a fresh nonce, and
    the proxy skips the RSA exchange. The backend still checks every login; a password
    it refuses is forgotten."""

    def __init__(self, max_entries: int = 10_000) -> None:
        self.max_entries = max_entries
        self._passwords: OrderedDict[bytes, bytes] = OrderedDict()

    def get(self, user: bytes) -> bytes | None:
        password = self._passwords.get(user)
        if password is not None:
            self._passwords.move_to_end(user)
        return password

    def remember(self, user: bytes, password: bytes) -> None:
        self._passwords[user] = password
        self._passwords.move_to_end(user)
        while len(self._passwords) > self.max_entries:
            self._passwords.popitem(last=False)

    def forget(self, user: bytes) -> None:
        self._passwords.pop(user, None)

    def latest(self) -> tuple[bytes, bytes] | None:
        """The most recently used (user, password), if any."""
        if not self._passwords:
            return None
        return next(reversed(self._passwords.items()))


@dataclass
class AuthSettings:
    """What the connection phase needs from the configuration."""

    rsa_key: rsa.RSAPrivateKey
    tls: ssl.SSLContext | None = None
    require_tls: bool = False
    users: Mapping[bytes, bytes] = field(default_factory=dict)
    passwords: PasswordCache = field(default_factory=PasswordCache)
    #: The PEM of the certificate clients see over TLS (proxy.session.ssl_status).
    certificate: bytes = b""
    #: Account hashes read with the backend URL's account (None: no such account).
    accounts: NativeAccounts | None = None


@dataclass(frozen=True)
class ClientIdentity:
    """A client that has said who it is, with the capabilities it negotiated."""

    user: bytes
    password: bytes
    database: bytes | None
    capabilities: int
    collation: int
    max_packet_size: int
    connect_attrs: bytes
    tls: bool
    #: SHA1(password) when the client logged in as a mysql_native_password account checked
    #: against its stored hash; ``password`` is then empty (the proxy never saw it).
    native_stage1: bytes | None = None


#: The printable ASCII characters 0x21..0x7E a nonce is made of.
NONCE_ALPHABET = 0x7F - 0x21


def make_nonce() -> bytes:
    """20 random printable bytes: clients treat the nonce as a NUL-terminated string.
    One read of the OS's random source (secrets.choice made one per byte); the modulo
    leaves a slight bias, about 6.5 bits of entropy per byte instead of 6.55."""
    return bytes(0x21 + byte % NONCE_ALPHABET for byte in os.urandom(20))


class ClientAuthenticator:
    """Runs the connection phase with one client, after the greeting has been sent."""

    def __init__(
        self, stream: PacketStream, settings: AuthSettings, nonce: bytes, advertised: int
    ) -> None:
        self.stream = stream
        self.settings = settings
        self.nonce = nonce
        self.advertised = advertised
        self.seq = 1

    async def run(self) -> tuple[ClientIdentity, int]:
        """Return the client's identity and the sequence id for the final OK or ERR."""
        response = await self._read_response()
        if self.settings.require_tls and not self.stream.is_tls:
            raise InsecureTransport(
                "Connections using insecure transport are prohibited by this mlproxy (TLS required)"
            )
        plugin = response.auth_plugin
        switches = bool(response.capabilities & Capabilities.CLIENT_PLUGIN_AUTH)
        if not switches:
            plugin = scramble.NATIVE
        password, stage1 = await self._credentials(
            response.username, plugin, response.auth_response, switches
        )
        identity = ClientIdentity(
            user=response.username,
            password=password,
            native_stage1=stage1,
            database=response.database or None,
            capabilities=response.capabilities & self.advertised,
            collation=response.collation,
            max_packet_size=response.max_packet_size,
            connect_attrs=response.connect_attrs,
            tls=self.stream.is_tls,
        )
        return identity, self.seq

    async def _read(self) -> Message:
        try:
            message = await self.stream.read_message(max_size=1 << 16)
        except ValueError as exc:  # larger than any login message: not the protocol
            raise ClientProtocolError("malformed packet: too large for the login phase") from exc
        self.seq = message.next_seq
        return message

    async def _send(self, payload: bytes) -> None:
        self.seq = await self.stream.send(payload, self.seq)

    async def _read_response(self) -> HandshakeResponse:
        response = self._parse(await self._read())
        if response.is_ssl_request:
            if self.settings.tls is None:
                raise ClientProtocolError("TLS was requested but this mlproxy has no TLS")
            await self.stream.start_tls(self.settings.tls, server_side=True)
            response = self._parse(await self._read())
            if response.is_ssl_request:
                raise ClientProtocolError("a second SSL request")
        return response

    @staticmethod
    def _parse(message: Message) -> HandshakeResponse:
        try:
            return parse_handshake_response(message.payload)
        except (ValueError, IndexError) as exc:
            raise ClientProtocolError("malformed handshake response") from exc

    async def change_user(
        self, request: ChangeUser, seq: int, capabilities: int
    ) -> tuple[bytes, bytes | None, int]:
        """COM_CHANGE_USER: the same exchange, with the greeting's nonce; return
        (password, SHA1(password) or None, seq)."""
        self.seq = seq
        plugin = request.auth_plugin or scramble.NATIVE
        switches = bool(capabilities & Capabilities.CLIENT_PLUGIN_AUTH)
        password, stage1 = await self._credentials(
            request.username, plugin, request.auth_response, switches
        )
        return password, stage1, self.seq

    async def _credentials(
        self, username: bytes, plugin: str, answer: bytes, switches: bool = True
    ) -> tuple[bytes, bytes | None]:
        """(password, None), or (b"", SHA1(password)) for a mysql_native_password account
        whose hash the proxy could read (users-file accounts keep the file's password);
        ``switches``: whether the client can be asked for another plugin."""
        accounts = self.settings.accounts
        if accounts is not None and username not in self.settings.users:
            stage2 = await accounts.stage2(username)
            if stage2 is not None and (switches or plugin == scramble.NATIVE):
                return await self._native_account(accounts, username, plugin, answer, stage2)
        return await self._password(username, plugin, answer, switches), None

    async def _native_account(
        self, accounts: NativeAccounts, username: bytes, plugin: str, answer: bytes, stage2: bytes
    ) -> tuple[bytes, bytes | None]:
        """Switch the client to mysql_native_password (unless it answered so) and recover
        SHA1(password) from its answer. An answer the hash does not match is checked once
        more against a fresh read (the password may have changed); still unmatched, the
        backend login refuses it with the backend's own error, as directly."""
        if plugin != scramble.NATIVE:
            await self._send(make_auth_switch(scramble.NATIVE, self.nonce))
            answer = (await self._read()).payload
        if bool(stage2) != bool(answer):  # a password given or set since the hash was read?
            stage2 = await accounts.stage2(username, fresh=True) or b""
        if not stage2:  # an account without a password: only an empty answer is right
            return b"", os.urandom(20) if answer else None
        if not answer:
            return b"", None  # no password given: the backend refuses it
        stage1 = recover_stage1(answer, self.nonce, stage2)
        if stage1 is None:
            fresh = await accounts.stage2(username, fresh=True)
            stage1 = recover_stage1(answer, self.nonce, fresh) if fresh else None
        # Unmatched: a stage1 no password has, so the backend refuses it.
        return b"", stage1 if stage1 is not None else os.urandom(20)

    async def _password(
        self, username: bytes, plugin: str, answer: bytes, switches: bool = True
    ) -> bytes:
        """The client's password, by the exchange its plugin allows; ``switches``:
        whether the client can be asked for another plugin (CLIENT_PLUGIN_AUTH)."""
        known = self.settings.users.get(username)
        if known is not None:
            return await self._check_known(plugin, answer, known)
        if plugin == scramble.CLEAR:
            return self._clear_password(answer)
        if plugin != scramble.CACHING_SHA2:
            if plugin == scramble.NATIVE and not answer:
                return b""
            if not switches:  # a pre-5.5 client: the server's answer is the same
                raise UnsupportedAuthMethod(
                    "Client does not support authentication protocol requested by server;"
                    " mlproxy needs caching_sha2_password or mysql_clear_password (or a"
                    " users file entry) for this account"
                )
            await self._send(make_auth_switch(scramble.CACHING_SHA2, self.nonce))
            answer = (await self._read()).payload
        if not answer:
            return b""
        cached = self.settings.passwords.get(username)
        if cached is not None and hmac.compare_digest(
            scramble.sha2_scramble(cached, self.nonce), answer
        ):
            await self._send(make_auth_more_data(scramble.SHA2_FAST_AUTH_OK))
            return cached
        return await self._full_sha2_auth()

    def _clear_password(self, answer: bytes) -> bytes:
        if not self.stream.is_tls:
            raise AuthenticationFailed("mysql_clear_password is accepted over TLS only")
        return answer.rstrip(b"\x00")

    async def _check_known(self, plugin: str, answer: bytes, password: bytes) -> bytes:
        """A users-file account: check the scramble locally, then log in with the password."""
        if plugin == scramble.CACHING_SHA2:
            if not hmac.compare_digest(scramble.sha2_scramble(password, self.nonce), answer):
                raise AuthenticationFailed("Access denied (wrong password)")
            await self._send(make_auth_more_data(scramble.SHA2_FAST_AUTH_OK))
            return password
        if plugin != scramble.NATIVE:
            await self._send(make_auth_switch(scramble.NATIVE, self.nonce))
            answer = (await self._read()).payload
        if not scramble.native_matches(password, self.nonce, answer):
            raise AuthenticationFailed("Access denied (wrong password)")
        return password

    async def _full_sha2_auth(self) -> bytes:
        """caching_sha2_password's full path: the password in clear (TLS) or RSA-encrypted."""
        await self._send(make_auth_more_data(scramble.SHA2_FULL_AUTH_NEEDED))
        answer = (await self._read()).payload
        if self.stream.is_tls:
            return answer.rstrip(b"\x00")
        if answer == scramble.SHA2_REQUEST_PUBLIC_KEY:
            await self._send(make_auth_more_data(scramble.public_key_pem(self.settings.rsa_key)))
            answer = (await self._read()).payload
        try:
            return scramble.rsa_decrypt_password(answer, self.nonce, self.settings.rsa_key)
        except ValueError as exc:
            raise AuthenticationFailed("Access denied (password could not be decrypted)") from exc
