"""A session's prepared statements: the COM_STMT_* commands the proxy must understand.

Most prepared statements are the backend's own and only relayed; the proxy keeps track
of the two kinds it serves itself: a prepared KILL (its proxy id translated, as for a
KILL statement) and a prepared statement with ML calls (bound and run as a statement of
the proxy's own, proxy.ml.prepared). A mixin of :class:`proxy.session.session.Session`, kept
apart so the session module stays about connections and commands.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING

from ml_backends.counters import MLCounters
from proxy.auth.client_auth import ClientIdentity
from proxy.errors import ClientProtocolError, CommandTooLarge, ErrorCode, MLStatementError
from proxy.ml.activity import RunningML
from proxy.ml.path import MLStatement, Requester
from proxy.ml.prepared import DEFAULT_CHARSET, PreparedML, charset_name, statement_id
from proxy.ml.settings import StatementSettings
from proxy.session.kill import PARAMETER, KillStatement, parse_kill
from proxy.session.ml_handlers import Planned
from proxy.transport.metadata_relay import MetadataRestorer
from proxy.transport.relay import Relay
from proxy.transport.stream import Message
from proxy.upstream.backend import BackendConnection
from proxy.upstream.internal import close_statement, execute_command, prepare_statement
from proxy.wire.binary_params import parse_execute
from proxy.wire.packets import frame
from proxy.wire.scanner import ResponseScanner, Shape
from rewriter.sql_text import bind_placeholders, placeholder_count

if TYPE_CHECKING:
    from proxy.session.context import ProxyContext


class PreparedHandlers:
    """Session methods for COM_STMT_PREPARE, _EXECUTE, _SEND_LONG_DATA, _CLOSE, _RESET."""

    ctx: ProxyContext
    backend: BackendConnection | None
    identity: ClientIdentity | None
    ml_counters: MLCounters
    query_attributes: bool
    _relay: Relay | None
    _ml_prepared: dict[int, PreparedML]
    _prepared_kills: dict[int, KillStatement]  # statement id -> its KILL
    _forward: Callable[[Message, Shape | None], Awaitable[ResponseScanner | None]]
    _detach: Callable[[Message], bool]
    _ml_plan: Callable[[bytes], Awaitable[Planned | None]]
    _on_kill: Callable[[Message, KillStatement], Awaitable[None]]
    _backend_thread_of: Callable[[int], Awaitable[int | None]]
    _running: Callable[
        [str, str, StatementSettings | None, Message], AbstractContextManager[RunningML]
    ]

    async def _on_prepare(self, message: Message) -> None:
        kill = parse_kill(message.payload[1:])
        if kill is not None:
            await self._prepare_kill(message, kill)
            return
        planned = await self._ml_plan(message.payload[1:])
        if planned is None:
            await self._forward(message, Shape.PREPARE)
            return
        plan, settings = planned
        assert self._relay is not None and self.backend is not None and settings is not None
        twin = self.backend.encode(plan.metadata_twin())
        await self._relay.send_command(frame(b"\x16" + twin, 0))
        scanner = await self._relay.relay(Shape.PREPARE)
        if not scanner.error:
            self._ml_prepared[scanner.statement_id] = PreparedML(
                plan.sql,
                placeholder_count(plan.sql, settings.syntax),
                self.ctx.ml_max_statement_bytes,
                settings.syntax,
                self.backend.charset,
            )

    async def _prepare_kill(self, message: Message, kill: KillStatement) -> None:
        """A prepared KILL: a literal proxy id is translated now; ``KILL ?`` is prepared as
        it is and its parameter translated at each execution. Each execution is a KILL
        of the proxy's (proxy.session.kill_handlers), which also stops an ML statement."""
        thread_id = await self._backend_thread_of(kill.thread_id)
        if thread_id is not None:
            rewritten = b"\x16" + kill.for_backend(thread_id)
            message = Message(rewritten, frame(rewritten, 0), 0, 0)
        scanner = await self._forward(message, Shape.PREPARE)
        if scanner is not None and not scanner.error:
            self._prepared_kills[scanner.statement_id] = kill

    async def _execute_kill(self, message: Message, kill: KillStatement) -> None:
        assert self.identity is not None
        if kill.thread_id != PARAMETER:
            await self._on_kill(message, kill)
            return
        try:
            request = parse_execute(
                message.payload, 1, [], {}, DEFAULT_CHARSET, self.query_attributes
            )
            thread_id = int(request.literals[0])
        except ValueError as exc:  # MalformedParameters, WrongParameter, not an integer
            raise ClientProtocolError("malformed COM_STMT_EXECUTE of a prepared KILL") from exc
        await self._on_kill(message, KillStatement(thread_id, kill.query_only))

    def _plain_execute(self, payload: bytes) -> bool:
        """An execution of a statement the backend alone runs (no KILL, no ML call), whose
        result comes whole (no cursor)."""
        if asks_for_cursor(payload):
            return False
        if not (self._prepared_kills or self._ml_prepared):
            return True  # most sessions have neither: no id to look up
        statement = statement_id(payload)
        return statement not in self._prepared_kills and statement not in self._ml_prepared

    async def _on_execute(self, message: Message) -> None:
        if not self._plain_execute(message.payload):
            statement = statement_id(message.payload)
            kill = self._prepared_kills.get(statement)
            if kill is not None:
                await self._execute_kill(message, kill)
                return
            prepared = self._ml_prepared.get(statement)
            if prepared is not None:
                if self.ctx.metrics is not None:
                    self.ctx.metrics.ml_statements.inc()
                await self._execute_ml(message, prepared)
                return
        if self.ctx.metrics is not None:
            self.ctx.metrics.plain_statements.inc()
        if asks_for_cursor(message.payload):
            await self._forward(message, Shape.CURSOR)
        elif not self._detach(message):
            await self._forward(message, Shape.RESULT)

    async def _execute_ml(self, message: Message, prepared: PreparedML) -> None:
        """A prepared statement with ML calls: bound, planned and run as a statement of
        the proxy's own, whose result the client gets."""
        assert self.backend is not None and self._relay is not None and self.identity
        charset = charset_name(self.identity.collation)
        literals = prepared.bind(message.payload, charset, self.query_attributes)
        bound = prepared.charset.encode(bind_placeholders(prepared.sql, literals, prepared.syntax))
        if len(bound) > self.ctx.ml_max_statement_bytes:  # the text statement's limit
            raise CommandTooLarge(
                f"An ML statement may have at most {self.ctx.ml_max_statement_bytes} bytes"
                " (ml_max_statement_bytes), its parameters bound"
            )
        planned = await self._ml_plan(bound)
        if planned is None:
            raise MLStatementError(
                "the prepared statement no longer calls an ML function",
                ErrorCode.NOT_SUPPORTED_YET,
            )
        requester = Requester(self.identity.user, self.ml_counters)
        plan, settings = planned
        with self._running(prepared.sql, "Execute", settings, message) as running:
            statement = MLStatement(self.ctx.ml, self.backend, plan, settings, requester, running)
            rewritten = await statement.prepare()
            internal = await prepare_statement(self.backend, rewritten)
            await self._relay.send_command(frame(execute_command(internal.statement_id), 0))
            # A client caching metadata holds the twin's: it gets the rewrite's every time.
            rewrite = None
            if self.backend.shape.cache_metadata:
                rewrite = MetadataRestorer(internal.columns).feed
            await self._relay.relay(Shape.RESULT, rewrite=rewrite, shift=running.shift())
        await close_statement(self.backend, internal.statement_id)

    async def _on_long_data(self, message: Message) -> None:
        prepared = self._ml_prepared.get(statement_id(message.payload))
        if prepared is None:
            await self._forward(message, None)
        else:
            prepared.add_long_data(message.payload)

    async def _on_statement_close(self, message: Message) -> None:
        self._ml_prepared.pop(statement_id(message.payload), None)
        self._prepared_kills.pop(statement_id(message.payload), None)
        await self._forward(message, None)

    async def _on_statement_reset(self, message: Message) -> None:
        prepared = self._ml_prepared.get(statement_id(message.payload))
        if prepared is not None:
            prepared.reset_long_data()
        await self._forward(message, Shape.SINGLE)


#: COM_STMT_EXECUTE's flags byte: the cursor type bits (page_protocol_com_stmt_execute).
_CURSOR_TYPE_MASK = 0x07


def asks_for_cursor(payload: bytes) -> bool:
    """Whether a COM_STMT_EXECUTE asks the server to open a cursor (flags after the id)."""
    return len(payload) > 5 and bool(payload[5] & _CURSOR_TYPE_MASK)
