"""The statements a session hands to the ML side: calls, EXPLAIN, and the alias DDL.

A mixin of :class:`proxy.session.session.Session` (it uses the session's context, backend
connection, relay and client stream), kept apart so the session module stays about
connections and commands.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Iterator, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING

from ml_backends.counters import MLCounters
from proxy.auth.client_auth import ClientIdentity
from proxy.errors import Interrupted, MLStatementError
from proxy.logs import ContextLog
from proxy.ml.activity import CLIENT_PROGRESS, ProgressReports, RunningML
from proxy.ml.explain import mark_batched, split_explain
from proxy.ml.path import MLStatement, Requester, check_target_name, read_statement_settings
from proxy.ml.path import plan_ml_statement as _plan
from proxy.ml.registry import definitions
from proxy.ml.settings import DEFAULT_PROGRESS_SECONDS, StatementSettings, set_timeout_statement
from proxy.transport.relay import Relay
from proxy.transport.stream import Message, PacketStream
from proxy.upstream.backend import BackendConnection
from proxy.upstream.internal import (
    decode_text_row,
    encode_text_row,
    fetch_rows,
    read_response,
    send_command,
)
from proxy.wire.packets import ERR_HEADER, frame, frame_all
from proxy.wire.result_shape import TextResult, split_result
from proxy.wire.scanner import Shape
from proxy.wire.seq_shift import SequenceShift
from rewriter.ddl import AliasFunction, looks_like_ml_ddl, parse_ml_ddl
from rewriter.detect import CallDetector
from rewriter.errors import PlanError
from rewriter.functions import MLFunction
from rewriter.lexer import UnreadableStatement
from rewriter.plan import MLPlan
from rewriter.registry import (
    MARKER,
    definitions_query,
    show_create_text,
    stub_statement,
)

if TYPE_CHECKING:
    from proxy.session.context import ProxyContext


_SHOW_CREATE_FUNCTION = re.compile(
    rb"^\s*SHOW\s+CREATE\s+FUNCTION\s+(?:(`(?:[^`]|``)+`|\w+)\s*\.\s*)?(`(?:[^`]|``)+`|\w+)\s*;?\s*$",
    re.IGNORECASE,
)

#: The built-in functions' names (the context's detector watches aliases' names too).
_BUILTINS = CallDetector()

#: An ML statement's plan, and the settings read while resolving aliases (if any).
Planned = tuple[MLPlan, StatementSettings | None]


class MLHandlers:
    """Session methods for statements that involve ML functions."""

    ctx: ProxyContext
    client: PacketStream
    backend: BackendConnection | None
    _relay: Relay | None
    log: ContextLog
    id: int
    identity: ClientIdentity | None
    ml_counters: MLCounters
    #: The ML statement the session runs now (KILL and SHOW PROCESSLIST look here).
    running_ml: RunningML | None
    #: What ends the session's statement when it starts (shutdown, KILL CONNECTION).
    interruption: Interrupted | None
    #: Packets of the current response the proxy sent ahead of it (progress reports).
    sent_ahead: int

    async def _ml_statement(self, message: Message, sql: bytes) -> bool:
        """Handle ``sql`` if it is the ML side's; False when it is a plain statement."""
        if _may_be_ddl_or_setting(sql) and await self._ddl_or_setting(sql):
            return True
        if await self._explain_ml(message, sql):
            return True
        planned = await self._ml_plan(sql)
        if planned is None:
            return False
        await self._run_ml(message, *planned)
        return True

    async def _ddl_or_setting(self, sql: bytes) -> bool:
        if looks_like_ml_ddl(sql):
            return await self._alias_ddl(sql)
        show = _SHOW_CREATE_FUNCTION.match(sql)
        if show is not None:
            schema, name = _unquote(show.group(1)), _unquote(show.group(2)) or ""
            await self._show_create_function(sql, schema, name)
            return True
        rewritten = set_timeout_statement(sql)
        if rewritten is not None:
            await self._run_relayed(rewritten)
            return True
        return False

    async def _ml_plan(self, sql: bytes) -> Planned | None:
        """The ML plan of a statement, or None: most statements fail the cheap name test
        and are never parsed. The others are read as the server reads them (the
        session's character set and sql_mode, read first: rewriter.lexer); one the
        proxy cannot read that way goes to the backend untouched, where a call in it
        fails with the backend's own error rather than being half understood."""
        if not self.ctx.detector.may_call(sql):
            return None
        assert self.backend is not None
        settings = await read_statement_settings(self.backend, self.ctx.ml)
        try:
            if settings.charset is None:
                raise UnreadableStatement("the session's character set")
            text = settings.charset.decode(sql)
            functions = await self._callable_functions(sql, text, settings)
            plan = None if functions is None else _plan(text, functions, settings.syntax)
        except UnreadableStatement as exc:
            self.log.info(
                "connection %d: statement sent as it is (the proxy cannot read %s)", self.id, exc
            )
            return None
        return None if plan is None else (plan, settings)

    async def _callable_functions(
        self, sql: bytes, text: str, settings: StatementSettings
    ) -> Mapping[str, MLFunction] | None:
        """The functions ``text`` may call: the built-ins, and the aliases this client
        can see (read on its own connection, so the backend's visibility rules apply);
        None when it calls nothing."""
        registry = self.ctx.registry
        if not registry.may_call(text):
            return self.ctx.ml.functions if _BUILTINS.may_call(sql) else None
        assert self.backend is not None
        aliases = await registry.visible(self.backend, settings.database, text)
        return {**self.ctx.ml.functions, **aliases}

    async def _run_ml(
        self, message: Message, plan: MLPlan, settings: StatementSettings | None
    ) -> None:
        assert self.backend is not None
        started, before = time.perf_counter(), replace(self.ml_counters)
        requester = Requester(self.identity.user if self.identity else b"", self.ml_counters)
        with self._running(plan.sql, "Query", settings, message) as running:
            rewritten = await MLStatement(
                self.ctx.ml, self.backend, plan, settings, requester, running
            ).prepare()
            self.log.debug("connection %d: ML statement rewritten to %s", self.id, rewritten)
            ok = await self._run_relayed(self.backend.encode(rewritten), running.shift())
        self._log_ml_summary(before, started, ok)

    def _log_ml_summary(self, before: MLCounters, started: float, ok: bool) -> None:
        """One line per ML statement: what it asked of the models (the counters it moved)
        and how long it took; as ``ml`` in JSON logs."""
        now = self.ml_counters
        summary = {
            "calls": now.logical_request_cnt - before.logical_request_cnt,
            "backend_requests": now.actual_request_cnt - before.actual_request_cnt,
            "cache_hits": now.cache_hit_cnt - before.cache_hit_cnt,
            "retries": now.retry_request_cnt - before.retry_request_cnt,
            "seconds": round(time.perf_counter() - started, 6),
            "ok": ok,
        }
        self.log.info(
            "connection %d: ML statement %s: %d calls, %d backend requests, %d cache hits,"
            " %d retries, %.3f s",
            self.id,
            "done" if ok else "failed on the backend",
            *list(summary.values())[:5],
            extra={"ml": summary},
        )

    @contextlib.contextmanager
    def _running(
        self, info: str, command: str, settings: StatementSettings | None, message: Message
    ) -> Iterator[RunningML]:
        """The session's running ML statement (proxy.ml.activity), from its plan to the
        end of its result; progress reports if the client asked for them."""
        running = RunningML(info, command, self.ml_counters)
        seconds = DEFAULT_PROGRESS_SECONDS if settings is None else settings.progress_seconds
        capabilities = self.identity.capabilities if self.identity is not None else 0
        if capabilities & CLIENT_PROGRESS and seconds > 0:
            running.reports = ProgressReports(self.client, message.next_seq, seconds)
        if self.interruption is not None:  # shutdown or KILL CONNECTION came first
            running.interrupt(self.interruption)
        self.running_ml = running
        try:
            yield running
        finally:
            self.running_ml = None
            self.sent_ahead = running.reports.sent if running.reports is not None else 0

    async def _run_relayed(self, sql: bytes, shift: SequenceShift | None = None) -> bool:
        """Run a statement of the proxy's making; the client gets the backend's response
        (renumbered by ``shift`` after progress reports). True when it succeeded."""
        assert self.backend is not None and self._relay is not None
        await self._relay.send_command(frame(self.backend.query_payload(sql), 0))
        scanner = await self._relay.relay(Shape.RESULT, shift=shift)
        if scanner.status:
            self.backend.status = scanner.status
        return not scanner.error

    async def _explain_ml(self, message: Message, sql: bytes) -> bool:
        """EXPLAIN of a statement with ML calls; False when it is not one."""
        if not self.ctx.detector.may_call(sql):
            return False
        explain = split_explain(sql)
        if explain is None:
            return False
        planned = await self._ml_plan(explain.statement)
        if planned is None:
            return False
        assert self.backend is not None
        if explain.runs_statement:  # ANALYZE: the statement runs, with its real answers
            requester = Requester(self.identity.user if self.identity else b"", self.ml_counters)
            statement = MLStatement(self.ctx.ml, self.backend, *planned, requester)
            rewritten = await statement.prepare()
        else:
            statement = MLStatement(self.ctx.ml, self.backend, *planned)
            rewritten = await statement.prepare_explain()
        await send_command(
            self.backend,
            self.backend.query_payload(explain.prefix + self.backend.encode(rewritten)),
        )
        response = mark_batched(await read_response(self.backend), self.backend.shape)
        self.client.write_raw(frame_all(response))
        await self.client.drain()
        return True

    # -- endpoint aliases ------------------------------------------------------------------

    async def _alias_ddl(self, sql: bytes) -> bool:
        """CREATE FUNCTION ... ALIAS: stored as a stub function on the client's own
        connection, so the backend checks privileges and answers (OK, 1304 exists, 1044
        denied, 1046 no database) exactly as for any CREATE FUNCTION. DROP FUNCTION and
        ordinary CREATE FUNCTION statements go to the backend unchanged."""
        assert self.backend is not None and self._relay is not None
        settings = await read_statement_settings(self.backend, self.ctx.ml)
        escapes = settings.syntax.backslash_escapes
        try:
            if settings.charset is None:
                raise UnreadableStatement("the session's character set")
            text = settings.charset.decode(sql)
            parsed = parse_ml_ddl(
                text, backslash_escapes=escapes, ansi_quotes=settings.syntax.ansi_quotes
            )
        except UnreadableStatement as exc:
            self.log.info("connection %d: DDL sent as it is (cannot read %s)", self.id, exc)
            return False
        except PlanError as exc:
            raise MLStatementError(str(exc), exc.code, "42000") from exc
        if not isinstance(parsed, AliasFunction):
            return False
        check_target_name(parsed, self.ctx.ml.routes)
        stub = stub_statement(parsed, backslash_escapes=escapes)
        if await self._run_relayed(self.backend.encode(stub)):
            self.ctx.registry.watch([parsed.name])
            self.log.info("connection %d: created alias function %s", self.id, parsed.name)
        return True

    async def _show_create_function(self, sql: bytes, schema: str | None, name: str) -> None:
        """The backend's own SHOW CREATE FUNCTION (privileges, errors, sql_mode and
        collations are its own), with an alias's stub text replaced by its Aurora DDL."""
        assert self.backend is not None and self._relay is not None
        await self._relay.send_command(frame(self.backend.query_payload(sql), 0))
        response = await read_response(self.backend)
        if response[0][0] != ERR_HEADER and len(response) > 1:
            response = await self._with_alias_text(response, schema, name)
        self.client.write_raw(frame_all(response))
        await self.client.drain()

    async def _with_alias_text(
        self, response: list[bytes], schema: str | None, name: str
    ) -> list[bytes]:
        assert self.backend is not None
        result = split_result(response, self.backend.shape)
        if result is None or len(result.rows) != 1:
            return response
        row = decode_text_row(result.rows[0], result.column_count)
        if len(row) < 3 or row[2] is None or MARKER.encode() not in row[2]:
            return response
        if schema is None:
            (database,), *_ = await fetch_rows(self.backend, "SELECT DATABASE()")
            schema = (database or b"").decode("utf-8", "surrogateescape")
        found = definitions(await fetch_rows(self.backend, definitions_query([name], schema)))
        if len(found) != 1:
            return response
        fixed = (*row[:2], show_create_text(found[0]).encode("utf-8"), *row[3:])
        return TextResult(result.head, [encode_text_row(fixed)], result.end).payloads()


#: How alias DDL, SHOW CREATE FUNCTION and the timeout setting start (lower case).
DDL_HEADS = (b"crea", b"show", b"set ")


def _may_be_ddl_or_setting(sql: bytes) -> bool:
    """A cheap gate: one of DDL_HEADS, or a leading comment or space (the exact tests
    cost a regular expression each)."""
    head = sql[:4].lower()
    return head in DDL_HEADS or not head[:1].isalpha()


def _unquote(name: bytes | None) -> str | None:
    if name is None:
        return None
    text = name.decode("utf-8", "surrogateescape")
    return text[1:-1].replace("``", "`") if text.startswith("`") else text
