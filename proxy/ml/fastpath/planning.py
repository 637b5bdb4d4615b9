"""How a session's statement gets its ML plan, at the least cost that stays exact.

1. The cheap name test (rewriter.detect, the session's before it calls this): most
   statements never go further.
2. The session's settings: kept from its last ML statement while no command may have
   changed them (proxy.ml.fastpath.known_settings), else read (one query).
3. The functions the statement may call: the built-ins, and the aliases it names as this
   client sees them, read on its own connection at each statement that names one (a
   redefinition, here or behind the proxy's back, applies at once).
4. One pass of the lexer reads the text as the server does and gives its shape
   (rewriter.shaped.shapes); the plan of a statement of the same shape, made under the same
   conditions, is filled in with this statement's literals (rewriter.shaped.plan_cache). Only a
   new shape is parsed.

A prepared statement's text is read once, at its COM_STMT_PREPARE, with its ``?``
parameters as slots of its shape: each execution fills them with its bound literals and
is planned without reading any text.
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, replace
from typing import NamedTuple

from proxy.errors import MLStatementError
from proxy.ml.fastpath.known_settings import KnownSettings
from proxy.ml.fastpath.lanes import ConstantLane, ConstantLanes
from proxy.ml.fastpath.memo import CachedAnswers, Rewrite, Stamp, StatementMemo
from proxy.ml.path import MLRuntime, read_statement_settings
from proxy.ml.registry import FunctionRegistry
from proxy.ml.settings import StatementSettings
from proxy.upstream.backend import BackendConnection
from rewriter.detect import CallDetector
from rewriter.errors import PlanError
from rewriter.functions import MLFunction
from rewriter.lexer import SlotKind, SqlSyntax, UnreadableStatement, read_slots
from rewriter.plan import MLPlan, plan_statement
from rewriter.shaped.constant_splice import ConstantSplice
from rewriter.shaped.matcher import ShapeMatcher
from rewriter.shaped.plan_cache import Entry, Template, filled, plan_shaped, template_of
from rewriter.shaped.point_splice import PointSplice, SingleTripSplice
from rewriter.shaped.shapes import Shape, shape_of

#: The built-in functions' names (the context's detector watches aliases' names too).
_BUILTINS = CallDetector()
#: How many shapes a session recognises without reading its statements, and the largest
#: template it holds for that (Template.size): a session holds at most 64 KiB of templates
#: the plan cache may have let go, as its memo holds a few tens of KiB.
RECENT_SHAPES = 4
RECENT_TEMPLATE_BYTES = 16 << 10


@dataclass(frozen=True)
class Planned:
    """An ML statement's plan, the settings it was made under, and its shape (None: a
    statement with too many literals to have one)."""

    plan: MLPlan
    settings: StatementSettings
    shape: Shape | None


@dataclass(frozen=True)
class Shaped:
    """A statement read for its plan (SessionPlanner.read_now), not yet filled in: its
    shape (None: too many literals to have one) and the plan cache's entry for it."""

    sql: bytes
    stamp: Stamp | None
    settings: StatementSettings
    text: str
    shape: Shape | None
    entry: Entry
    #: ``settings`` are the session's kept ones, not this statement's own copy: read them
    #: only (``fill`` takes a copy for the statement).
    shared: bool = False


class Spliced(NamedTuple):
    """A statement that a recent shape's splice matched on its bytes
    (rewriter.shaped.constant_splice): its answers, if cached, make its rewrite. (A tuple:
    the callbacks' path makes one per statement.)"""

    sql: bytes
    stamp: Stamp
    #: The session's kept settings: read them only (as Shaped.shared).
    settings: StatementSettings
    entry: Template
    splice: ConstantSplice
    found: re.Match[bytes]


class Pointed(NamedTuple):
    """A statement that a recent shape's point splice matched on its bytes
    (rewriter.shaped.point_splice): its key queries, and with their rows its rewrite."""

    sql: bytes
    stamp: Stamp
    #: The session's kept settings: read them only (as Shaped.shared).
    settings: StatementSettings
    entry: Template
    splice: PointSplice
    found: re.Match[bytes]
    #: The single trip to send instead of the key queries (rewriter.single_trip), if any.
    single: SingleTripSplice | None = None


@dataclass(frozen=True)
class _Recent:
    """A shape the session sent lately (its template, and what recognises its
    statements), valid while the memo's stamp is the one it was read under."""

    stamp: Stamp
    matcher: ShapeMatcher
    entry: Template
    #: Its single trip failed for a reason that would come again (not an answer missing
    #: from the cache): its statements take two trips in this session.
    two_trips: bool = False


@dataclass(frozen=True)
class Reading:
    """How a prepared statement's text was read at its COM_STMT_PREPARE."""

    shape: Shape
    syntax: SqlSyntax
    sql_mode: str

    @property
    def parameters(self) -> list[int]:
        """The shape's slots that are ``?`` parameters, in order."""
        return [i for i, (_, _, kind) in enumerate(self.shape.slots) if kind == SlotKind.PARAMETER]


class SessionPlanner:
    """Plans one session's ML statements (see the module docstring)."""

    def __init__(
        self,
        runtime: MLRuntime,
        registry: FunctionRegistry,
        known: KnownSettings,
    ) -> None:
        self.runtime = runtime
        self.registry = registry
        self.known = known
        self.memo = StatementMemo()
        #: Shapes this session sent lately, the latest first (all of one stamp).
        self._recent: list[_Recent] = []
        #: The recent shapes' constant splices, bound to the session.
        self._lanes = ConstantLanes()

    def stamp(self) -> Stamp | None:
        """What the session's memo entries are valid under (proxy.ml.fastpath.memo)."""
        epoch = self.known.epoch
        return None if epoch is None else (epoch, self.registry.generation)

    def lane_rewrite(
        self, sql: bytes, backend: BackendConnection, account: bytes
    ) -> Rewrite | None:
        """The rewrite of a statement of a recent constant-call shape, by its lane
        (proxy.ml.fastpath.lanes), if the cache answers all its calls; else None."""
        lanes = self._lanes
        return lanes.rewrite(sql, self.stamp(), backend, account) if lanes else None

    def lane(
        self, read: Spliced, backend: BackendConnection, account: bytes
    ) -> ConstantLane | None:
        """The lane of the shape ``matched`` gave ``read`` for (made now if need be)."""
        lanes, stamp, pattern = self._lanes, read.stamp, read.found.re
        lane = lanes.find(stamp, pattern, backend, account)
        if lane is None:
            mariadb, runtime = read.settings.syntax.mariadb, self.runtime
            splice = read.splice
            lane = ConstantLane.bind(stamp, splice, pattern, mariadb, runtime, backend, account)
            if lane is not None:
                lanes.keep(lane)
        return lane

    def cached_rewrite(self, sql: bytes) -> Rewrite | None:
        """The rewrite of a statement that came before and whose answers are still
        cached, or None (proxy.ml.fastpath.memo)."""
        if not self.runtime.plans.enabled:
            return None
        return self.memo.rewrite(sql, self.stamp())

    def replayed(self, sql: bytes, reply: bytes) -> Rewrite | None:
        """The rewrite a small statement's key queries' ``reply`` gave last time, if they
        answered the same bytes and it is still valid (proxy.ml.fastpath.memo)."""
        if not self.runtime.plans.enabled:
            return None
        return self.memo.replayed(sql, self.stamp(), reply)

    def worth_remembering(self, sql: bytes) -> bool:
        """Whether the session's memo would keep ``sql`` (it came before): callers ask
        before they gather what it would keep (proxy.ml.fastpath.memo)."""
        return self.runtime.plans.enabled and self.memo.worth_keeping(sql)

    def remember_replay(
        self,
        sql: bytes,
        plan: MLPlan | None,
        reply: bytes,
        command: bytes,
        answers: tuple[CachedAnswers, ...],
    ) -> None:
        if self.runtime.plans.enabled:
            self.memo.keep_replay(sql, self.stamp(), plan, reply, command, answers)

    def remember_spliced(self, read: Spliced, rewrite: Rewrite) -> None:
        """Keep the rewrite of a statement ``matched`` gave as Spliced (it checked that
        plans are on, and its stamp is the session's)."""
        self.memo.keep_rewrite(read.sql, read.stamp, None, rewrite.command, rewrite.answers)

    def remember_rewrite(
        self,
        sql: bytes,
        plan: MLPlan | None,
        command: bytes,
        answers: tuple[CachedAnswers, ...] | None,
    ) -> None:
        """Keep a statement's rewrite when ``answers`` says it may be used again."""
        if answers is not None and self.runtime.plans.enabled:
            self.memo.keep_rewrite(sql, self.stamp(), plan, command, answers)

    async def plan(
        self, backend: BackendConnection, sql: bytes, account: bytes, parameters: bool = False
    ) -> Planned | None:
        """The plan of a statement that passed the name test, or None when it calls no ML
        function. Raises
        UnreadableStatement for text the proxy cannot read as the server does (it then
        goes to the backend untouched) and MLStatementError for a call it refuses.
        ``parameters``: a prepared statement's text, whose ``?`` are parameters."""
        settings = await self.settings(backend)
        stamp = self.stamp()
        if not parameters and self.runtime.plans.enabled:
            remembered = self.memo.plan(sql, stamp)
            if remembered is not None:
                return Planned(remembered, settings, None)
        if settings.charset is None:
            raise UnreadableStatement("the session's character set")
        text = settings.charset.decode(sql)
        functions = await self._callable_functions(backend, sql, text, settings)
        if functions is None:
            return None
        read = read_slots(text, settings.syntax, parameters)
        shape = shape_of(read)
        context = self._context(functions, settings.syntax, settings.sql_mode, settings, account)
        plan = _plan(shape, text, functions, settings, context, self.runtime)
        if plan is None:
            return None
        if not parameters and functions is self.runtime.functions and self.runtime.plans.enabled:
            self.memo.keep_plan(sql, stamp, plan)  # built-ins only: no definition to read
        return Planned(plan, settings, shape)

    def matched(self, sql: bytes) -> Planned | Shaped | Spliced | Pointed | None:
        """``sql`` recognised as a statement of a shape the session sent lately, under
        the same settings and registry (rewriter.shaped.matcher): what ``read_now`` gives
        for it, without the name tests, the lexer or the plan cache; or its shape's
        splice's match, on its bytes (rewriter.shaped.constant_splice and point_splice).
        None otherwise."""
        if not self._recent or not self.runtime.plans.enabled:
            return None
        stamp = self.stamp()
        if stamp != self._recent[0].stamp:
            self._recent.clear()  # the settings or the registry changed: all stale
            return None
        settings = self.known.kept()  # read-only here: ``fill`` takes its own copy
        if settings is None or settings.charset is None:
            return None
        charset, utf8 = settings.charset, settings.utf8_session
        for recent in self._recent:  # one trip before two, even for a statement seen before
            point = recent.entry.point
            if point is not None and point.single is not None and not recent.two_trips:
                found = _fullmatch(point.pattern(charset, utf8), sql)
                if found is not None:
                    return Pointed(sql, stamp, settings, recent.entry, point, found, point.single)
        remembered = self.memo.plan(sql, stamp)
        if remembered is not None:
            return Planned(remembered, settings.for_next_statement(), None)
        text = None
        for recent in self._recent:
            splice, point = recent.entry.splice, recent.entry.point
            if splice is not None:
                found = _fullmatch(splice.pattern(charset, utf8), sql)
                if found is not None:
                    return Spliced(sql, stamp, settings, recent.entry, splice, found)
            elif point is not None and (point.single is None or recent.two_trips):
                found = _fullmatch(point.pattern(charset, utf8), sql)
                if found is not None:
                    return Pointed(sql, stamp, settings, recent.entry, point, found)
            if text is None:
                try:
                    text = charset.decode(sql)
                except UnreadableStatement:
                    return None
            shape = recent.matcher.shape(text)
            if shape is not None:
                return Shaped(sql, stamp, settings, text, shape, recent.entry, shared=True)
        return None

    def two_trips(self, entry: Template) -> None:
        """The single trip of ``entry``'s shape failed for a reason that would come again
        (results too large, a warning, the results' character set...): the session's
        next statements of the shape take the key queries' two trips instead, while the
        shape stays recent."""
        self._recent = [replace(r, two_trips=True) if r.entry is entry else r for r in self._recent]

    def unspliced(self, read: Spliced | Pointed) -> Shaped | None:
        """What ``matched`` gives for a statement its splice matched without it: for the
        plan path, when the cache does not answer it."""
        assert read.settings.charset is not None and read.entry.matcher is not None
        try:
            text = read.settings.charset.decode(read.sql)
        except UnreadableStatement:
            return None
        shape = read.entry.matcher.shape(text)
        if shape is None:
            return None
        return Shaped(read.sql, read.stamp, read.settings, text, shape, read.entry, shared=True)

    def _recently(self, read: Shaped) -> None:
        """Keep ``read``'s shape among the session's recent ones, if it has a matcher."""
        entry = read.entry
        if not isinstance(entry, Template) or entry.matcher is None or read.stamp is None:
            return
        if entry.size > RECENT_TEMPLATE_BYTES:
            return
        if self._recent and self._recent[0].stamp != read.stamp:
            self._recent.clear()
        recent = _Recent(read.stamp, entry.matcher, entry)
        self._recent = [recent, *(r for r in self._recent if r.entry is not entry)]
        del self._recent[RECENT_SHAPES:]

    def read_now(self, sql: bytes, account: bytes) -> Planned | Shaped | None:
        """A statement that passed the name test, read without a query (the session's
        settings are known, it calls built-in functions only): the plan the memo keeps
        for ``sql``, or its shape and the plan cache's entry for it, not yet filled in
        (``fill``). None otherwise, and for anything the task's ``plan`` reports (an
        unreadable statement, a refused call), which then plans it again."""
        settings = self.known.for_statement()
        if settings is None or settings.charset is None or not self.runtime.plans.enabled:
            return None
        stamp = self.stamp()
        remembered = self.memo.plan(sql, stamp)
        if remembered is not None:
            return Planned(remembered, settings, None)
        try:
            text = settings.charset.decode(sql)
            if self.registry.may_call(text) or not _BUILTINS.may_call(sql):
                return None
            shape = shape_of(read_slots(text, settings.syntax))
            if shape is None:
                return self.fill(Shaped(sql, stamp, settings, text, None, None))
            context = self._context(
                self.runtime.functions, settings.syntax, settings.sql_mode, settings, account
            )
            entry = _entry(shape, self.runtime.functions, settings.syntax, context, self.runtime)
        except (UnreadableStatement, MLStatementError):
            return None
        read = Shaped(sql, stamp, settings, text, shape, entry)
        self._recently(read)
        return read

    def fill(self, read: Shaped) -> Planned | None:
        """The plan of a statement ``read_now`` or ``matched`` read (kept in the memo)."""
        functions, settings = self.runtime.functions, read.settings
        if read.shared:
            settings = settings.for_next_statement()
        try:
            if read.shape is None:
                plan = plan_statement(read.text, functions, settings.syntax)
            else:
                syntax, utf8 = settings.syntax, settings.utf8_session
                plan = filled(read.entry, read.shape, functions, syntax, utf8)
        except (UnreadableStatement, PlanError, RecursionError):
            return None  # the task plans it again, and reports it
        if plan is None:
            return None
        self.memo.keep_plan(read.sql, read.stamp, plan)
        return Planned(plan, settings, read.shape)

    async def plan_bound(
        self, backend: BackendConnection, reading: Reading, shape: Shape, account: bytes
    ) -> Planned | None:
        """The plan of an execution of a prepared statement read as ``reading``, whose
        ``shape`` has its parameters bound (Shape.with_slot_texts)."""
        settings = await self.settings(backend)
        sql = (settings.charset or backend.charset).encode(shape.text)
        functions = await self._callable_functions(backend, sql, shape.text, settings)
        if functions is None:
            return None
        context = self._context(functions, reading.syntax, reading.sql_mode, settings, account)
        plan = _plan(shape, shape.text, functions, settings, context, self.runtime, reading.syntax)
        return None if plan is None else Planned(plan, settings, shape)

    async def settings(self, backend: BackendConnection) -> StatementSettings:
        """The session's settings for its next statement: those it keeps, or read now."""
        known = self.known.for_statement()
        if known is not None:
            return known
        settings = await read_statement_settings(backend, self.runtime)
        self.known.keep(settings)
        return settings

    async def _callable_functions(
        self, backend: BackendConnection, sql: bytes, text: str, settings: StatementSettings
    ) -> Mapping[str, MLFunction] | None:
        """The functions ``text`` may call: the built-ins, and the aliases this client
        can see (read on its own connection, so the backend's visibility rules apply);
        None when it calls nothing."""
        if not self.registry.may_call(text):
            return self.runtime.functions if _BUILTINS.may_call(sql) else None
        aliases = await self.registry.visible(backend, settings.database, text)
        return {**self.runtime.functions, **aliases}

    def _context(
        self,
        functions: Mapping[str, MLFunction],
        syntax: SqlSyntax,
        sql_mode: str,
        settings: StatementSettings,
        account: bytes,
    ) -> Hashable:
        """Everything besides its shape that a plan depends on (rewriter.shaped.plan_cache)."""
        aliases = () if functions is self.runtime.functions else _definitions(functions)
        charset = settings.charset.name if settings.charset is not None else None
        return (
            syntax,
            sql_mode,
            charset,
            settings.database,
            self.registry.generation,
            aliases,
            account,
        )


def _fullmatch(pattern: re.Pattern[bytes] | None, sql: bytes) -> re.Match[bytes] | None:
    return None if pattern is None else pattern.fullmatch(sql)


def _definitions(functions: Mapping[str, MLFunction]) -> tuple[tuple[str, str], ...]:
    """The aliases a statement may call, by name and family (which names the exact
    definition: rewriter.aliases.alias_family)."""
    return tuple(sorted((name, f.family) for name, f in functions.items() if f.definition))


def _plan(
    shape: Shape | None,
    text: str,
    functions: Mapping[str, MLFunction],
    settings: StatementSettings,
    context: Hashable,
    runtime: MLRuntime,
    syntax: SqlSyntax | None = None,
) -> MLPlan | None:
    syntax = syntax or settings.syntax
    try:
        if shape is None:
            return plan_statement(text, functions, syntax)
        return plan_shaped(shape, functions, syntax, runtime.plans, context, settings.utf8_session)
    except RecursionError:
        return None  # too deep to parse (_refused)
    except PlanError as exc:
        raise _refused(exc) from exc


def _entry(
    shape: Shape,
    functions: Mapping[str, MLFunction],
    syntax: SqlSyntax,
    context: Hashable,
    runtime: MLRuntime,
) -> Entry:
    try:
        return template_of(shape, functions, syntax, runtime.plans, context)
    except RecursionError:
        return None  # too deep to parse (_refused)
    except PlanError as exc:
        raise _refused(exc) from exc


def _refused(exc: PlanError) -> MLStatementError:
    """A call the planner refuses, as the client gets it. (A statement too deep for
    sqlglot, which recurses per nesting level, about 40 parentheses exhausting the stack,
    is treated like an unparsable one: the backend answers it, the client stays.)"""
    state = "42000" if exc.code in (1582, 1235, 1064) else "HY000"
    return MLStatementError(str(exc), exc.code, state)
