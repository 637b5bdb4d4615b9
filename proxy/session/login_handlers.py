"""A session's logins: the connection phase, and COM_CHANGE_USER later on.

A mixin of :class:`proxy.session.session.Session` (it uses the session's context, client stream
and nonce, and sets its backend connection, identity and relay), kept apart so the
session module stays about serving commands.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from mysql_mimic.types import Commands

from ml_backends.counters import MLCounters
from proxy.auth.client_auth import ClientAuthenticator, ClientIdentity
from proxy.auth.lent_identity import refuse_lent_identity
from proxy.auth.login_gate import PendingLogin
from proxy.errors import (
    BackendRejected,
    CapabilitiesChanged,
    ClientProtocolError,
    ErrorCode,
    ProxyError,
    client_input,
    error_payload,
)
from proxy.logs import ContextLog
from proxy.ml.prepared import PreparedML
from proxy.ml.status_access import ProcessPrivilege
from proxy.session.kill import KillStatement
from proxy.transport.relay import Relay
from proxy.transport.stream import Message, PacketStream
from proxy.upstream.backend import BackendConnection, Login
from proxy.upstream.internal import send_command
from proxy.wire.capabilities import CLIENT_QUERY_ATTRIBUTES, SHAPING
from proxy.wire.capabilities import names as capability_names
from proxy.wire.greeting import client_greeting, statements_to_keep_word
from proxy.wire.handshake import ChangeUser, Greeting, make_greeting, parse_change_user
from proxy.wire.packets import ERR_HEADER, make_ok, ok_status, parse_err

if TYPE_CHECKING:
    from proxy.session.context import ProxyContext


class LoginHandlers:
    """Session methods that log a client in, to the proxy and to its backend."""

    ctx: ProxyContext
    client: PacketStream
    id: int
    backend: BackendConnection | None
    identity: ClientIdentity | None
    query_attributes: bool
    _nonce: bytes
    _relay: Relay | None
    log: ContextLog
    _settled: Callable[[int], None]
    #: This connection's place among the logins in progress (given back once logged in).
    _pending: PendingLogin | None
    #: Whether this connection counts among the logged-in sessions (max_connections).
    _counted: bool
    ml_counters: MLCounters
    process_privilege: ProcessPrivilege
    _ml_prepared: dict[int, PreparedML]
    _prepared_kills: dict[int, KillStatement]
    #: COM_CHANGE_USER this connection made that failed (MAX_FAILED_CHANGES).
    _failed_changes: int

    async def _log_in(self) -> bool:
        """Greet the client from the latest backend greeting, authenticate it, and only
        then log in to the backend as the client (nothing reaches the backend for a
        client that has not said who it is; proxy.auth.login_gate bounds those). The login
        holds its place among the logins in progress until it ends."""
        try:
            identity, told, seq = await self._authenticate()
            if identity is None:
                return False
            return await self._log_in_to_backend(identity, told, seq)
        finally:
            if self._pending is not None:
                self._pending.leave()

    async def _authenticate(self) -> tuple[ClientIdentity | None, Greeting, int]:
        """Greet and authenticate, within the handshake timeout however slowly the client
        sends; then take a place among the logged-in sessions (max_connections)."""
        ctx = self.ctx
        told = client_greeting(
            ctx.backend_greeting, self.id, self._nonce, ctx.advertised_capabilities
        )
        auth = self._authenticator()
        try:
            async with asyncio.timeout(ctx.timeouts.handshake):
                await self.client.send(make_greeting(told), 0)
                identity, seq = await auth.run()
            ctx.gate.open_session()
        except (TimeoutError, ProxyError) as exc:
            await self._refuse(exc, auth.seq)
            return None, told, 0
        self._counted = True
        return identity, told, seq

    async def _log_in_to_backend(self, identity: ClientIdentity, told: Greeting, seq: int) -> bool:
        ctx = self.ctx
        try:
            self.backend = await self._open_backend(identity, identity.database)
            await self._keep_the_greetings_word(self.backend, told)
        except ProxyError as exc:
            if isinstance(exc, BackendRejected) and exc.code == ErrorCode.ACCESS_DENIED_ERROR:
                ctx.auth.passwords.forget(identity.user)
            if identity.native_stage1 is not None and ctx.auth.accounts is not None:
                ctx.auth.accounts.forget(identity.user)  # read the account again next time
            await self._refuse(exc, seq)
            return False
        if identity.native_stage1 is None:  # the proxy never saw this client's password
            ctx.auth.passwords.remember(identity.user, identity.password)
        await ctx.registry.ensure_loaded()  # the first login may bring the poller's account
        await ctx.registry.learn(identity.user, self.backend)  # what this account sees
        self.identity = identity
        self.query_attributes = bool(identity.capabilities & CLIENT_QUERY_ATTRIBUTES)
        self.log.add_context(user=identity.user.decode("utf-8", "replace"))
        self._relay = Relay(
            self.client, self.backend.stream, self._settled, self.backend.capabilities
        )
        await self.client.send(make_ok(self.backend.status), seq)
        self.log.info(
            "connection %d opened: user %s, tls %s, backend thread %d",
            self.id,
            identity.user.decode("utf-8", "replace"),
            identity.tls,
            self.backend.thread_id,
        )
        return True

    async def _keep_the_greetings_word(self, backend: BackendConnection, told: Greeting) -> None:
        """The backend's greeting of this login is the freshest: the next clients are
        greeted from it. Where the greeting this client got was stale (a SET GLOBAL
        since), set the new session to what the client was told (proxy.wire.greeting)."""
        fresh = backend.greeting
        if (fresh.server_version, fresh.capabilities) != (
            self.ctx.backend_greeting.server_version,
            self.ctx.backend_greeting.capabilities,
        ):
            self.log.warning(
                "connection %d: the backend now greets as %s (capabilities 0x%x); "
                "clients are greeted so from now on",
                self.id,
                fresh.server_version,
                fresh.capabilities,
            )
        self.ctx.backend_greeting = fresh
        for statement in statements_to_keep_word(told.status, fresh.status, backend.status):
            self.log.info("connection %d: greeted with stale status: %s", self.id, statement)
            await backend.query(statement)

    def _authenticator(self) -> ClientAuthenticator:
        return ClientAuthenticator(
            self.client, self.ctx.auth, self._nonce, self.ctx.advertised_capabilities
        )

    async def _refuse(self, exc: BaseException, seq: int) -> None:
        if isinstance(exc, asyncio.TimeoutError):
            self.log.info("connection %d: login timed out", self.id)
            return
        self.log.info("connection %d refused: %s", self.id, exc)
        if self.ctx.metrics is not None:
            self.ctx.metrics.login_failures.inc()
        await self.client.send(error_payload(exc, self.id), seq)

    async def _open_backend(
        self, identity: ClientIdentity, database: bytes | None
    ) -> BackendConnection:
        """Log in to the backend as the client; its response shapes must be the client's
        (proxy.wire.capabilities.SHAPING), since its bytes are relayed as they are.
        Never as the account the backend would accept on the proxy's own OS identity
        (proxy.auth.lent_identity)."""
        refuse_lent_identity(identity.user, self.ctx.backend_address)
        backend = await BackendConnection.open(
            self.ctx.backend_address,
            self._login(identity, database),
            tls=self.ctx.backend_tls,
            timeout=self.ctx.timeouts.connect,
        )
        agreed, asked = backend.capabilities & SHAPING, identity.capabilities & SHAPING
        if agreed != asked:
            await backend.close()
            raise CapabilitiesChanged(
                f"the backend no longer offers what this connection negotiated"
                f" ({capability_names(asked & ~agreed)}); reconnect"
            )
        return backend

    def _login(self, identity: ClientIdentity, database: bytes | None) -> Login:
        return Login(
            user=identity.user,
            password=identity.password,
            database=database,
            capabilities=identity.capabilities,
            collation=identity.collation,
            max_packet_size=identity.max_packet_size,
            connect_attrs=identity.connect_attrs,
            native_stage1=identity.native_stage1,
        )

    async def _on_change_user(self, message: Message) -> None:
        """Authenticate the new user and give the session a fresh backend connection as
        that user. A change that fails (a wrong password, an account the backend refuses
        or locks, an authentication method the proxy cannot answer) is answered with its
        error and leaves the session the old user's, reset, as a MariaDB server leaves
        it; after three failed changes COM_CHANGE_USER is an unknown command (1047), the
        server's guard against guessing passwords this way (MDEV-3915). A change whose
        packets are malformed ends the connection."""
        assert self.identity is not None
        if self._failed_changes >= MAX_FAILED_CHANGES:
            raise ChangeUserRefused("Unknown command")
        try:
            with client_input("COM_CHANGE_USER"):
                request = parse_change_user(message.payload, self.identity.capabilities)
        except ClientProtocolError as exc:
            exc.fatal = True  # the exchange that follows would be out of step
            raise
        auth = self._authenticator()
        try:
            password, stage1, seq = await auth.change_user(
                request, message.next_seq, self.identity.capabilities
            )
            identity = _changed_identity(self.identity, request, password, stage1)
            backend = await self._open_backend(identity, request.database or None)
        except ClientProtocolError as exc:
            exc.fatal = True
            raise
        except ProxyError as exc:
            self._failed_changes += 1
            self.log.info("connection %d: change of user refused: %s", self.id, exc)
            await self._reset_session()
            await self.client.send(error_payload(exc, self.id), auth.seq)
            return
        old, self.backend, self.identity = self.backend, backend, identity
        self.log.add_context(user=identity.user.decode("utf-8", "replace"))
        self._forget_session_state()
        self._relay = Relay(self.client, backend.stream, self._settled, backend.capabilities)
        if old is not None:
            await old.close()
        await self.client.send(make_ok(backend.status), seq)

    async def _reset_session(self) -> None:
        """After a failed change of user: the session as a server leaves it, its own
        user's but reset (a change of user resets the session before it authenticates:
        transaction rolled back, temporary tables, variables and prepared statements
        gone), which COM_RESET_CONNECTION does on its backend connection."""
        assert self.backend is not None
        await send_command(self.backend, bytes((Commands.COM_RESET_CONNECTION,)))
        reply = (await self.backend.read()).payload
        if reply[:1] == bytes((ERR_HEADER,)):
            raise BackendRejected(parse_err(reply))
        self.backend.status = ok_status(reply)
        self._forget_session_state()

    def _forget_session_state(self) -> None:
        """What the proxy keeps of a backend session: gone with it (a change of user)."""
        self.ml_counters.reset()  # a new session as far as status goes, as on the server
        self.process_privilege.forget()
        self._ml_prepared.clear()
        self._prepared_kills.clear()


class ChangeUserRefused(ProxyError):
    """COM_CHANGE_USER after three failed ones on the connection (MariaDB's MDEV-3915)."""

    code = ErrorCode.UNKNOWN_COM_ERROR


#: Failed COM_CHANGE_USER a connection may make, as on a MariaDB server.
MAX_FAILED_CHANGES = 3


def _changed_identity(
    old: ClientIdentity, request: ChangeUser, password: bytes, stage1: bytes | None
) -> ClientIdentity:
    return replace(
        old,
        user=request.username,
        password=password,
        native_stage1=stage1,
        database=request.database or None,
        collation=request.collation if request.collation is not None else old.collation,
        connect_attrs=request.connect_attrs or old.connect_attrs,
    )
