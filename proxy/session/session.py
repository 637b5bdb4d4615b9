"""One client connection: log in, then serve commands until the client quits.

Every command goes to the session's own backend connection, logged in as the client's
own user. Commands whose response the proxy only relays are dispatched through one
table (``_RELAYED``); the few the proxy must understand (COM_QUERY for KILL and ML
calls, COM_CHANGE_USER, COM_QUIT) have their own handlers.

The families of commands are served by collaborators that own their state and see the
session through proxy.session.core.SessionCore: logging in and COM_CHANGE_USER
(login.Logins), KILLs (kills.Kills), COM_QUERY (queries.Queries), ML statements
(ml_statements.MLStatements), prepared statements (prepared.PreparedStatements) and
commands too large to read whole (large_commands.LargeCommands). The session keeps the
connection, the command loop and what the socket callbacks serve without its task.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from mysql_mimic.types import Commands

from ml_backends.counters import MLCounters
from proxy.auth.client_auth import ClientIdentity
from proxy.auth.login_gate import PendingLogin
from proxy.errors import (
    BackendLost,
    BackendProtocolError,
    ClientProtocolError,
    ConnectionKilled,
    EndSession,
    ErrorCode,
    Interrupted,
    PacketsOutOfOrder,
    PacketTooLarge,
    ProxyError,
    QueryInterrupted,
    ServerShutdown,
    error_payload,
)
from proxy.logs import ContextLog
from proxy.ml.activity import RunningML
from proxy.ml.fastpath.known_settings import KnownSettings
from proxy.ml.fastpath.memo import Rewrite, count_answers
from proxy.ml.fastpath.point import PointStatement
from proxy.ml.fastpath.quick import PARTIAL, Partial, QuickAnswer, QuickStatement
from proxy.ml.fastpath.single_trip import Served
from proxy.ml.prepared import statement_id
from proxy.ml.status_access import ProcessPrivilege
from proxy.session.context import ProxyContext
from proxy.session.kills import Kills
from proxy.session.large_commands import LargeCommands
from proxy.session.login import Logins
from proxy.session.ml_statements import MLStatements
from proxy.session.prepared import PreparedStatements
from proxy.session.queries import Queries
from proxy.transport.relay import ClientGone, Relay
from proxy.transport.stream import (
    MORE,
    Divert,
    Message,
    MessageTooLarge,
    Offer,
    PacketStream,
    ReadInterrupted,
)
from proxy.upstream.backend import BackendConnection
from proxy.wire.query_attributes import query_text
from proxy.wire.scanner import ResponseScanner, Shape

#: What a callbacks' path answers with the key queries' results in.
_Answer = TypeVar("_Answer", QuickAnswer, Rewrite, Served)

log = logging.getLogger(f"mlproxy.{__name__}")

# Plain ints: compared once per statement in a socket callback (enum equality is slower).
_COM_QUERY = int(Commands.COM_QUERY)
_COM_STMT_EXECUTE = int(Commands.COM_STMT_EXECUTE)
_COM_INIT_DB = int(Commands.COM_INIT_DB)
#: Commands after which the session's settings and prepared statements are new ones.
_SESSION_RESETS = frozenset((int(Commands.COM_CHANGE_USER), int(Commands.COM_RESET_CONNECTION)))


# Each mixin declares the methods it uses from the others as annotations: the ones that
# define a method come first (mypy checks a base's definition against the later ones').
class Session:
    """Serves one client connection."""

    def __init__(
        self,
        ctx: ProxyContext,
        client: PacketStream,
        connection_id: int,
        pending: PendingLogin | None = None,
    ) -> None:
        self.ctx = ctx
        self.client = client
        self.id = connection_id
        self.backend: BackendConnection | None = None
        self.identity: ClientIdentity | None = None
        #: The client negotiated MySQL 8's query attributes (proxy.wire.query_attributes).
        self.query_attributes = False
        #: Running a command, or a detached command's response is on its way.
        self.busy = False
        self._in_command = False  # the task runs a command (not: waits for the client)
        #: The command whose response the backend stream relays (transport.relay.Relay.detach),
        #: and what the task does with it if it must take it back.
        self._detached: Message | None = None
        self._detached_handler: _Handler = Session._take_over
        #: An ML statement served from the callbacks, its key queries sent
        #: (proxy.ml.fastpath.quick).
        self._quick: QuickStatement | PointStatement | None = None
        self.stopping = False
        self.task: asyncio.Task[None] | None = None
        self.relay: Relay | None = None
        self._vanished = False
        #: This session's Aurora_ml_* counters (SHOW [SESSION] STATUS).
        self.ml_counters = MLCounters()
        #: The session's sql_mode, character sets and database, kept between ML statements.
        self.known_settings = KnownSettings()
        self.process_privilege = ProcessPrivilege()
        self.log = ContextLog(log, {"connection_id": connection_id})
        self.running_ml: RunningML | None = None
        self.interruption: Interrupted | None = None
        self.sent_ahead = 0
        self.logins = Logins(self, pending)
        self.kills = Kills(self, self.logins.open_backend)
        self.ml = MLStatements(self, self.known_settings)
        self.prepared = PreparedStatements(self, self.kills, self.ml, self.known_settings)
        self.queries = Queries(self, self.kills, self.ml.statement, self.known_settings)
        self.large_commands = LargeCommands(
            self, self.prepared.ml_prepared.get, self.prepared.plain_execute, self.known_settings
        )

    # -- lifecycle --------------------------------------------------------------------

    async def run(self) -> None:
        self.ctx.sessions[self.id] = self
        if self.ctx.metrics is not None:
            self.ctx.metrics.client_connections.inc()
        try:
            if await self.logins.log_in():
                self.client.offer_packets(self._command_in_callback)
                self.client.on_eof = self._client_closed
                await self._serve_commands()
        except (OSError, asyncio.IncompleteReadError, ClientGone):
            self.log.debug("client went away")
        except Exception:
            self.log.exception("unexpected error")
        finally:
            self.ctx.sessions.pop(self.id, None)
            if self.ctx.metrics is not None:
                self.ctx.metrics.client_connections.dec()
            await self._close()

    def stop(self) -> None:
        """Shut down: an idle session closes now, a busy one after its current command;
        an ML statement stops waiting for the model at once (1053, as the server's own
        statements at shutdown)."""
        self.stopping = True
        self._interrupt(ServerShutdown())
        if not self.busy and self.task is not None:
            self.task.cancel()

    def kill_query(self) -> None:
        """KILL QUERY reached this session's backend thread: an ML statement waiting
        for the model stops too (the backend stops the statement it runs, if any)."""
        if self.running_ml is not None:
            self.running_ml.interrupt(QueryInterrupted())

    def _interrupt(self, error: Interrupted) -> None:
        """Stop the ML statement running now, or the next one (the session is ending)."""
        self.interruption = error
        if self.running_ml is not None:
            self.running_ml.interrupt(error)

    def _client_closed(self) -> None:
        """The client's socket ended. During an ML statement it left mid-statement: the
        statement stops at once (the watchdog would notice within a second); unread
        commands first are still served, and a connection the proxy closed itself (KILL
        CONNECTION) is no news. Other commands find out as before: by their own read of
        the client (COM_CHANGE_USER, LOAD DATA LOCAL) or from the watchdog."""
        if self.running_ml is not None and not self.stopping and self.client.at_eof():
            self.client_vanished()

    def client_vanished(self) -> None:
        """The client closed its socket while its statement runs: stop waiting for the
        backend's reply (the command loop then kills the backend query)."""
        if self._in_command and self.task is not None and not self._vanished:
            self._vanished = True
            self.task.cancel()

    def close_client(self) -> None:
        """Drop the client connection (its backend thread was killed)."""
        self.stopping = True
        self._interrupt(ConnectionKilled())
        self.client.close()
        if not self.busy and self.task is not None:
            # Idle, it waits for the client's next command; a TLS close waits for the
            # client's close_notify first, so end the session now rather than then.
            self.task.cancel()

    async def _close(self) -> None:
        self.logins.release()
        if self.backend is not None:
            await self.backend.close()
        self.client.close()
        await self.client.wait_closed()
        user = self.identity.user.decode("utf-8", "replace") if self.identity else "-"
        self.log.info("closed (user %s)", user)

    # -- command phase ----------------------------------------------------------------

    async def _serve_commands(self) -> None:
        """Read and run commands; a detached command's response, when it needs this task
        (it did not come whole, or the client sent more first), before anything else.
        A command over the size read whole is served from its first part
        (proxy.session.large_commands)."""
        while not self.stopping:
            handler: _Handler | None = None
            try:
                message: Message | None = await self.client.read_message(
                    self.large_commands.command_limit
                )
            except ReadInterrupted:
                message = None
            except MessageTooLarge:  # nothing of it read yet
                message, handler = None, Session._on_large
            except (OSError, asyncio.IncompleteReadError):
                await self._left_mid_statement()
                raise
            except ValueError:  # a 16 MiB+ message that grew past the limit: its packets are spent
                with contextlib.suppress(EndSession):
                    too_large = PacketTooLarge("Got a packet bigger than mlproxy accepts")
                    await self._refuse_malformed(too_large, Message(b"", b"", 0, 0))
                return
            if self._detached is not None and not await self._serve(
                self._detached, self._detached_handler
            ):
                return
            if handler is not None:
                message = await self.large_commands.read_head()
            if message is not None and not await self._serve(message, handler):
                return
        if self._detached is not None:  # stopping: the response first
            await self._serve(self._detached, self._detached_handler)

    async def _serve(self, message: Message, handler: _Handler | None = None) -> bool:
        """Run one command (``handler``: the rest of one); False when the session ends."""
        self.busy = self._in_command = True
        try:
            await self._dispatch(message, handler)
        except EndSession:
            return False
        except asyncio.CancelledError:
            if not self._vanished or self.task is None:
                raise
            self.task.uncancel()
            self.log.info("client vanished mid-statement")
            await self._after_client_gone()
            return False
        finally:
            self._in_command = False
            self.busy = self._detached is not None
        return True

    def _command_in_callback(self, raw: bytes) -> bool:
        """A plain statement (COM_QUERY, COM_STMT_EXECUTE) that arrives while the session
        waits for its client: sent from the client socket's callback, its response
        relayed from the backend's (Relay.detach), and the state left as the task's own
        path leaves it. Spares the task two wake-ups per statement: the proxy's added
        latency at one client thread fell to the bare relay's (docs/performance.md, Benchmarks).
        False, and the task serves it, for anything else or when it cannot detach."""
        if self.busy or self.stopping or len(raw) < 5 or raw[3]:
            return False  # (a sequence id other than 0: the task refuses it)
        payload = raw[4:]
        command = payload[0]
        if command == _COM_QUERY:
            sql = query_text(payload, self.query_attributes)
            if sql is None:  # a malformed attribute block: the task relays it
                return False
            self.known_settings.query(sql)
            if not self.queries.plain(sql):
                return self._ml_in_callback(Message(payload, raw, raw[3], raw[3]), sql)
        elif command == _COM_STMT_EXECUTE:
            if not self.prepared.plain_execute(payload):
                return False
            if self.known_settings.watches_executions:
                self.known_settings.execute(statement_id(payload))
        else:
            return False
        if not self.detach(Message(payload, raw, raw[3], raw[3])):  # (payload: sliced once)
            return False
        if self.ctx.metrics is not None:  # (counted as the task's path counts it)
            self.ctx.metrics.plain_statements.inc()
        self.busy = True
        return True

    def _ml_in_callback(self, message: Message, sql: bytes) -> bool:
        """An ML statement the callbacks can serve (its answers cached): one that came
        before (proxy.ml.fastpath.memo) or whose calls all take literals
        (proxy.ml.fastpath.constants) goes to the backend rewritten from here, a small one
        sends its key queries from here and is answered from the backend socket's callback
        (proxy.ml.fastpath.quick). False for any other, which the task serves."""
        if len(message.payload) > self.large_commands.command_limit:
            return False  # more than an ML statement may be: the task refuses it (1153)
        form = self.ml.callback_form(sql)
        if isinstance(form, Rewrite):
            if not self.detach(Message.of_packet(form.command)):
                return False
            self._served_in_callback(form.count(self.ml_counters))
            return True
        quick = form
        if quick is None:
            return False
        answered: Divert
        if isinstance(quick, PointStatement):
            answered = functools.partial(self._point_answered, quick, sql)
        elif not quick.queried:  # constant inputs only: the rewrite now
            return self._quick_answered(quick, sql, b"") is True
        else:
            answered = functools.partial(self._quick_answered, quick, sql)
        assert self.backend is not None
        stream = self.backend.stream
        if not stream.divert(answered):
            return False
        try:
            stream.write_raw(quick.queries())
        except (OSError, RuntimeError):
            stream.undivert()
            return False
        self._detached, self._detached_handler = message, Session._take_over_ml
        self._quick = quick
        self._count_ml_statement()
        self.busy = True
        return True

    def _count_ml_statement(self) -> None:
        if self.ctx.metrics is not None:
            self.ctx.metrics.ml_statements.inc()

    def _served_in_callback(self, calls: int, counted: bool = False) -> None:
        """An ML statement's rewrite is on its way from a socket callback: the session
        is busy with it, and it is counted (unless ``counted`` already) and logged."""
        if not counted:
            self._count_ml_statement()
        self.ml.log_cached_summary(calls)
        self.busy = True

    def _point_answered(self, point: PointStatement, sql: bytes, data: bytes) -> bool | Offer:
        """``_quick_answered`` for a statement served on its bytes
        (proxy.ml.fastpath.point)."""
        if point.single is not None:
            return self._single_trip_answered(point, data)
        planner = self.ml.planner
        replayed = planner.replayed(sql, data)
        if replayed is not None:  # the same rows as last time: the same rewrite
            return self._send_answered(replayed)
        rewrite = self._answered_from(point.answer, data)
        if rewrite is MORE:
            return MORE
        if rewrite is None:
            self.client.interrupt()
            return False
        if not self._send_answered(rewrite):
            return False
        if planner.worth_remembering(sql):  # (it came before: it may come again)
            planner.remember_replay(sql, None, data, rewrite.command, rewrite.answers)
        return True

    def _single_trip_answered(self, point: PointStatement, data: bytes) -> bool | Offer:
        """Send the client a single trip's result (proxy.ml.fastpath.single_trip): the
        statement is done, as when a detached response has reached the client. False
        (the task takes the statement: MLStatements.finish_quick) when it cannot be."""
        result = self._answered_from(point.served, data)
        if result is MORE:
            return MORE
        if result is None:
            self.client.interrupt()
            return False
        try:
            self.client.write_raw(result.response)
        except (OSError, RuntimeError):
            self.client.interrupt()  # (the task finds the client gone)
            return False
        self._detached_handler, self._quick = Session._take_over, None
        self._served_in_callback(count_answers(result.answers, self.ml_counters), counted=True)
        self.settled(result.status)
        return True

    def _answered_from(
        self, answered: Callable[[bytes], _Answer | Partial | None], data: bytes
    ) -> _Answer | Offer | None:
        """``answered(data)`` (QuickStatement.answer, PointStatement.answer): MORE while
        the key queries' results are not all in (the stream holds them, and offers them
        again with the rest; None when the connection ended instead); None for a
        failure of ours too (logged: the task's path reports it its way)."""
        try:
            answer = answered(data)
        except Exception as exc:
            self.log.warning("quick ML path failed: %r", exc)
            return None
        if answer is PARTIAL:
            return MORE if data else None
        return answer

    def _send_answered(self, rewrite: Rewrite) -> bool:
        """Send the rewrite of a statement whose key queries' results are in, its
        answers all cached, and count them; False (the task woken to take the statement
        over) when it cannot be detached."""
        if not self.detach(Message.of_packet(rewrite.command)):
            self.client.interrupt()
            return False
        calls = rewrite.count(self.ml_counters)
        self._detached_handler, self._quick = Session._take_over, None
        self._served_in_callback(calls, counted=True)
        return True

    def _quick_answered(self, quick: QuickStatement, sql: bytes, data: bytes) -> bool | Offer:
        """Send a quick statement's rewrite, answered from ``data`` (its key queries'
        results) and the cache; MORE while they are not all in (the backend stream
        holds them); False when the task must take it (``data`` is left to the backend
        stream, and the task is woken when it waits for its client)."""
        replayed = self.ml.planner.replayed(sql, data) if quick.queried else None
        if replayed is not None:  # the same rows as last time: the same rewrite
            return self._send_answered(replayed)
        answer = self._answered_from(quick.answer, data)
        if answer is MORE:
            return MORE
        if answer is None or not self.detach(Message.of_packet(answer.command)):
            if quick.queried:
                self.client.interrupt()
            return False
        quick.count(answer)
        self._detached_handler, self._quick = Session._take_over, None
        plan, command = quick.statement.plan, answer.command
        if self.ml.planner.worth_remembering(sql):  # (it came before: it may come again)
            if quick.queried:
                answers = quick.statement.answers_used()
                self.ml.planner.remember_replay(sql, plan, data, command, answers)
            else:
                self.ml.planner.remember_rewrite(sql, plan, command, quick.cached())
        self._served_in_callback(answer.calls, counted=bool(quick.queried))
        return True

    async def _take_over_ml(self, message: Message) -> None:
        """Finish a quick ML statement in this task (its key queries were sent from the
        client's callback, and their results did not do there): the general path, the
        results read from the backend."""
        assert self.relay is not None and self._quick is not None
        quick, self._quick = self._quick, None
        self._detached, self._detached_handler = None, Session._take_over
        self.relay.take_back()
        await self.ml.finish_quick(message, quick)

    def detach(self, message: Message) -> bool:
        """Send a command whose response the backend stream relays by itself if it comes
        whole (proxy.transport.relay.Relay.detach); False when it cannot be detached."""
        assert self.relay is not None
        if not self.relay.detach(message.raw):
            return False
        self._detached = message
        return True

    def settled(self, status: int) -> None:
        """A detached command's response has reached the client, while the task waits
        for the client's next command (it takes a response back before running another)."""
        self._detached = None
        if status and self.backend is not None:
            self.backend.status = status
        self.busy = False
        if self.stopping and self.task is not None:
            self.task.cancel()  # stop() waited for this command to finish

    async def _take_over(self, message: Message) -> None:
        """Relay a detached command's response in this task (none of it has reached the
        client yet); errors are reported as for any command."""
        assert self.relay is not None
        self._detached = None
        self.relay.take_back()
        scanner = await self.relay.relay(Shape.RESULT)
        if scanner.status and self.backend is not None:
            self.backend.status = scanner.status

    async def _left_mid_statement(self) -> None:
        """The client's read failed while a detached command runs: its response has
        nowhere to go, and the statement is stopped as when a client vanishes during any
        other (unless the session is being stopped: KILL CONNECTION has ended it)."""
        if self._detached is None:
            return
        assert self.relay is not None
        self._detached, self._detached_handler, self._quick = None, Session._take_over, None
        self.relay.take_back()  # no _settled from now on: the session is ending
        if not self.stopping:
            self.log.info("client vanished mid-statement")
            await self._after_client_gone()

    async def _dispatch(self, message: Message, handler: _Handler | None = None) -> None:
        command = message.payload[0] if message.payload else -1
        self.sent_ahead = 0
        if handler is None:
            handler = _HANDLERS.get(command)
        if self.relay is not None:
            # Nothing of this command's response has gone out yet (the flag is the last
            # relayed command's, and a handler may fail before it relays anything).
            self.relay.response_started = False
        if command in _SESSION_RESETS:
            self.known_settings.reset()
        elif command == _COM_INIT_DB:
            self.known_settings.forget()
        try:
            if message.first_seq:
                raise PacketsOutOfOrder("Got packets out of order")
            if handler is not None:
                await handler(self, message)
            elif command in _RELAYED:
                await self.forward(message, _RELAYED[command])
            else:
                await self._unknown_command(message)
        except ClientGone:
            await self._after_client_gone()
            raise EndSession from None
        except (BackendLost, BackendProtocolError) as exc:
            self.log.warning("%s", exc)
            await self._report_fatal(exc, message)
            raise EndSession from None
        except ClientProtocolError as exc:
            await self._refuse_malformed(exc, message)
        except ProxyError as exc:
            with contextlib.suppress(OSError, RuntimeError):  # a client gone: the read says so
                await self.client.send(error_payload(exc, self.id), self._reply_seq(message))
        except EndSession:
            raise
        except (OSError, RuntimeError, asyncio.IncompleteReadError) as exc:
            await self._socket_failed(exc, message)
            raise EndSession from None
        except Exception as exc:
            # A bug of ours: the client gets a generic 1105 (never our internal text) if
            # its response has not started, the log gets the traceback, and the session
            # ends, since its backend connection may be mid-response.
            self._unexpected(exc)
            await self._report_fatal(exc, message)
            raise EndSession from None

    def _unexpected(self, exc: BaseException) -> None:
        self.log.error("unexpected error in a command", exc_info=exc)

    async def _socket_failed(self, exc: BaseException, message: Message) -> None:
        """A socket error or an end of stream in a handler, put down to the side that has
        ended (uvloop's transports raise RuntimeError once closed): a client that left
        is gone (the handlers read or write the client only while the backend is idle:
        nothing to stop there), a backend that closed is BackendLost (2013); with both
        sides alive it is a bug of ours."""
        if self.client.at_eof() or self.client.is_closing():
            self.log.info("client went away mid-command (%r)", exc)
        elif self.backend is not None and (
            self.backend.stream.at_eof() or self.backend.stream.is_closing()
        ):
            lost = BackendLost("lost the connection to the backend MySQL server")
            self.log.warning("%s (%r)", lost, exc)
            await self._report_fatal(lost, message)
        else:
            self._unexpected(exc)
            await self._report_fatal(exc, message)

    async def _refuse_malformed(self, exc: ClientProtocolError, message: Message) -> None:
        """One ERR and one log line for a command that is not the protocol; a fatal
        one (a stream out of step) ends the session, as the server ends it."""
        self.log.info(
            "refused a malformed command (0x%02x): %s%s",
            message.payload[0] if message.payload else 0,
            exc,
            f" ({exc.__cause__!r})" if exc.__cause__ is not None else "",
        )
        with contextlib.suppress(OSError, RuntimeError):
            await self.client.send(error_payload(exc, self.id), message.next_seq)
        if exc.fatal:
            raise EndSession

    async def _report_fatal(self, exc: BaseException, message: Message) -> None:
        """Report a broken backend in-band if the response has not started; then close.
        A lost backend is not reported: the client sees its connection close, as when
        the server itself goes, and its library says 2013 or 2006. An ERR packet with
        that client-side code is what libmariadb (the mariadb CLI, DBD::MariaDB, the
        mariadb Python connector) refuses as 2027 "malformed packet" (issue 11)."""
        if isinstance(exc, BackendLost):
            return
        if self.relay is not None and self.relay.response_started:
            return
        with contextlib.suppress(OSError, RuntimeError):
            await self.client.send(error_payload(exc, self.id), self._reply_seq(message))

    def _reply_seq(self, message: Message) -> int:
        """The sequence id of a reply to ``message``: after the progress reports sent."""
        return (message.next_seq + self.sent_ahead) & 0xFF

    async def _after_client_gone(self) -> None:
        """Stop the statement the vanished client was running (closing a socket does not)."""
        await self.kill_backend_query()

    async def kill_backend_query(self) -> None:
        """KILL QUERY this session's backend thread from a side connection."""
        await self.kills.kill_backend_query()

    def forget_backend_state(self) -> None:
        """What the proxy keeps of a backend session: gone with it (a change of user)."""
        self.ml_counters.reset()  # a new session as far as status goes, as on the server
        self.process_privilege.forget()
        self.prepared.forget()

    async def _on_change_user(self, message: Message) -> None:
        await self.logins.change_user(message)

    async def _on_query(self, message: Message) -> None:
        await self.queries.serve(message)

    async def _on_process_info(self, message: Message) -> None:
        await self.queries.process_info(message)

    async def _on_large(self, message: Message) -> None:
        await self.large_commands.serve(message)

    async def _on_process_kill(self, message: Message) -> None:
        await self.kills.process_kill(message)

    async def forward(self, message: Message, shape: Shape | None) -> ResponseScanner | None:
        assert self.relay is not None
        if shape is None:
            await self.relay.send_command(message.raw)
            return None
        scanner = await self.relay.relay(shape, message.raw)
        if scanner.status and self.backend is not None:
            self.backend.status = scanner.status
        return scanner

    async def _unknown_command(self, message: Message) -> None:
        name = _command_name(message.payload[0] if message.payload else -1)
        self.log.info("refused command %s", name)
        await self.client.send(error_payload(_UnknownCommand(name), self.id), message.next_seq)

    async def _on_quit(self, message: Message) -> None:
        raise EndSession


class _UnknownCommand(ProxyError):
    code = ErrorCode.UNKNOWN_COM_ERROR

    def __init__(self, name: str) -> None:
        super().__init__(f"Unknown command {name}: mlproxy does not relay it")


def _command_name(command: int) -> str:
    try:
        return str(Commands(command).name)
    except ValueError:
        return f"0x{command & 0xFF:02x}"


_Handler = Callable[[Session, Message], Awaitable[None]]

_HANDLERS: dict[int, _Handler] = {
    Commands.COM_QUERY: Session._on_query,
    Commands.COM_STMT_PREPARE: lambda s, m: s.prepared.prepare(m),
    Commands.COM_QUIT: Session._on_quit,
    Commands.COM_CHANGE_USER: Session._on_change_user,
    Commands.COM_PROCESS_KILL: Session._on_process_kill,
    Commands.COM_PROCESS_INFO: Session._on_process_info,
    Commands.COM_STMT_EXECUTE: lambda s, m: s.prepared.execute(m),
    Commands.COM_STMT_SEND_LONG_DATA: lambda s, m: s.prepared.long_data(m),
    Commands.COM_STMT_CLOSE: lambda s, m: s.prepared.close(m),
    Commands.COM_STMT_RESET: lambda s, m: s.prepared.reset(m),
}

# Commands whose response is relayed as it is; None: the command has no response.
_RELAYED: dict[int, Shape | None] = {
    Commands.COM_INIT_DB: Shape.SINGLE,
    Commands.COM_FIELD_LIST: Shape.FIELDS,
    Commands.COM_REFRESH: Shape.SINGLE,
    Commands.COM_STATISTICS: Shape.SINGLE,
    Commands.COM_DEBUG: Shape.SINGLE,
    Commands.COM_PING: Shape.SINGLE,
    Commands.COM_SET_OPTION: Shape.SINGLE,
    Commands.COM_STMT_FETCH: Shape.ROWS,
    Commands.COM_RESET_CONNECTION: Shape.SINGLE,
}
