"""A session's logins: the connection phase, and COM_CHANGE_USER later on.

A collaborator of :class:`proxy.session.session.Session`: it owns the login's state (the
nonce, the place among logins in progress and among logged-in sessions, the failed changes
of user) and sets the session's backend connection, identity and relay
(proxy.session.core.SessionCore).
"""

from __future__ import annotations

import asyncio
from dataclasses import replace

from mysql_mimic.types import Commands

from proxy.auth.client_auth import ClientAuthenticator, ClientIdentity, make_nonce
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
from proxy.session.core import SessionCore
from proxy.transport.relay import Relay
from proxy.transport.stream import Message
from proxy.upstream.backend import BackendConnection, Login
from proxy.upstream.internal import send_command
from proxy.wire.capabilities import CLIENT_QUERY_ATTRIBUTES, SHAPING
from proxy.wire.capabilities import names as capability_names
from proxy.wire.greeting import client_greeting, statements_to_keep_word
from proxy.wire.handshake import ChangeUser, Greeting, make_greeting, parse_change_user
from proxy.wire.packets import ERR_HEADER, make_ok, ok_status, parse_err


class Logins:
    """Logs a client in, to the proxy and to its backend, and changes its user later."""

    def __init__(self, session: SessionCore, pending: PendingLogin | None) -> None:
        self.session = session
        self.nonce = make_nonce()
        #: This connection's place among the logins in progress (given back once logged in).
        self._pending = pending
        #: Whether this connection counts among the logged-in sessions (max_connections).
        self._counted = False
        #: COM_CHANGE_USER this connection made that failed (MAX_FAILED_CHANGES).
        self._failed_changes = 0

    def release(self) -> None:
        """The connection ends: give back its places (idempotent)."""
        if self._pending is not None:
            self._pending.leave()  # a login that never ran
        if self._counted:
            self._counted = False
            self.session.ctx.gate.close_session()

    async def log_in(self) -> bool:
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
        ctx = self.session.ctx
        told = client_greeting(
            ctx.backend_greeting, self.session.id, self.nonce, ctx.advertised_capabilities
        )
        auth = self._authenticator()
        try:
            async with asyncio.timeout(ctx.timeouts.handshake):
                await self.session.client.send(make_greeting(told), 0)
                identity, seq = await auth.run()
            ctx.gate.open_session()
        except (TimeoutError, ProxyError) as exc:
            await self._refuse(exc, auth.seq)
            return None, told, 0
        self._counted = True
        return identity, told, seq

    async def _log_in_to_backend(self, identity: ClientIdentity, told: Greeting, seq: int) -> bool:
        session, ctx = self.session, self.session.ctx
        try:
            backend = session.backend = await self.open_backend(identity, identity.database)
            await self._keep_the_greetings_word(backend, told)
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
        await ctx.registry.learn(identity.user, backend)  # what this account sees
        session.identity = identity
        session.query_attributes = bool(identity.capabilities & CLIENT_QUERY_ATTRIBUTES)
        session.log.add_context(user=identity.user.decode("utf-8", "replace"))
        session.relay = Relay(session.client, backend.stream, session.settled, backend.capabilities)
        await session.client.send(make_ok(backend.status), seq)
        session.log.info(
            "opened: user %s, tls %s, backend thread %d",
            identity.user.decode("utf-8", "replace"),
            identity.tls,
            backend.thread_id,
        )
        return True

    async def _keep_the_greetings_word(self, backend: BackendConnection, told: Greeting) -> None:
        """The backend's greeting of this login is the freshest: the next clients are
        greeted from it. Where the greeting this client got was stale (a SET GLOBAL
        since), set the new session to what the client was told (proxy.wire.greeting)."""
        session, fresh = self.session, backend.greeting
        last = session.ctx.backend_greeting
        if (fresh.server_version, fresh.capabilities) != (last.server_version, last.capabilities):
            session.log.warning(
                "the backend now greets as %s (capabilities 0x%x); "
                "clients are greeted so from now on",
                fresh.server_version,
                fresh.capabilities,
            )
        session.ctx.backend_greeting = fresh
        for statement in statements_to_keep_word(told.status, fresh.status, backend.status):
            session.log.info("greeted with stale status: %s", statement)
            await backend.query(statement)

    def _authenticator(self) -> ClientAuthenticator:
        ctx = self.session.ctx
        return ClientAuthenticator(
            self.session.client, ctx.auth, self.nonce, ctx.advertised_capabilities
        )

    async def _refuse(self, exc: BaseException, seq: int) -> None:
        session = self.session
        if isinstance(exc, asyncio.TimeoutError):
            session.log.info("login timed out")
            return
        session.log.info("login refused: %s", exc)
        if session.ctx.metrics is not None:
            session.ctx.metrics.login_failures.inc()
        await session.client.send(error_payload(exc, session.id), seq)

    async def open_backend(
        self, identity: ClientIdentity, database: bytes | None
    ) -> BackendConnection:
        """Log in to the backend as the client; its response shapes must be the client's
        (proxy.wire.capabilities.SHAPING), since its bytes are relayed as they are.
        Never as the account the backend would accept on the proxy's own OS identity
        (proxy.auth.lent_identity)."""
        ctx = self.session.ctx
        refuse_lent_identity(identity.user, ctx.backend_address)
        backend = await BackendConnection.open(
            ctx.backend_address,
            _backend_login(identity, database),
            tls=ctx.backend_tls,
            timeout=ctx.timeouts.connect,
        )
        agreed, asked = backend.capabilities & SHAPING, identity.capabilities & SHAPING
        if agreed != asked:
            await backend.close()
            raise CapabilitiesChanged(
                f"the backend no longer offers what this connection negotiated"
                f" ({capability_names(asked & ~agreed)}); reconnect"
            )
        return backend

    async def change_user(self, message: Message) -> None:
        """Authenticate the new user and give the session a fresh backend connection as
        that user. A change that fails (a wrong password, an account the backend refuses
        or locks, an authentication method the proxy cannot answer) is answered with its
        error and leaves the session the old user's, reset, as a MariaDB server leaves
        it; after three failed changes COM_CHANGE_USER is an unknown command (1047), the
        server's guard against guessing passwords this way (MDEV-3915). A change whose
        packets are malformed ends the connection."""
        session, current = self.session, self.session.identity
        assert current is not None
        if self._failed_changes >= MAX_FAILED_CHANGES:
            raise ChangeUserRefused("Unknown command")
        try:
            with client_input("COM_CHANGE_USER"):
                request = parse_change_user(message.payload, current.capabilities)
        except ClientProtocolError as exc:
            exc.fatal = True  # the exchange that follows would be out of step
            raise
        auth = self._authenticator()
        try:
            password, stage1, seq = await auth.change_user(
                request, message.next_seq, current.capabilities
            )
            identity = _changed_identity(current, request, password, stage1)
            backend = await self.open_backend(identity, request.database or None)
        except ClientProtocolError as exc:
            exc.fatal = True
            raise
        except ProxyError as exc:
            self._failed_changes += 1
            session.log.info("change of user refused: %s", exc)
            await self._reset_session()
            await session.client.send(error_payload(exc, session.id), auth.seq)
            return
        old, session.backend, session.identity = session.backend, backend, identity
        session.log.add_context(user=identity.user.decode("utf-8", "replace"))
        session.forget_backend_state()
        session.relay = Relay(session.client, backend.stream, session.settled, backend.capabilities)
        if old is not None:
            await old.close()
        await session.client.send(make_ok(backend.status), seq)

    async def _reset_session(self) -> None:
        """After a failed change of user: the session as a server leaves it, its own
        user's but reset (a change of user resets the session before it authenticates:
        transaction rolled back, temporary tables, variables and prepared statements
        gone), which COM_RESET_CONNECTION does on its backend connection."""
        backend = self.session.backend
        assert backend is not None
        await send_command(backend, bytes((Commands.COM_RESET_CONNECTION,)))
        reply = (await backend.read()).payload
        if reply[:1] == bytes((ERR_HEADER,)):
            raise BackendRejected(parse_err(reply))
        backend.status = ok_status(reply)
        self.session.forget_backend_state()


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


def _backend_login(identity: ClientIdentity, database: bytes | None) -> Login:
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
