"""A session's prepared statements: the COM_STMT_* commands the proxy must understand.

Most prepared statements are the backend's own and only relayed; the proxy keeps track
of the two kinds it serves itself: a prepared KILL (its proxy id translated, as for a
KILL statement) and a prepared statement with ML calls (bound and run as a statement of
the proxy's own, proxy.ml.prepared). A collaborator of :class:`proxy.session.session.Session`
(seen through proxy.session.core.SessionCore) that owns the prepared statements the proxy
keeps; it runs ML ones through proxy.session.ml_statements.MLStatements.
"""

from __future__ import annotations

from proxy.errors import ClientProtocolError, CommandTooLarge, ErrorCode, MLStatementError
from proxy.ml.fastpath.known_settings import KnownSettings
from proxy.ml.fastpath.planning import Planned, Reading
from proxy.ml.path import MLStatement, Requester
from proxy.ml.prepared import DEFAULT_CHARSET, PreparedML, statement_id
from proxy.session.core import SessionCore
from proxy.session.kill import PARAMETER, KillStatement, parse_kill
from proxy.session.kills import Kills
from proxy.session.ml_statements import MLStatements
from proxy.transport.metadata_relay import MetadataRestorer
from proxy.transport.stream import Message
from proxy.upstream.backend import BackendConnection
from proxy.upstream.internal import close_statement, execute_command, prepare_statement
from proxy.wire.binary_params import parse_execute
from proxy.wire.packets import frame
from proxy.wire.scanner import Shape
from rewriter.charsets import ClientCharset
from rewriter.sql_text import bind_placeholders, placeholder_count


class PreparedStatements:
    """Serves COM_STMT_PREPARE, _EXECUTE, _SEND_LONG_DATA, _CLOSE and _RESET."""

    def __init__(
        self, session: SessionCore, kills: Kills, ml: MLStatements, known_settings: KnownSettings
    ) -> None:
        self.session = session
        self._ctx = session.ctx
        self._kills = kills
        self._ml = ml
        #: What the proxy keeps of the session's settings: told of each prepare and close.
        self._known_settings = known_settings
        #: The ML prepared statements, by statement id.
        self.ml_prepared: dict[int, PreparedML] = {}
        #: The prepared KILLs, by statement id.
        self._kills_prepared: dict[int, KillStatement] = {}

    @property
    def _backend(self) -> BackendConnection:
        """The session's backend connection: there is one once the client logged in."""
        backend = self.session.backend
        assert backend is not None
        return backend

    def forget(self) -> None:
        """The backend session was reset or replaced: its prepared statements are gone."""
        self.ml_prepared.clear()
        self._kills_prepared.clear()

    async def prepare(self, message: Message) -> None:
        kill = parse_kill(message.payload[1:])
        if kill is not None:
            await self._prepare_kill(message, kill)
            return
        planned = await self._ml.plan(message.payload[1:], True)
        if planned is None:
            scanner = await self.session.forward(message, Shape.PREPARE)
            if scanner is not None and not scanner.error:
                self._known_settings.prepared(scanner.statement_id, message.payload[1:])
            return
        plan, settings, shape = planned.plan, planned.settings, planned.shape
        assert self.session.relay is not None
        twin = self._backend.encode(plan.metadata_twin())
        await self.session.relay.send_command(frame(b"\x16" + twin, 0))
        scanner = await self.session.relay.relay(Shape.PREPARE)
        if not scanner.error:
            self._known_settings.prepared(scanner.statement_id, message.payload[1:])
            reading = None if shape is None else Reading(shape, settings.syntax, settings.sql_mode)
            self.ml_prepared[scanner.statement_id] = PreparedML(
                plan.sql,
                placeholder_count(plan.sql, settings.syntax)
                if reading is None
                else len(reading.parameters),
                self._ctx.ml_max_statement_bytes,
                settings.syntax,
                self._backend.charset,
                reading,
            )

    async def _prepare_kill(self, message: Message, kill: KillStatement) -> None:
        """A prepared KILL: a literal proxy id is translated now; ``KILL ?`` is prepared as
        it is and its parameter translated at each execution. Each execution is a KILL
        of the proxy's (proxy.session.kills), which also stops an ML statement."""
        thread_id = await self._kills.backend_thread_of(kill.thread_id)
        if thread_id is not None:
            rewritten = b"\x16" + kill.for_backend(thread_id)
            message = Message(rewritten, frame(rewritten, 0), 0, 0)
        scanner = await self.session.forward(message, Shape.PREPARE)
        if scanner is not None and not scanner.error:
            self._kills_prepared[scanner.statement_id] = kill

    async def _execute_kill(self, message: Message, kill: KillStatement) -> None:
        assert self.session.identity is not None
        if kill.thread_id != PARAMETER:
            await self._kills.run(message, kill)
            return
        try:
            request = parse_execute(
                message.payload, 1, [], {}, DEFAULT_CHARSET, self.session.query_attributes
            )
            thread_id = int(request.literals[0])
        except ValueError as exc:  # MalformedParameters, WrongParameter, not an integer
            raise ClientProtocolError("malformed COM_STMT_EXECUTE of a prepared KILL") from exc
        await self._kills.run(message, KillStatement(thread_id, kill.query_only))

    def plain_execute(self, payload: bytes) -> bool:
        """An execution of a statement the backend alone runs (no KILL, no ML call), whose
        result comes whole (no cursor)."""
        if asks_for_cursor(payload):
            return False
        if not (self._kills_prepared or self.ml_prepared):
            return True  # most sessions have neither: no id to look up
        statement = statement_id(payload)
        return statement not in self._kills_prepared and statement not in self.ml_prepared

    async def execute(self, message: Message) -> None:
        if self._known_settings.watches_executions:
            self._known_settings.execute(statement_id(message.payload))
        if not self.plain_execute(message.payload):
            statement = statement_id(message.payload)
            kill = self._kills_prepared.get(statement)
            if kill is not None:
                await self._execute_kill(message, kill)
                return
            prepared = self.ml_prepared.get(statement)
            if prepared is not None:
                if self._ctx.metrics is not None:
                    self._ctx.metrics.ml_statements.inc()
                await self._execute_ml(message, prepared)
                return
        if self._ctx.metrics is not None:
            self._ctx.metrics.plain_statements.inc()
        if asks_for_cursor(message.payload):
            await self.session.forward(message, Shape.CURSOR)
        elif not self.session.detach(message):
            await self.session.forward(message, Shape.RESULT)

    async def _execute_ml(self, message: Message, prepared: PreparedML) -> None:
        """A prepared statement with ML calls: bound, planned and run as a statement of
        the proxy's own, whose result the client gets."""
        assert self.session.relay is not None and self.session.identity is not None
        # The parameters are in the session's character set of now (SET NAMES after the
        # login changes it), as the server reads them; the bound text goes out in it too.
        charset = (await self._ml.planner.settings(self._backend)).charset or prepared.charset
        literals = prepared.bind(message.payload, charset.name, self.session.query_attributes)
        planned = await self._plan_execution(prepared, literals, charset)
        if planned is None:
            raise MLStatementError(
                "the prepared statement no longer calls an ML function",
                ErrorCode.NOT_SUPPORTED_YET,
            )
        requester = Requester(self.session.identity.user, self.session.ml_counters)
        plan, settings = planned.plan, planned.settings
        with self._ml.running_statement(prepared.sql, "Execute", settings, message) as running:
            statement = MLStatement(self._ctx.ml, self._backend, plan, settings, requester, running)
            rewritten = await statement.prepare()
            internal = await prepare_statement(self._backend, rewritten)
            await self.session.relay.send_command(frame(execute_command(internal.statement_id), 0))
            # A client caching metadata holds the twin's: it gets the rewrite's every time.
            rewrite = None
            if self._backend.shape.cache_metadata:
                rewrite = MetadataRestorer(internal.columns).feed
            await self.session.relay.relay(Shape.RESULT, rewrite=rewrite, shift=running.shift())
        await close_statement(self._backend, internal.statement_id)

    async def _plan_execution(
        self, prepared: PreparedML, literals: list[str], charset: ClientCharset
    ) -> Planned | None:
        """The plan of an execution: from the statement's shape, its parameters bound (or,
        for a text without one, from the bound text)."""
        assert self.session.identity is not None
        reading = prepared.reading
        if reading is None:
            shape = None
            text = bind_placeholders(prepared.sql, literals, prepared.syntax)
        else:
            shape = reading.shape.with_slot_texts(
                dict(zip(reading.parameters, literals, strict=True))
            )
            text = shape.text
        bound = charset.encode(text)
        if len(bound) > self._ctx.ml_max_statement_bytes:  # the text statement's limit
            raise CommandTooLarge(
                f"An ML statement may have at most {self._ctx.ml_max_statement_bytes} bytes"
                " (ml_max_statement_bytes), its parameters bound"
            )
        if reading is None or shape is None:
            return await self._ml.plan(bound, False)
        return await self._ml.planner.plan_bound(
            self._backend, reading, shape, self.session.identity.user
        )

    async def long_data(self, message: Message) -> None:
        prepared = self.ml_prepared.get(statement_id(message.payload))
        if prepared is None:
            await self.session.forward(message, None)
        else:
            prepared.add_long_data(message.payload)

    async def close(self, message: Message) -> None:
        self._known_settings.closed(statement_id(message.payload))
        self.ml_prepared.pop(statement_id(message.payload), None)
        self._kills_prepared.pop(statement_id(message.payload), None)
        await self.session.forward(message, None)

    async def reset(self, message: Message) -> None:
        prepared = self.ml_prepared.get(statement_id(message.payload))
        if prepared is not None:
            prepared.reset_long_data()
        await self.session.forward(message, Shape.SINGLE)


#: COM_STMT_EXECUTE's flags byte: the cursor type bits (page_protocol_com_stmt_execute).
_CURSOR_TYPE_MASK = 0x07


def asks_for_cursor(payload: bytes) -> bool:
    """Whether a COM_STMT_EXECUTE asks the server to open a cursor (flags after the id)."""
    return len(payload) > 5 and bool(payload[5] & _CURSOR_TYPE_MASK)
