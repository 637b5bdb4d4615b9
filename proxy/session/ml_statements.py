"""The statements a session hands to the ML side: calls, EXPLAIN, and the alias DDL.

A collaborator of :class:`proxy.session.session.Session`: it owns the session's planner
(plans by shape, the memo of its last statements) and sees the session through
``MLSession`` (proxy.session.core.SessionCore, and the running statement's state the
command loop, KILL and SHOW PROCESSLIST share).
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Protocol

from ml_backends.counters import MLCounters
from proxy.errors import Interrupted, MLStatementError
from proxy.ml.activity import CLIENT_PROGRESS, ProgressReports, RunningML
from proxy.ml.explain import mark_batched, split_explain
from proxy.ml.fastpath.constants import constant_rewrite
from proxy.ml.fastpath.known_settings import KnownSettings
from proxy.ml.fastpath.memo import Rewrite
from proxy.ml.fastpath.planning import Planned, Pointed, SessionPlanner, Shaped, Spliced
from proxy.ml.fastpath.point import PointStatement
from proxy.ml.fastpath.quick import QuickStatement
from proxy.ml.path import MLStatement, Requester, check_target_name, read_statement_settings
from proxy.ml.registry import definitions
from proxy.ml.settings import DEFAULT_PROGRESS_SECONDS, StatementSettings, set_timeout_statement
from proxy.session.core import SessionCore
from proxy.transport.stream import Message
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
from rewriter.errors import PlanError
from rewriter.lexer import UnreadableStatement
from rewriter.plan import MLPlan
from rewriter.registry import (
    MARKER,
    definitions_query,
    show_create_text,
    stub_statement,
)
from rewriter.shaped.plan_cache import Template

_SHOW_CREATE_FUNCTION = re.compile(
    rb"^\s*SHOW\s+CREATE\s+FUNCTION\s+(?:(`(?:[^`]|``)+`|\w+)\s*\.\s*)?(`(?:[^`]|``)+`|\w+)\s*;?\s*$",
    re.IGNORECASE,
)


class MLSession(SessionCore, Protocol):
    """What the ML side sees of a session: the core, and the running statement's state."""

    #: The ML statement the session runs now (KILL and SHOW PROCESSLIST look here).
    running_ml: RunningML | None
    #: What ends the session's statement when it starts (shutdown, KILL CONNECTION).
    interruption: Interrupted | None
    #: Packets of the current response the proxy sent ahead of it (progress reports).
    sent_ahead: int


class MLStatements:
    """Runs the statements that involve ML functions: calls, EXPLAIN, and the alias DDL."""

    def __init__(self, session: MLSession, known_settings: KnownSettings) -> None:
        self.session = session
        self._ctx = session.ctx
        ctx = session.ctx
        self.planner = SessionPlanner(ctx.ml, ctx.registry, known_settings)

    @property
    def _backend(self) -> BackendConnection:
        """The session's backend connection: there is one once the client logged in."""
        backend = self.session.backend
        assert backend is not None
        return backend

    async def statement(self, message: Message, sql: bytes) -> bool:
        """Handle ``sql`` if it is the ML side's; False when it is a plain statement."""
        rewrite = self.planner.cached_rewrite(sql)
        if (
            rewrite is not None
        ):  # it came before, and its answers are cached (proxy.ml.fastpath.memo)
            calls = rewrite.count(self.session.ml_counters)
            await self._send_final(rewrite.command)
            self.log_cached_summary(calls)
            return True
        if _may_be_ddl_or_setting(sql) and await self._ddl_or_setting(sql):
            return True
        if _may_be_explain(sql) and await self._explain_ml(message, sql):
            return True
        planned = await self.plan(sql)
        if planned is None:
            return False
        await self._run_ml(message, planned.plan, planned.settings, sql)
        return True

    def callback_form(self, sql: bytes) -> Rewrite | QuickStatement | PointStatement | None:
        """How the socket callbacks can serve an ML statement whose answers are cached:
        its whole rewrite (one of a recent constant-call shape, by its lane:
        proxy.ml.fastpath.lanes; one that came before, from the memo; or one whose calls
        all take literals: proxy.ml.fastpath.constants), or its key queries to send
        (proxy.ml.fastpath.quick, and on its bytes proxy.ml.fastpath.point). None for a
        statement the task must serve: one that may
        be DDL, a setting, EXPLAIN or one of the proxy's own, one whose plan needs a
        query, one too large for the callbacks."""
        planner, backend, account = self.planner, self._backend, self._account
        rewrite = planner.lane_rewrite(sql, backend, account)
        if rewrite is None:
            rewrite = planner.cached_rewrite(sql)
        if rewrite is not None:
            return rewrite
        head = sql[:4].lower()
        if not head[:1].isalpha() or head in _NOT_QUICK:
            return None
        read = planner.matched(sql)
        if read is None:
            if not self._ctx.detector.may_call(sql):
                return None
            read = planner.read_now(sql, self._account)
        if isinstance(read, Pointed):  # (no room: QuickStatement.of would refuse it too)
            if not self._ctx.ml.memory.has_room():
                return None
            return PointStatement(read, self._ctx.ml, backend, account)
        if isinstance(read, Spliced):
            lane = planner.lane(read, backend, account)
            rewrite = None if lane is None else lane.rewrite(read.found)
            if rewrite is not None:
                planner.remember_spliced(read, rewrite)
                return rewrite
            shaped = planner.unspliced(read)  # (the recipe would not answer it either)
            read = None if shaped is None else planner.fill(shaped)
        elif isinstance(read, Shaped):
            rewrite = self._constant_rewrite(read)
            if rewrite is not None:
                planner.remember_rewrite(sql, None, rewrite.command, rewrite.answers)
                return rewrite
            read = planner.fill(read)
        if read is None:
            return None
        requester = Requester(self._account, self.session.ml_counters)
        statement = MLStatement(self._ctx.ml, self._backend, read.plan, read.settings, requester)
        return QuickStatement.of(statement)

    def _constant_rewrite(self, read: Shaped) -> Rewrite | None:
        entry = read.entry
        if not isinstance(entry, Template) or entry.constant is None or read.shape is None:
            return None
        ml, backend = self._ctx.ml, self._backend
        return constant_rewrite(
            entry.constant, read.shape, read.settings, ml, backend, self._account
        )

    async def finish_quick(self, message: Message, quick: QuickStatement | PointStatement) -> None:
        """A quick statement the task takes over, its key queries sent: from here on as
        any ML statement (KILL, SHOW PROCESSLIST and progress reports see it). A point
        statement is planned now (its key queries are the plan's)."""
        if isinstance(quick, PointStatement):
            if quick.single is not None:
                await self._served_again(message, quick)
                return
            planned = self._point_planned(quick)
            if planned is None:
                await self._unplanned_point(message, quick)
                return
            quick = planned
        statement = quick.statement
        started, before = time.perf_counter(), replace(self.session.ml_counters)
        with self.running_statement(
            statement.plan.sql, "Query", statement.settings, message
        ) as running:
            statement.activity = running
            rewritten = await statement.prepare_sent(quick.queried)
            self.session.log.debug("ML statement rewritten to %s", rewritten)
            command = frame(self._backend.query_payload(self._backend.encode(rewritten)), 0)
            ok = await self._send_final(command, running.shift(), watch=statement.asked_models)
        self._log_ml_summary(before, started, ok)

    def _point_planned(self, point: PointStatement) -> QuickStatement | None:
        """The quick form of a point statement, from its plan (filled in now)."""
        shaped = self.planner.unspliced(point.read)
        planned = None if shaped is None else self.planner.fill(shaped)
        if planned is None:
            return None
        requester = Requester(self._account, self.session.ml_counters)
        plan, settings = planned.plan, planned.settings
        statement = MLStatement(self._ctx.ml, self._backend, plan, settings, requester)
        waves = planned.plan.waves()
        quick = QuickStatement(statement, waves[0]) if len(waves) == 1 else None
        if quick is None or quick.queries() != point.queries():
            return None  # not the key queries sent: their results are not this plan's
        return quick

    async def _served_again(self, message: Message, point: PointStatement) -> None:
        """A single trip the callbacks did not answer (proxy.ml.fastpath.single_trip: an
        answer not cached, a warning, an error...): its result is read and dropped, and
        the statement served the usual way (rewriter.single_trip says it may run again)."""
        await read_response(self._backend)
        if not point.missed:  # (a reason that would come again)
            self.planner.two_trips(point.read.entry)
        if not await self.statement(message, point.read.sql):
            await self.session.forward(message, Shape.RESULT)

    async def _unplanned_point(self, message: Message, point: PointStatement) -> None:
        """A point statement whose plan did not come (a splice that took a statement its
        shape's template does not: a bug of ours). Its key queries' results are read and
        dropped, and the statement served from the start."""
        self.session.log.warning("point statement not planned: served from the start")
        for _ in point.texts:
            await read_response(self._backend)
        if not await self.statement(message, point.read.sql):
            await self.session.forward(message, Shape.RESULT)

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

    async def plan(self, sql: bytes, parameters: bool = False) -> Planned | None:
        """The ML plan of a statement, or None: most statements fail the cheap name test
        and are never parsed. The others are read as the server reads them (the
        session's character set and sql_mode: rewriter.lexer, proxy.ml.fastpath.planning); one
        the proxy cannot read that way goes to the backend untouched, where a call in it
        fails with the backend's own error rather than being half understood."""
        if not self._ctx.detector.may_call(sql):
            return None
        try:
            return await self.planner.plan(self._backend, sql, self._account, parameters)
        except UnreadableStatement as exc:
            self.session.log.info("statement sent as it is (the proxy cannot read %s)", exc)
            return None

    @property
    def _account(self) -> bytes:
        return self.session.identity.user if self.session.identity else b""

    async def _run_ml(
        self, message: Message, plan: MLPlan, settings: StatementSettings | None, sql: bytes
    ) -> None:
        started, before = time.perf_counter(), replace(self.session.ml_counters)
        requester = Requester(self._account, self.session.ml_counters)
        with self.running_statement(plan.sql, "Query", settings, message) as running:
            statement = MLStatement(self._ctx.ml, self._backend, plan, settings, requester, running)
            rewritten = await statement.prepare()
            self.session.log.debug("ML statement rewritten to %s", rewritten)
            command = frame(self._backend.query_payload(self._backend.encode(rewritten)), 0)
            shift = running.shift()
            # (after progress reports, the response is renumbered: not for the memo)
            if shift is None and self.planner.worth_remembering(sql):
                self.planner.remember_rewrite(sql, plan, command, statement.cached_answers())
            ok = await self._send_final(command, shift, watch=statement.asked_models)
        self._log_ml_summary(before, started, ok)

    def _log_ml_summary(self, before: MLCounters, started: float, ok: bool | None) -> None:
        """One line per ML statement: what it asked of the models (the counters it moved)
        and how long it took; as ``ml`` in JSON logs. ``ok`` None: the result is relayed
        from the backend socket's callback, unwatched."""
        now = self.session.ml_counters
        self._log_summary(
            {
                "calls": now.logical_request_cnt - before.logical_request_cnt,
                "backend_requests": now.actual_request_cnt - before.actual_request_cnt,
                "cache_hits": now.cache_hit_cnt - before.cache_hit_cnt,
                "retries": now.retry_request_cnt - before.retry_request_cnt,
                "seconds": round(time.perf_counter() - started, 6),
                "ok": ok,
            }
        )

    def log_cached_summary(self, calls: int) -> None:
        """``_log_ml_summary`` of a statement whose ``calls`` the cache answered, its
        rewrite sent from a socket callback (no time worth counting in the proxy)."""
        if self.session.log.isEnabledFor(logging.DEBUG):
            self._log_summary(
                {
                    "calls": calls,
                    "backend_requests": 0,
                    "cache_hits": calls,
                    "retries": 0,
                    "seconds": 0.0,
                    "ok": None,
                }
            )

    def _log_summary(self, summary: dict[str, object]) -> None:
        """At info level when the statement asked a model or failed; one the cache
        answered whole at debug level (at info, the line would be most of what such a
        statement costs the proxy: an application calling a model per request sends
        thousands a second)."""
        ok = summary["ok"]
        outcome = "sent" if ok is None else "done" if ok else "failed on the backend"
        level = logging.INFO if summary["backend_requests"] or ok is False else logging.DEBUG
        if not self.session.log.isEnabledFor(level):
            return
        self.session.log.log(
            level,
            "ML statement %s: %d calls, %d backend requests, %d cache hits, %d retries, %.3f s",
            outcome,
            *list(summary.values())[:5],
            extra={"ml": summary},
        )

    @contextlib.contextmanager
    def running_statement(
        self, info: str, command: str, settings: StatementSettings | None, message: Message
    ) -> Iterator[RunningML]:
        """The session's running ML statement (proxy.ml.activity), from its plan to the
        end of its result; progress reports if the client asked for them."""
        running = RunningML(info, command, self.session.ml_counters)
        seconds = DEFAULT_PROGRESS_SECONDS if settings is None else settings.progress_seconds
        capabilities = (
            self.session.identity.capabilities if self.session.identity is not None else 0
        )
        if capabilities & CLIENT_PROGRESS and seconds > 0:
            running.reports = ProgressReports(self.session.client, message.next_seq, seconds)
        if self.session.interruption is not None:  # shutdown or KILL CONNECTION came first
            running.interrupt(self.session.interruption)
        self.session.running_ml = running
        try:
            yield running
        finally:
            self.session.running_ml = None
            self.session.sent_ahead = running.reports.sent if running.reports is not None else 0

    async def _send_final(
        self, command: bytes, shift: SequenceShift | None = None, watch: bool = False
    ) -> bool | None:
        """Send an ML statement's rewrite (framed); its response goes to the client from
        the backend socket's callback when it comes whole (as a plain statement's: the
        session's task goes back to its client at once; None), else through the task
        (True when it succeeded). A response renumbered by ``shift`` (after progress
        reports), or one to ``watch`` (a statement that asked a model: its summary says
        whether it succeeded), always goes through the task."""
        if shift is None and not watch and self.session.detach(Message.of_packet(command)):
            return None
        return await self._run_relayed_command(command, shift)

    async def _run_relayed(self, sql: bytes, shift: SequenceShift | None = None) -> bool:
        """Run a statement of the proxy's making; the client gets the backend's response
        (renumbered by ``shift`` after progress reports). True when it succeeded."""
        return await self._run_relayed_command(frame(self._backend.query_payload(sql), 0), shift)

    async def _run_relayed_command(self, command: bytes, shift: SequenceShift | None) -> bool:
        """``_run_relayed`` of a framed COM_QUERY."""
        assert self.session.relay is not None
        await self.session.relay.send_command(command)
        scanner = await self.session.relay.relay(Shape.RESULT, shift=shift)
        if scanner.status:
            self._backend.status = scanner.status
        return not scanner.error

    async def _explain_ml(self, message: Message, sql: bytes) -> bool:
        """EXPLAIN of a statement with ML calls; False when it is not one."""
        if not self._ctx.detector.may_call(sql):
            return False
        explain = split_explain(sql)
        if explain is None:
            return False
        planned = await self.plan(explain.statement)
        if planned is None:
            return False
        if explain.runs_statement:  # ANALYZE: the statement runs, with its real answers
            requester = Requester(self._account, self.session.ml_counters)
            statement = MLStatement(
                self._ctx.ml, self._backend, planned.plan, planned.settings, requester
            )
            rewritten = await statement.prepare()
        else:
            statement = MLStatement(self._ctx.ml, self._backend, planned.plan, planned.settings)
            rewritten = await statement.prepare_explain()
        await send_command(
            self._backend,
            self._backend.query_payload(explain.prefix + self._backend.encode(rewritten)),
        )
        response = mark_batched(await read_response(self._backend), self._backend.shape)
        self.session.client.write_raw(frame_all(response))
        await self.session.client.drain()
        return True

    # -- endpoint aliases ------------------------------------------------------------------

    async def _alias_ddl(self, sql: bytes) -> bool:
        """CREATE FUNCTION ... ALIAS: stored as a stub function on the client's own
        connection, so the backend checks privileges and answers (OK, 1304 exists, 1044
        denied, 1046 no database) exactly as for any CREATE FUNCTION. DROP FUNCTION and
        ordinary CREATE FUNCTION statements go to the backend unchanged."""
        assert self.session.relay is not None
        settings = await read_statement_settings(self._backend, self._ctx.ml)
        escapes = settings.syntax.backslash_escapes
        try:
            if settings.charset is None:
                raise UnreadableStatement("the session's character set")
            text = settings.charset.decode(sql)
            syntax = settings.syntax
            parsed = parse_ml_ddl(
                text, backslash_escapes=escapes, ansi_quotes=syntax.ansi_quotes, syntax=syntax
            )
        except UnreadableStatement as exc:
            self.session.log.info("DDL sent as it is (cannot read %s)", exc)
            return False
        except PlanError as exc:
            raise MLStatementError(str(exc), exc.code, "42000") from exc
        if not isinstance(parsed, AliasFunction):
            return False
        check_target_name(parsed, self._ctx.ml.routes)
        stub = stub_statement(parsed, backslash_escapes=escapes)
        if await self._run_relayed(self._backend.encode(stub)):
            self._ctx.registry.watch([parsed.name])
            self.session.log.info("created alias function %s", parsed.name)
        return True

    async def _show_create_function(self, sql: bytes, schema: str | None, name: str) -> None:
        """The backend's own SHOW CREATE FUNCTION (privileges, errors, sql_mode and
        collations are its own), with an alias's stub text replaced by its Aurora DDL."""
        assert self.session.relay is not None
        await self.session.relay.send_command(frame(self._backend.query_payload(sql), 0))
        response = await read_response(self._backend)
        if response[0][0] != ERR_HEADER and len(response) > 1:
            response = await self._with_alias_text(response, schema, name)
        self.session.client.write_raw(frame_all(response))
        await self.session.client.drain()

    async def _with_alias_text(
        self, response: list[bytes], schema: str | None, name: str
    ) -> list[bytes]:
        result = split_result(response, self._backend.shape)
        if result is None or len(result.rows) != 1:
            return response
        row = decode_text_row(result.rows[0], result.column_count)
        if len(row) < 3 or row[2] is None or MARKER.encode() not in row[2]:
            return response
        if schema is None:
            (database,), *_ = await fetch_rows(self._backend, "SELECT DATABASE()")
            schema = (database or b"").decode("utf-8", "surrogateescape")
        found = definitions(await fetch_rows(self._backend, definitions_query([name], schema)))
        if len(found) != 1:
            return response
        fixed = (*row[:2], show_create_text(found[0]).encode("utf-8"), *row[3:])
        return TextResult(result.head, [encode_text_row(fixed)], result.end).payloads()


#: How EXPLAIN, DESCRIBE, DESC and MariaDB's ANALYZE start (lower case).
_EXPLAIN_HEADS = frozenset((b"expl", b"desc", b"anal"))
#: What the statements start with that the callbacks leave to the task: the proxy's own
#: (KILL, SHOW, FLUSH), ML DDL and settings, EXPLAIN.
_NOT_QUICK = frozenset((b"kill", b"show", b"flus", b"crea", b"set ", *_EXPLAIN_HEADS))


def _may_be_explain(sql: bytes) -> bool:
    """A cheap gate before proxy.ml.explain.split_explain (which allows leading space)."""
    head = sql[:4].lower()
    return head in _EXPLAIN_HEADS or not head[:1].isalpha()


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
