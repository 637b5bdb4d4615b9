"""One client connection: log in, then serve commands until the client quits.

Every command goes to the session's own backend connection, logged in as the client's
own user. Commands whose response the proxy only relays are dispatched through one
table (``_RELAYED``); the few the proxy must understand (COM_QUERY for KILL and ML
calls, COM_CHANGE_USER, COM_QUIT) have their own handlers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace

from mysql_mimic.types import Commands

from proxy.backend import BackendConnection, Login, greet
from proxy.binary_params import parse_execute
from proxy.client_auth import ClientAuthenticator, ClientIdentity, make_nonce
from proxy.context import VERSION_SUFFIX, ProxyContext
from proxy.errors import (
    BackendError,
    BackendLost,
    BackendProtocolError,
    BackendRejected,
    ClientProtocolError,
    ProxyError,
    UnknownThread,
    error_payload,
)
from proxy.handshake import ChangeUser, Greeting, make_greeting, parse_change_user
from proxy.internal import close_statement, execute_command, prepare_statement, read_response
from proxy.kill import PARAMETER, KillStatement, is_proxy_id, parse_kill
from proxy.ml_path import MLStatement, MLStatementError
from proxy.ml_prepared import DEFAULT_CHARSET, PreparedML, charset_name, statement_id
from proxy.ml_session import DDL_HEADS, MLHandlers
from proxy.packets import frame, make_ok
from proxy.relay import ClientGone, Relay
from proxy.scanner import ResponseScanner, Shape
from proxy.status import ShowStatus, is_flush_status, like_matches, merge_rows, parse_show_status
from proxy.stream import Message, PacketStream, ReadInterrupted
from rewriter.sql_text import bind_placeholders, placeholder_count

log = logging.getLogger(__name__)

#: The largest command a client may send (the backend enforces its own max_allowed_packet).
MAX_COMMAND = 1 << 30


#: What the statements of ``_on_own_statement`` start with (first 4 bytes, lower case).
_OWN_HEADS = (b"kill", b"show", b"flus")

#: Those, and what ML DDL and settings start with (proxy.ml_session's cheap gate).
_SPECIAL_HEADS = frozenset((*_OWN_HEADS, *DDL_HEADS))


class _EndSession(Exception):
    """Leave the command loop; the connection closes."""


class Session(MLHandlers):
    """Serves one client connection."""

    def __init__(self, ctx: ProxyContext, client: PacketStream, connection_id: int) -> None:
        self.ctx = ctx
        self.client = client
        self.id = connection_id
        self.backend: BackendConnection | None = None
        self.identity: ClientIdentity | None = None
        #: Running a command, or a detached command's response is on its way.
        self.busy = False
        self._in_command = False  # the task runs a command (not: waits for the client)
        #: The command whose response the backend stream relays (proxy.relay.Relay.detach).
        self._detached: Message | None = None
        self.stopping = False
        self.task: asyncio.Task[None] | None = None
        self._nonce = make_nonce()
        self._relay: Relay | None = None
        self._vanished = False
        self._ml_prepared: dict[int, PreparedML] = {}
        self._prepared_kills: dict[int, bool] = {}  # statement id -> KILL QUERY (not CONNECTION)
        self.log = logging.LoggerAdapter(log, {"connection_id": connection_id})

    # -- lifecycle --------------------------------------------------------------------

    async def run(self) -> None:
        self.ctx.sessions[self.id] = self
        try:
            if await self._log_in():
                await self._serve_commands()
        except (OSError, asyncio.IncompleteReadError, ClientGone):
            self.log.debug("connection %d: client went away", self.id)
        except Exception:
            self.log.exception("connection %d: unexpected error", self.id)
        finally:
            self.ctx.sessions.pop(self.id, None)
            await self._close()

    def stop(self) -> None:
        """Shut down: an idle session closes now, a busy one after its current command."""
        self.stopping = True
        if not self.busy and self.task is not None:
            self.task.cancel()

    def client_vanished(self) -> None:
        """The client closed its socket while its statement runs: stop waiting for the
        backend's reply (the command loop then kills the backend query)."""
        if self._in_command and self.task is not None and not self._vanished:
            self._vanished = True
            self.task.cancel()

    def close_client(self) -> None:
        """Drop the client connection (its backend thread was killed)."""
        self.stopping = True
        self.client.close()
        if not self.busy and self.task is not None:
            # Idle, it waits for the client's next command; a TLS close waits for the
            # client's close_notify first, so end the session now rather than then.
            self.task.cancel()

    async def _close(self) -> None:
        if self.backend is not None:
            await self.backend.close()
        self.client.close()
        await self.client.wait_closed()
        user = self.identity.user.decode("utf-8", "replace") if self.identity else "-"
        self.log.info("connection %d closed (user %s)", self.id, user)

    # -- connection phase -------------------------------------------------------------

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
            identity, seq = await asyncio.wait_for(auth.run(), ctx.timeouts.handshake)
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

    # -- command phase ----------------------------------------------------------------

    async def _serve_commands(self) -> None:
        """Read and run commands; a detached command's response, when it needs this task
        (it did not come whole, or the client sent more first), before anything else."""
        while not self.stopping:
            try:
                message: Message | None = await self.client.read_message(MAX_COMMAND)
            except ReadInterrupted:
                message = None
            except (OSError, asyncio.IncompleteReadError):
                await self._left_mid_statement()
                raise
            if self._detached is not None and not await self._serve(
                self._detached, Session._take_over
            ):
                return
            if message is not None and not await self._serve(message):
                return
        if self._detached is not None:  # stopping: the response first
            await self._serve(self._detached, Session._take_over)

    async def _serve(self, message: Message, handler: _Handler | None = None) -> bool:
        """Run one command (``handler``: the rest of one); False when the session ends."""
        self.busy = self._in_command = True
        try:
            await self._dispatch(message, handler)
        except _EndSession:
            return False
        except asyncio.CancelledError:
            if not self._vanished or self.task is None:
                raise
            self.task.uncancel()
            self.log.info("connection %d: client vanished mid-statement", self.id)
            await self._after_client_gone()
            return False
        finally:
            self._in_command = False
            self.busy = self._detached is not None
        return True

    def _detach(self, message: Message) -> bool:
        """Send a command whose response the backend stream relays by itself if it comes
        whole (proxy.relay.Relay.detach); False when it cannot be detached."""
        assert self._relay is not None
        if not self._relay.detach(message.raw):
            return False
        self._detached = message
        return True

    def _settled(self, status: int) -> None:
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
        assert self._relay is not None
        self._detached = None
        self._relay.take_back()
        scanner = await self._relay.relay(Shape.RESULT)
        if scanner.status and self.backend is not None:
            self.backend.status = scanner.status

    async def _left_mid_statement(self) -> None:
        """The client's read failed while a detached command runs: its response has
        nowhere to go, and the statement is stopped as when a client vanishes during any
        other (unless the session is being stopped: KILL CONNECTION has ended it)."""
        if self._detached is None:
            return
        assert self._relay is not None
        self._detached = None
        self._relay.take_back()  # no _settled from now on: the session is ending
        if not self.stopping:
            self.log.info("connection %d: client vanished mid-statement", self.id)
            await self._after_client_gone()

    async def _dispatch(self, message: Message, handler: _Handler | None = None) -> None:
        command = message.payload[0] if message.payload else -1
        if handler is None:
            handler = _HANDLERS.get(command)
        try:
            if handler is not None:
                await handler(self, message)
            elif command in _RELAYED:
                await self._forward(message, _RELAYED[command])
            else:
                await self._unknown_command(message)
        except ClientGone:
            await self._after_client_gone()
            raise _EndSession from None
        except (BackendLost, BackendProtocolError) as exc:
            self.log.warning("connection %d: %s", self.id, exc)
            await self._report_fatal(exc, message)
            raise _EndSession from None
        except ProxyError as exc:
            await self.client.send(error_payload(exc, self.id), message.next_seq)
        except _EndSession:
            raise
        except Exception as exc:
            # A bug of ours: the client gets a generic 1105 (never our internal text) if
            # its response has not started, the log gets the traceback, and the session
            # ends, since its backend connection may be mid-response.
            self.log.exception("connection %d: unexpected error in a command", self.id)
            await self._report_fatal(exc, message)
            raise _EndSession from None

    async def _report_fatal(self, exc: Exception, message: Message) -> None:
        """Report a broken backend in-band if the response has not started; then close."""
        if self._relay is not None and self._relay.response_started:
            return
        with contextlib.suppress(OSError):
            await self.client.send(error_payload(exc, self.id), message.next_seq)

    async def _after_client_gone(self) -> None:
        """Stop the statement the vanished client was running (closing a socket does not)."""
        await self.kill_backend_query()

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

    async def _forward(self, message: Message, shape: Shape | None) -> ResponseScanner | None:
        assert self._relay is not None
        if shape is None:
            await self._relay.send_command(message.raw)
            return None
        scanner = await self._relay.relay(shape, message.raw)
        if scanner.status and self.backend is not None:
            self.backend.status = scanner.status
        return scanner

    async def _unknown_command(self, message: Message) -> None:
        name = _command_name(message.payload[0] if message.payload else -1)
        self.log.info("connection %d: refused command %s", self.id, name)
        await self.client.send(error_payload(_UnknownCommand(name), self.id), message.next_seq)

    async def _on_query(self, message: Message) -> None:
        sql = message.payload[1:]
        head = sql[:4].lower()
        # The proxy's own statements, ML DDL and settings start with their keyword, a space
        # or a comment, an ML call has a watched name: a SELECT or an INSERT without one
        # goes straight to the backend, past the coroutines and tests of the other kinds.
        keyword = head[:1].isalpha()
        if keyword and head not in _SPECIAL_HEADS and not self.ctx.detector.may_call(sql):
            if not self._detach(message):
                await self._forward(message, Shape.RESULT)
            return
        own = head in _OWN_HEADS or not keyword
        if own and await self._on_own_statement(message, sql):
            return
        if not await self._ml_statement(message, sql):
            await self._forward(message, Shape.RESULT)

    async def _on_own_statement(self, message: Message, sql: bytes) -> bool:
        """KILL, SHOW STATUS or FLUSH STATUS, which the proxy answers or completes;
        False for any other statement."""
        kill = parse_kill(sql)
        if kill is not None:
            await self._on_kill(message, kill)
            return True
        show = parse_show_status(sql)
        if show is not None:
            await self._show_status(message, show)
            return True
        if is_flush_status(sql):
            scanner = await self._forward(message, Shape.RESULT)
            if scanner is not None and not scanner.error:
                self.ctx.ml.counters.reset()
            return True
        return False

    async def _show_status(self, message: Message, show: ShowStatus) -> None:
        """The backend's status rows plus the Aurora_ml_* counters."""
        assert self.backend is not None and self._relay is not None
        await self._relay.send_command(message.raw)
        response = await read_response(self.backend)
        counters = self.ctx.ml.counters.as_status_rows()
        extra = [row for row in counters if like_matches(show.pattern, row[0])]
        self.client.write_raw(merge_rows(response, extra))
        await self.client.drain()

    async def _on_prepare(self, message: Message) -> None:
        kill = parse_kill(message.payload[1:])
        if kill is not None:
            await self._prepare_kill(message, kill)
            return
        planned = await self._ml_plan(message.payload[1:])
        if planned is None:
            await self._forward(message, Shape.PREPARE)
            return
        plan = planned[0]
        assert self._relay is not None
        twin = plan.metadata_twin().encode("utf-8", "surrogateescape")
        await self._relay.send_command(frame(b"\x16" + twin, 0))
        scanner = await self._relay.relay(Shape.PREPARE)
        if not scanner.error:
            self._ml_prepared[scanner.statement_id] = PreparedML(
                plan.sql, placeholder_count(plan.sql)
            )

    async def _prepare_kill(self, message: Message, kill: KillStatement) -> None:
        """A prepared KILL: a literal proxy id is translated now; ``KILL ?`` is prepared as
        it is and its parameter translated at each execution."""
        thread_id = await self._backend_thread_of(kill.thread_id)
        if thread_id is not None:
            rewritten = b"\x16" + kill.for_backend(thread_id)
            message = Message(rewritten, frame(rewritten, 0), 0, 0)
        scanner = await self._forward(message, Shape.PREPARE)
        if kill.thread_id == PARAMETER and scanner is not None and not scanner.error:
            self._prepared_kills[scanner.statement_id] = kill.query_only

    async def _execute_kill(self, message: Message, query_only: bool) -> None:
        assert self.identity is not None
        try:
            request = parse_execute(message.payload, 1, [], {}, DEFAULT_CHARSET)
            thread_id = int(request.literals[0])
        except (ValueError, IndexError) as exc:
            raise ClientProtocolError("malformed COM_STMT_EXECUTE of a prepared KILL") from exc
        await self._on_kill(message, KillStatement(thread_id, query_only))

    async def _on_execute(self, message: Message) -> None:
        # Most sessions have no prepared KILL or ML statement: no id to look up then.
        if self._prepared_kills or self._ml_prepared:
            statement = statement_id(message.payload)
            kill = self._prepared_kills.get(statement)
            if kill is not None:
                await self._execute_kill(message, kill)
                return
            prepared = self._ml_prepared.get(statement)
            if prepared is not None:
                await self._execute_ml(message, prepared)
                return
        if not self._detach(message):
            await self._forward(message, Shape.RESULT)

    async def _execute_ml(self, message: Message, prepared: PreparedML) -> None:
        """A prepared statement with ML calls: bound, planned and run as a statement of
        the proxy's own, whose result the client gets."""
        assert self.backend is not None and self._relay is not None and self.identity
        literals = prepared.bind(message.payload, charset_name(self.identity.collation))
        planned = await self._ml_plan(
            bind_placeholders(prepared.sql, literals).encode("utf-8", "surrogateescape")
        )
        if planned is None:
            raise MLStatementError("the prepared statement no longer calls an ML function", 1235)
        rewritten = await MLStatement(self.ctx.ml, self.backend, *planned).prepare()
        internal = await prepare_statement(self.backend, rewritten)
        await self._relay.send_command(frame(execute_command(internal), 0))
        await self._relay.relay(Shape.RESULT)
        await close_statement(self.backend, internal)

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
            prepared.long_data = {}
        await self._forward(message, Shape.SINGLE)

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
        if target is not None and target is not self:
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

    async def _on_quit(self, message: Message) -> None:
        raise _EndSession

    async def _on_change_user(self, message: Message) -> None:
        """Authenticate the new user and give the session a fresh backend connection as
        that user; a failed change closes the connection (no statement may run as a
        user the client did not ask for)."""
        assert self.identity is not None
        request = parse_change_user(message.payload, self.identity.capabilities)
        auth = self._authenticator()
        try:
            password, seq = await auth.change_user(request, message.next_seq)
            identity = _changed_identity(self.identity, request, password)
            backend = await self._open_backend(identity, request.database or None)
        except ProxyError as exc:
            await self.client.send(error_payload(exc, self.id), auth.seq)
            raise _EndSession from None
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


class _UnknownCommand(ProxyError):
    code = 1047  # ER_UNKNOWN_COM_ERROR
    sqlstate = "08S01"

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
    Commands.COM_STMT_PREPARE: Session._on_prepare,
    Commands.COM_QUIT: Session._on_quit,
    Commands.COM_CHANGE_USER: Session._on_change_user,
    Commands.COM_PROCESS_KILL: Session._on_process_kill,
    Commands.COM_STMT_EXECUTE: Session._on_execute,
    Commands.COM_STMT_SEND_LONG_DATA: Session._on_long_data,
    Commands.COM_STMT_CLOSE: Session._on_statement_close,
    Commands.COM_STMT_RESET: Session._on_statement_reset,
}

# Commands whose response is relayed as it is; None: the command has no response.
_RELAYED: dict[int, Shape | None] = {
    Commands.COM_INIT_DB: Shape.SINGLE,
    Commands.COM_FIELD_LIST: Shape.FIELDS,
    Commands.COM_REFRESH: Shape.SINGLE,
    Commands.COM_STATISTICS: Shape.SINGLE,
    Commands.COM_PROCESS_INFO: Shape.RESULT,
    Commands.COM_DEBUG: Shape.SINGLE,
    Commands.COM_PING: Shape.SINGLE,
    Commands.COM_SET_OPTION: Shape.SINGLE,
    Commands.COM_STMT_FETCH: Shape.ROWS,
    Commands.COM_RESET_CONNECTION: Shape.SINGLE,
}
