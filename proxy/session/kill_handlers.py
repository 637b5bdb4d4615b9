"""A session's KILLs: KILL statements and COM_PROCESS_KILL, and stopping its own query.

A mixin of :class:`proxy.session.session.Session` (it runs KILLs on the session's backend
connection and reaches other sessions through the context), kept apart from the session
module; proxy.session.kill holds the parsing and the connection ids, with no session in sight.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from proxy.auth.client_auth import ClientIdentity
from proxy.errors import BackendError, UnknownThread
from proxy.logs import ContextLog
from proxy.session.kill import KillStatement, is_proxy_id
from proxy.transport.relay import Relay
from proxy.transport.stream import Message
from proxy.upstream.backend import BackendConnection
from proxy.wire.packets import frame
from proxy.wire.scanner import ResponseScanner, Shape

if TYPE_CHECKING:
    from proxy.session.context import ProxyContext


class KillHandlers:
    """Session methods that kill backend threads, the session's own or another's."""

    ctx: ProxyContext
    id: int
    backend: BackendConnection | None
    identity: ClientIdentity | None
    _relay: Relay | None
    log: ContextLog
    _forward: Callable[[Message, Shape | None], Awaitable[ResponseScanner | None]]
    _open_backend: Callable[[ClientIdentity, bytes | None], Awaitable[BackendConnection]]

    async def kill_backend_query(self) -> None:
        """KILL QUERY this session's backend thread, from a side connection as the same
        user (the session's own connection is busy with the statement)."""
        if self.backend is None or self.identity is None:
            return
        thread_id = self.backend.thread_id
        try:
            side = await self._open_backend(self.identity, None)
            try:
                await side.query(f"KILL QUERY {thread_id}")
            finally:
                await side.close()
        except BackendError as exc:
            self.log.warning("connection %d: could not kill backend query: %s", self.id, exc)

    async def _on_kill(self, message: Message, kill: KillStatement) -> None:
        """Translate a proxy connection id to the backend thread id, then run the KILL
        on this session's own backend connection, so the backend checks privileges."""
        if not is_proxy_id(kill.thread_id):
            await self._forward(message, Shape.RESULT)
            return
        thread_id = await self._backend_thread_of(kill.thread_id)
        if thread_id is None:
            raise UnknownThread(f"Unknown thread id: {kill.thread_id}")
        assert self._relay is not None
        await self._relay.send_command(frame(b"\x03" + kill.for_backend(thread_id), 0))
        scanner = await self._relay.relay(Shape.RESULT)
        if scanner.error or kill.query_only:
            return
        target = self.ctx.sessions.get(kill.thread_id)
        if target is not None and kill.thread_id != self.id:  # not this session itself
            target.close_client()
        elif target is None and self.ctx.peers is not None:
            await self.ctx.peers.close_client(kill.thread_id)

    async def _backend_thread_of(self, proxy_id: int) -> int | None:
        """The backend thread behind a proxy connection id: this process's session, or
        (with --workers) the owning worker's answer; None when there is no such one."""
        if not is_proxy_id(proxy_id):
            return None
        target = self.ctx.sessions.get(proxy_id)
        if target is not None:
            return target.backend.thread_id if target.backend is not None else None
        peers = self.ctx.peers
        return None if peers is None else await peers.backend_thread(proxy_id)

    async def _on_process_kill(self, message: Message) -> None:
        thread_id = int.from_bytes(message.payload[1:5], "little")
        kill = KillStatement(thread_id, query_only=False)
        await self._on_kill(message, kill)
