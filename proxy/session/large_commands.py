"""Commands too large to read whole: relayed to the backend as they arrive, or refused.

The session reads a command whole only up to ``ml_max_statement_bytes`` (plus its command
byte): the most an ML statement may be, since the ML path must hold and parse it. A larger
command (a bulk INSERT, a big BLOB parameter: up to the backend's max_allowed_packet, 1 GiB)
is never held. The proxy looks at its first ``ml_max_statement_bytes`` bytes and then:

- a statement (COM_QUERY, COM_STMT_PREPARE) whose first part names no ML function, an
  execution of a plain prepared statement, long data for one: the bytes go on to the
  backend in the chunks they arrive in, each write waiting for the backend to drain
  (proxy.transport.stream.PacketStream.pass_message), and the response is relayed as usual;
- a statement whose first part names an ML function, an execution of an ML prepared
  statement or of a prepared KILL, any other command: read to its end, dropped, and
  refused with 1153 (proxy.errors.CommandTooLarge); the session goes on;
- long data for an ML prepared statement: dropped, and its next execution is refused
  (proxy.ml.prepared.PreparedML.add_long_data keeps the same budget for small pieces).

A name that appears only past the examined part is never evaluated by the proxy: the
backend gets the statement as it is and answers for an unknown function (1305) or an
alias's stored stub (1644), as it would for any client that called it directly.

A collaborator of :class:`proxy.session.session.Session`, seeing it through
proxy.session.core.SessionCore, and its prepared statements through two callables.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from mysql_mimic.types import Commands

from proxy.errors import BackendLost, CommandTooLarge, EndSession
from proxy.ml.fastpath.known_settings import KnownSettings
from proxy.ml.prepared import PreparedML, statement_id
from proxy.session.core import SessionCore
from proxy.transport.relay import ClientGone
from proxy.transport.stream import Message, Sink
from proxy.wire.query_attributes import query_text
from proxy.wire.scanner import Shape

#: What a command's response is, for the commands that may be relayed unread; None: none.
_STREAMED: dict[int, Shape | None] = {
    Commands.COM_QUERY: Shape.RESULT,
    Commands.COM_STMT_PREPARE: Shape.PREPARE,
    Commands.COM_STMT_EXECUTE: Shape.RESULT,
    Commands.COM_STMT_SEND_LONG_DATA: None,
}

#: The commands whose text the ML path would read.
_STATEMENTS = frozenset((int(Commands.COM_QUERY), int(Commands.COM_STMT_PREPARE)))


class LargeCommands:
    """Serves a command over the size read whole."""

    def __init__(
        self,
        session: SessionCore,
        ml_prepared: Callable[[int], PreparedML | None],
        plain_execute: Callable[[bytes], bool],
        known_settings: KnownSettings,
    ) -> None:
        self.session = session
        #: The ML prepared statement with that id, if it is one.
        self._ml_prepared = ml_prepared
        #: Whether a COM_STMT_EXECUTE (its first part) runs a plain prepared statement.
        self._plain_execute = plain_execute
        #: The largest command payload read whole: an ML statement and its command byte.
        self.command_limit = session.ctx.ml_max_statement_bytes + 1
        #: What the proxy keeps of the session's settings: forgotten after a command unread.
        self.known_settings = known_settings

    async def read_head(self) -> Message:
        """The first part of the next command, which is over ``command_limit``; its
        last sequence id is known once the handler has passed the rest."""
        try:
            head = await self.session.client.read_head(self.command_limit)
        except (OSError, asyncio.IncompleteReadError) as exc:
            raise ClientGone from exc
        return Message(head, b"", 0, 0)

    async def serve(self, message: Message) -> None:
        """Relay a large command unread, or drop and refuse it (module docstring)."""
        command = message.payload[0]
        self.known_settings.forget()  # unread: it may have changed the session's settings
        if command not in _STREAMED or self._must_read_whole(message.payload):
            await self._pass(message, None)
            raise CommandTooLarge(self._too_large_text(command))
        if command == Commands.COM_STMT_SEND_LONG_DATA:
            prepared = self._ml_prepared(statement_id(message.payload))
            if prepared is not None:
                await self._pass(message, None)
                prepared.refuse_long_data()
                return
        await self._pass_to_backend(message)
        shape = _STREAMED[command]
        relay, backend = self.session.relay, self.session.backend
        if shape is not None:
            assert relay is not None
            scanner = await relay.relay(shape)
            if scanner.status and backend is not None:
                backend.status = scanner.status
            if command == Commands.COM_STMT_PREPARE and not scanner.error:
                self.known_settings.prepared(scanner.statement_id, message.payload[1:])

    def _must_read_whole(self, head: bytes) -> bool:
        """Whether the proxy would need all of a command: an ML statement (by the name
        test on its first part), an execution of an ML or KILL prepared statement."""
        command = head[0]
        if command in _STATEMENTS:
            attributes = self.session.query_attributes
            text = query_text(head, attributes) if command == Commands.COM_QUERY else None
            # (a block longer than the head: the names are looked for in it as well)
            return self.session.ctx.detector.may_call(head[1:] if text is None else text)
        if command == Commands.COM_STMT_EXECUTE:
            return not self._plain_execute(head)
        return False

    def _too_large_text(self, command: int) -> str:
        limit = self.session.ctx.ml_max_statement_bytes
        if command in _STATEMENTS:
            return f"An ML statement may have at most {limit} bytes (ml_max_statement_bytes)"
        if command == Commands.COM_STMT_EXECUTE:
            return (
                f"The parameters of an ML prepared statement may have at most {limit} bytes"
                " (ml_max_statement_bytes)"
            )
        return f"Got a packet bigger than {limit + 1} bytes"

    async def _pass_to_backend(self, message: Message) -> None:
        """The rest of the command to the backend. If the backend goes meanwhile, as a
        server does after a packet over its max_allowed_packet (it answers 1153 and
        closes), the rest is dropped and the client gets that answer after its command,
        as when the command had reached the backend whole; then the session ends."""
        relay = self.session.relay
        assert relay is not None
        lost: list[BackendLost] = []

        async def to_backend(chunk: bytes | bytearray) -> None:
            if not lost:
                try:
                    await relay.send_command(chunk)
                except BackendLost as exc:
                    lost.append(exc)

        await self._pass(message, to_backend)
        if not lost:
            return
        answer = relay.backend.payload_now()
        if answer is None or answer[:1] != b"\xff":
            raise lost[0]
        session = self.session
        session.log.warning("the backend refused a large command and closed")
        try:
            await session.client.send(answer, message.next_seq)
        except OSError as exc:
            raise ClientGone from exc
        raise EndSession

    async def _pass(self, message: Message, sink: Sink | None) -> None:
        """The rest of the command to ``sink`` (None: dropped); the message learns its
        last sequence id, which an error answer follows."""
        try:
            message.last_seq, _ = await self.session.client.pass_message(sink)
        except (OSError, asyncio.IncompleteReadError) as exc:
            raise ClientGone from exc
