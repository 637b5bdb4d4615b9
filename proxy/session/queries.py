"""A session's COM_QUERY: which statements the proxy answers, the ML side runs, or the
backend gets as they are.

A collaborator of :class:`proxy.session.session.Session` (seeing it through
proxy.session.core.SessionCore), kept apart so the session module stays about connections
and the command loop; this is the hot path of every plain statement, so its cheap tests
come first.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from ml_backends.counters import MLCounters
from proxy.ml.fastpath.known_settings import KnownSettings
from proxy.ml.processlist import parse_show_processlist, rewrite_processlist
from proxy.ml.status import ShowStatus, is_flush_status, like_matches, merge_rows, parse_show_status
from proxy.session.core import SessionCore
from proxy.session.kill import parse_kill
from proxy.session.kills import Kills
from proxy.session.ml_statements import DDL_HEADS
from proxy.session.peers import ml_snapshots
from proxy.session.ssl_status import connection_status
from proxy.transport.stream import Message
from proxy.upstream.internal import read_response
from proxy.wire.packets import frame_all
from proxy.wire.query_attributes import query_text
from proxy.wire.scanner import Shape
from rewriter.lexer import UnreadableStatement

#: Runs an ML statement (proxy.session.ml_handlers); False when it calls no ML function.
MLStatementRunner = Callable[[Message, bytes], Awaitable[bool]]

#: What the statements of ``_on_own_statement`` start with (first 4 bytes, lower case).
_OWN_HEADS = (b"kill", b"show", b"flus")

#: Those, and what ML DDL and settings start with (proxy.session.ml_handlers's cheap gate).
_SPECIAL_HEADS = frozenset((*_OWN_HEADS, *DDL_HEADS))


class Queries:
    """Serves COM_QUERY: the statements the proxy answers itself, ML statements, and the
    rest, which go to the backend as they are."""

    def __init__(
        self,
        session: SessionCore,
        kills: Kills,
        ml_statement: MLStatementRunner,
        known_settings: KnownSettings,
    ) -> None:
        self.session = session
        self._kills = kills
        self._ml_statement = ml_statement
        #: What the proxy keeps of the session's settings: told of every statement.
        self._known_settings = known_settings

    def plain(self, sql: bytes) -> bool:
        """A statement for the backend alone. The proxy's own statements, ML DDL and
        settings start with their keyword, a space or a comment, an ML call has a
        watched name: a SELECT or an INSERT without one is plain."""
        head = sql[:4].lower()
        return (
            head[:1].isalpha()
            and head not in _SPECIAL_HEADS
            and not self.session.ctx.detector.may_call(sql)
        )

    async def serve(self, message: Message) -> None:
        sql = query_text(message.payload, self.session.query_attributes)
        if sql is None:  # a malformed attribute block: the backend's to answer
            await self.session.forward(message, Shape.RESULT)
            return
        metrics = self.session.ctx.metrics
        self._known_settings.query(sql)
        if self.plain(sql):  # straight to the backend, past the other kinds' tests
            if metrics is not None:
                metrics.plain_statements.inc()
            if not self.session.detach(message):
                await self.session.forward(message, Shape.RESULT)
            return
        head = sql[:4].lower()
        own = head in _OWN_HEADS or not head[:1].isalpha()
        if own and await self._on_own_statement(message, sql):
            return
        ml = await self._ml_statement(message, sql)
        if metrics is not None:
            (metrics.ml_statements if ml else metrics.plain_statements).inc()
        if not ml:
            await self.session.forward(message, Shape.RESULT)

    async def _on_own_statement(self, message: Message, sql: bytes) -> bool:
        """KILL, SHOW STATUS, SHOW PROCESSLIST or FLUSH STATUS, which the proxy answers
        or completes; False for any other statement."""
        kill = parse_kill(sql)
        if kill is not None:
            await self._kills.run(message, kill)
            return True
        show = parse_show_status(sql)
        if show is not None:
            await self._show_status(message, show)
            return True
        full = parse_show_processlist(sql)
        if full is not None:
            await self._show_processlist(message, full)
            return True
        if is_flush_status(sql):
            scanner = await self.session.forward(message, Shape.RESULT)
            if scanner is not None and not scanner.error:  # the backend checked RELOAD
                self.session.ctx.ml.counters.reset()
                self.session.ml_counters.reset()
            return True
        return False

    async def _show_status(self, message: Message, show: ShowStatus) -> None:
        """The backend's status rows plus the Aurora_ml_* and Mlproxy_ml_* counters: the
        session's own, or with GLOBAL the proxy's and each service's current send rate to
        an account with PROCESS (none to any other)."""
        session, ml = self.session, self.session.ctx.ml
        backend, relay = session.backend, session.relay
        assert backend is not None and relay is not None
        counters: MLCounters | None = session.ml_counters
        if show.is_global:
            allowed = await session.process_privilege.granted(backend)
            counters = ml.counters if allowed else None
        await relay.send_command(message.raw)
        response = await read_response(backend)
        rows = counters.as_status_rows() if counters is not None else []
        if show.is_global and counters is not None:  # the services' send rates: the proxy's
            rows += ml.rates.status_rows()
        extra = [row for row in rows if like_matches(show.pattern, row[0])]
        # The Ssl_* rows of a connection describe the client's, not the proxy's.
        ssl_rows = connection_status(session.client.tls_object, session.ctx.auth.certificate)
        session.client.write_raw(merge_rows(response, extra, backend.shape, ssl_rows))
        await session.client.drain()

    async def process_info(self, message: Message) -> None:
        """COM_PROCESS_INFO, the protocol's own SHOW PROCESSLIST (deprecated, still sent
        by old tools): answered the same way."""
        await self._show_processlist(message, full=False)

    async def _show_processlist(self, message: Message, full: bool) -> None:
        """The backend's process list, the rows of threads whose session runs an ML
        statement rewritten (proxy.ml.processlist); relayed as it is when there are none."""
        session, ctx = self.session, self.session.ctx
        running = {s.thread_id: s for s in ml_snapshots(ctx.sessions)}
        if ctx.peers is not None:
            running.update((s.thread_id, s) for s in await ctx.peers.ml_statements())
        if not running:
            await session.forward(message, Shape.RESULT)
            return
        assert session.backend is not None and session.relay is not None
        await session.relay.send_command(message.raw)
        response = await read_response(session.backend)
        rewritten = rewrite_processlist(response, running, full, self._reader_text)
        session.client.write_raw(frame_all(rewritten))
        await session.client.drain()

    def _reader_text(self, text: str) -> bytes:
        """Text in this session's character set (what it cannot hold as UTF-8)."""
        backend = self.session.backend
        assert backend is not None
        try:
            return backend.encode(text)
        except UnreadableStatement:
            return text.encode("utf-8", "replace")
