"""A session's logins: the connection phase, and COM_CHANGE_USER later on.

A mixin of :class:`proxy.session.Session` (it uses the session's context, client stream
and nonce, and sets its backend connection, identity and relay), kept apart so the
session module stays about serving commands.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from proxy.backend import BackendConnection, Login, greet
from proxy.client_auth import ClientAuthenticator, ClientIdentity
from proxy.context import VERSION_SUFFIX
from proxy.errors import (
    BackendRejected,
    ClientProtocolError,
    EndSession,
    ProxyError,
    client_input,
    error_payload,
)
from proxy.handshake import ChangeUser, Greeting, make_greeting, parse_change_user
from proxy.packets import make_ok
from proxy.relay import Relay
from proxy.stream import Message, PacketStream

if TYPE_CHECKING:
    from proxy.context import ProxyContext


class LoginHandlers:
    """Session methods that log a client in, to the proxy and to its backend."""

    ctx: ProxyContext
    client: PacketStream
    id: int
    backend: BackendConnection | None
    identity: ClientIdentity | None
    _nonce: bytes
    _relay: Relay | None
    log: logging.LoggerAdapter[logging.Logger]
    _settled: Callable[[int], None]

    async def _log_in(self) -> bool:
        """Greet the client with a fresh backend greeting's version and status flags (a
        client decides how to quote and whether to SET autocommit from them), then log
        in to that same backend connection as the client."""
        ctx = self.ctx
        try:
            greeted = await greet(ctx.backend_address, ctx.timeouts.connect)
        except ProxyError as exc:
            self.log.warning("connection %d: %s", self.id, exc)
            await self.client.send(error_payload(exc, self.id), 0)
            return False
        greeting = Greeting(
            server_version=greeted.greeting.server_version + VERSION_SUFFIX,
            connection_id=self.id,
            nonce=self._nonce,
            capabilities=ctx.advertised_capabilities,
            collation=greeted.greeting.collation,
            status=greeted.greeting.status,
            auth_plugin="caching_sha2_password",
        )
        await self.client.send(make_greeting(greeting), 0)
        auth = self._authenticator()
        try:
            async with asyncio.timeout(ctx.timeouts.handshake):
                identity, seq = await auth.run()
        except (TimeoutError, ProxyError) as exc:
            await greeted.abandon()
            await self._refuse(exc, auth.seq)
            return False
        except BaseException:
            await greeted.abandon()
            raise
        try:
            self.backend = await greeted.log_in(
                self._login(identity, identity.database),
                tls=ctx.backend_tls,
                timeout=ctx.timeouts.connect,
            )
        except ProxyError as exc:
            if isinstance(exc, BackendRejected) and exc.code == 1045:
                ctx.auth.passwords.forget(identity.user)
            await self._refuse(exc, seq)
            return False
        ctx.auth.passwords.remember(identity.user, identity.password)
        await ctx.registry.ensure_loaded()  # the first login may bring the poller's account
        self.identity = identity
        self._relay = Relay(self.client, self.backend.stream, self._settled)
        await self.client.send(make_ok(self.backend.status), seq)
        self.log.info(
            "connection %d opened: user %s, tls %s, backend thread %d",
            self.id,
            identity.user.decode("utf-8", "replace"),
            identity.tls,
            self.backend.thread_id,
        )
        return True

    def _authenticator(self) -> ClientAuthenticator:
        return ClientAuthenticator(
            self.client, self.ctx.auth, self._nonce, self.ctx.advertised_capabilities
        )

    async def _refuse(self, exc: BaseException, seq: int) -> None:
        if isinstance(exc, asyncio.TimeoutError):
            self.log.info("connection %d: login timed out", self.id)
            return
        self.log.info("connection %d refused: %s", self.id, exc)
        await self.client.send(error_payload(exc, self.id), seq)

    async def _open_backend(
        self, identity: ClientIdentity, database: bytes | None
    ) -> BackendConnection:
        return await BackendConnection.open(
            self.ctx.backend_address,
            self._login(identity, database),
            tls=self.ctx.backend_tls,
            timeout=self.ctx.timeouts.connect,
        )

    def _login(self, identity: ClientIdentity, database: bytes | None) -> Login:
        return Login(
            user=identity.user,
            password=identity.password,
            database=database,
            capabilities=identity.capabilities,
            collation=identity.collation,
            max_packet_size=identity.max_packet_size,
            connect_attrs=identity.connect_attrs,
        )

    async def _on_change_user(self, message: Message) -> None:
        """Authenticate the new user and give the session a fresh backend connection as
        that user; a failed change closes the connection (no statement may run as a
        user the client did not ask for)."""
        assert self.identity is not None
        try:
            with client_input("COM_CHANGE_USER"):
                request = parse_change_user(message.payload, self.identity.capabilities)
        except ClientProtocolError as exc:
            exc.fatal = True  # a failed change of user ends the session, however it fails
            raise
        auth = self._authenticator()
        try:
            password, seq = await auth.change_user(request, message.next_seq)
            identity = _changed_identity(self.identity, request, password)
            backend = await self._open_backend(identity, request.database or None)
        except ProxyError as exc:
            await self.client.send(error_payload(exc, self.id), auth.seq)
            raise EndSession from None
        old, self.backend, self.identity = self.backend, backend, identity
        self._relay = Relay(self.client, backend.stream, self._settled)
        if old is not None:
            await old.close()
        await self.client.send(make_ok(backend.status), seq)


def _changed_identity(old: ClientIdentity, request: ChangeUser, password: bytes) -> ClientIdentity:
    return replace(
        old,
        user=request.username,
        password=password,
        database=request.database or None,
        collation=request.collation if request.collation is not None else old.collation,
        connect_attrs=request.connect_attrs or old.connect_attrs,
    )
