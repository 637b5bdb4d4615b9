"""A session's KILLs: KILL statements and COM_PROCESS_KILL, and stopping its own query.

A collaborator of :class:`proxy.session.session.Session`: it runs KILLs on the session's
backend connection (proxy.session.core.SessionCore) and reaches other sessions through the
context; proxy.session.kill holds the parsing and the connection ids, with no session in
sight.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from proxy.auth.client_auth import ClientIdentity
from proxy.errors import BackendError, UnknownThread
from proxy.session.core import SessionCore
from proxy.session.kill import KillStatement, is_proxy_id
from proxy.session.live import LiveSession
from proxy.session.peers import session_of_thread
from proxy.transport.stream import Message
from proxy.upstream.backend import BackendConnection
from proxy.wire.packets import OK_HEADER, frame, ok_status

#: Opens a side connection to the backend as a client (proxy.session.login.Logins).
OpenBackend = Callable[[ClientIdentity, bytes | None], Awaitable[BackendConnection]]


class Kills:
    """Kills backend threads, the session's own query or another session's."""

    def __init__(self, session: SessionCore, open_backend: OpenBackend) -> None:
        self.session = session
        self._open_backend = open_backend

    async def kill_backend_query(self) -> None:
        """KILL QUERY this session's backend thread, from a side connection as the same
        user (the session's own connection is busy with the statement)."""
        session = self.session
        if session.backend is None or session.identity is None:
            return
        thread_id = session.backend.thread_id
        try:
            side = await self._open_backend(session.identity, None)
            try:
                await side.query(f"KILL QUERY {thread_id}")
            finally:
                await side.close()
        except BackendError as exc:
            session.log.warning("could not kill backend query: %s", exc)

    async def run(self, message: Message, kill: KillStatement) -> None:
        """Run the KILL on this session's own backend connection, so the backend checks
        privileges: a proxy connection id translated to its backend thread id, a backend
        thread id (from SHOW PROCESSLIST) as it is. When the backend says OK, the proxy
        session behind that thread stops its ML statement too (the backend thread may be
        idle while the proxy waits for the model), or ends for KILL CONNECTION, all
        before the issuer hears OK: no model request of the statement starts after."""
        if is_proxy_id(kill.thread_id):
            thread_id = await self.backend_thread_of(kill.thread_id)
            if thread_id is None:
                raise UnknownThread(f"Unknown thread id: {kill.thread_id}")
            backend = self.session.backend
            assert backend is not None
            command = frame(backend.query_payload(kill.for_backend(thread_id)), 0)
        else:
            command = message.raw
        session, relay, backend = self.session, self.session.relay, self.session.backend
        assert relay is not None and backend is not None
        await relay.send_command(command)
        reply = await backend.read()
        if reply.payload[:1] == bytes((OK_HEADER,)):
            backend.status = ok_status(reply.payload)
            await self._stop_target(kill)
        relay.response_started = True
        session.client.write_raw(reply.raw)
        await session.client.drain()

    async def _stop_target(self, kill: KillStatement) -> None:
        """The proxy's side of a KILL the backend accepted: the session behind the
        thread, in this process or (with --workers) another's."""
        target = self._session_of(kill.thread_id)
        if target is not None and target.id == self.session.id:
            return  # its own KILL: the backend answered it (1927 for CONNECTION)
        if target is not None:
            if kill.query_only:
                target.kill_query()
            else:
                target.close_client()
        elif self.session.ctx.peers is not None:
            await self.session.ctx.peers.killed(kill.thread_id, kill.query_only)

    def _session_of(self, thread_id: int) -> LiveSession | None:
        """This process's session with that proxy id, or with that backend thread."""
        sessions = self.session.ctx.sessions
        if is_proxy_id(thread_id):
            return sessions.get(thread_id)
        return session_of_thread(sessions, thread_id)

    async def backend_thread_of(self, proxy_id: int) -> int | None:
        """The backend thread behind a proxy connection id: this process's session, or
        (with --workers) the owning worker's answer; None when there is no such one."""
        if not is_proxy_id(proxy_id):
            return None
        target = self.session.ctx.sessions.get(proxy_id)
        if target is not None:
            return target.backend.thread_id if target.backend is not None else None
        peers = self.session.ctx.peers
        return None if peers is None else await peers.backend_thread(proxy_id)

    async def process_kill(self, message: Message) -> None:
        thread_id = int.from_bytes(message.payload[1:5], "little")
        kill = KillStatement(thread_id, query_only=False)
        await self.run(message, kill)
