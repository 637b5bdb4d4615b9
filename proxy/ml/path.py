"""Running a statement that calls ML functions (the plan comes from rewriter.plan).

1. Read every call site's inputs: constant inputs from the statement's text when it
   says them plainly (rewriter.shaped.plan_cache), else one query for them all; one key query
   per row-dependent site.
2. Check the inputs (languages). When the cache does not answer them all: read the
   session's ML settings (user variables), check the client's privileges for the
   statement and the estimated backend requests against the cap, before any backend call.
3. Infer through the shared engines (one per backend family: sentiment and confidence
   of one text share a call); a few inputs all cached are answered without them.
4. Write answers as literals (constant sites) or into session temporary tables
   (row-dependent sites), and relay the rewritten statement's result to the client.

Temporary tables are dropped at the next ML statement rather than after this one, so
the client's ROW_COUNT(), warnings and FOUND_ROWS() stay those of its own statement.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from ml_backends.base import ItemError
from ml_backends.control.adaptive_rate import RateLimits
from ml_backends.control.budget import TimeBudget, tightest
from ml_backends.counters import MLCounters
from ml_backends.engine import AnswersCallback, InferenceEngine, NotCached
from ml_backends.errors import BudgetExhausted, InvalidTargetName, MLBackendError
from ml_backends.slices import CHECK_EVERY, LoopSlices
from ml_backends.targets import check_alias_name
from proxy.errors import BackendRejected, ErrorCode, Interrupted, MLStatementError, sqlstate_of
from proxy.ml.activity import RunningML
from proxy.ml.answer_check import RefusedAnswer, answer_check
from proxy.ml.answers import (
    backend_input,
    combined_key_sql,
    inline_lookup,
    lookup_sql,
    typed_literal,
)
from proxy.ml.fastpath.memo import CachedAnswers
from proxy.ml.memory import (
    DEFAULT_STATEMENT_MEMORY,
    ProcessMemory,
    StatementMemory,
    row_cost,
)
from proxy.ml.privileges import ACCESS_DENIED, check_privileges
from proxy.ml.settings import (
    SettingsError,
    StatementSettings,
    UnreadableResults,
    read_settings,
    read_state,
    read_variables,
)
from proxy.ml.tables import LookupTable, PipelinedStatements, needs_table, rows_by_input
from proxy.upstream.backend import BackendConnection
from proxy.upstream.internal import Row, fetch_rows, read_rows
from rewriter.ddl import AliasFunction
from rewriter.errors import PlanError
from rewriter.functions import MLFunction
from rewriter.lexer import SqlSyntax
from rewriter.plan import CallSite, MLPlan, plan_statement, render
from rewriter.shaped.plan_cache import PlanCache

log = logging.getLogger(f"mlproxy.{__name__}")

__all__ = [
    "MLRuntime",
    "MLStatement",
    "MLStatementError",
    "Requester",
    "check_target_name",
    "engine_of",
    "lookup_sql",
    "plan_ml_statement",
    "read_statement_settings",
]

ER_BAD_FIELD = 1054  # Unknown column: a key query outside a correlated subquery's context

#: What a statement asked one engine: (engine, cache namespace, inputs, their answers).
Asked = tuple[InferenceEngine, Hashable, list[Hashable], dict[Hashable, object]]

#: Builds the inference backend of an alias definition (see proxy.ml.runtime).
AliasEngineFactory = Callable[[AliasFunction], InferenceEngine]


@dataclass
class MLRuntime:
    """What the ML path shares across sessions."""

    functions: dict[str, MLFunction]
    engines: dict[str, InferenceEngine]
    counters: MLCounters
    max_backend_calls: int = 0
    #: Builds an alias's engine on its first call; None: aliases cannot be called.
    alias_engines: AliasEngineFactory | None = None
    #: The operator's endpoint map (names an alias may use besides AWS names).
    routes: Mapping[str, str] = field(default_factory=dict)
    _alias_engines: dict[Hashable, InferenceEngine] = field(default_factory=dict)
    #: Bytes of key rows and answers one statement may hold (ml_statement_memory).
    statement_memory: int = DEFAULT_STATEMENT_MEMORY
    #: What all ML statements of the process hold together (ml_memory).
    memory: ProcessMemory = field(default_factory=ProcessMemory)
    #: Each service's adaptive send rate (SHOW GLOBAL STATUS shows them).
    rates: RateLimits = field(default_factory=RateLimits)
    #: Seconds one statement's inference may take (ml_statement_timeout; 0: no limit).
    statement_timeout: float = 0.0
    #: Plans by statement shape (ml_plan_cache_entries, ml_plan_cache_memory).
    plans: PlanCache = field(default_factory=PlanCache)

    def engine_for(self, function: MLFunction) -> InferenceEngine | None:
        """The engine answering ``function``: the built-ins' by family; an alias's built
        once per target and options (MLBackendError when its target is unusable)."""
        definition = function.definition
        if not isinstance(definition, AliasFunction):
            return self.engines.get(function.family)
        if self.alias_engines is None:
            return None
        key = engine_key(definition)
        engine = self._alias_engines.get(key)
        if engine is None:
            engine = self._alias_engines[key] = self.alias_engines(definition)
        return engine

    async def close(self) -> None:
        for engine in [*self.engines.values(), *self._alias_engines.values()]:
            await engine.backend.close()


def _explained_inline(site: CallSite) -> str:
    """An inline lookup with no answers that still reads the call's inputs (as the real
    statement's does), for EXPLAIN."""
    key = combined_key_sql(site.inputs, site.function.answers_text)
    return f"CAST(ELT(FIELD({key}, ''), NULL) AS {site.function.cast_type})"


def check_target_name(definition: AliasFunction, routes: Mapping[str, str]) -> None:
    """Refuse (1210) an alias whose ENDPOINT NAME / MODEL ID no call could use: neither
    in the endpoint map nor a valid AWS name (see ml_backends.targets)."""
    try:
        check_alias_name(definition.kind, definition.target_name, routes)
    except InvalidTargetName as exc:
        raise MLStatementError(str(exc), ErrorCode.WRONG_ARGUMENTS) from None


def plan_ml_statement(
    text: str, functions: Mapping[str, MLFunction], syntax: SqlSyntax
) -> MLPlan | None:
    """The statement's ML plan (None: it calls no ML function, or is too deep to parse,
    and goes to the backend as it is); a call the proxy refuses raises MLStatementError
    with the code and SQLSTATE a client gets (and ``mlproxy explain`` prints)."""
    try:
        return plan_statement(text, functions, syntax)
    except RecursionError:
        # sqlglot recurses per nesting level (about 40 parentheses exhaust the stack):
        # too deep to parse is treated like unparsable, not as a reason to drop the client.
        return None
    except PlanError as exc:
        raise MLStatementError(str(exc), exc.code) from exc


def held_answers(
    function: MLFunction,
    rows: Sequence[Row],
    engine: InferenceEngine,
    namespace: Hashable,
    wanted: list[Hashable],
    found: dict[Hashable, object],
) -> dict[Row, object] | None:
    """Each key row's answer from the process's cache, at once (a NULL or empty input
    answered NULL, not asked), each input asked added to ``wanted`` and its answer to
    ``found``; None when one is not cached (the callbacks' paths: proxy.ml.fastpath)."""
    held = engine.cache.held
    answers: dict[Row, object] = {}
    for row in rows:
        key = backend_input(function, row)
        if key is None:
            answers[row] = None
            continue
        hit, value = held(namespace, key)
        if not hit:
            return None
        answers[row] = found[key] = value
        wanted.append(key)
    return answers


def answers_held(asked: Iterable[Asked]) -> tuple[CachedAnswers, ...]:
    """What each engine was asked, as the memo keeps it (proxy.ml.fastpath.memo). (A
    loop: the callbacks' paths make one per statement.)"""
    held = []
    for engine, namespace, inputs, outcomes in asked:
        values = tuple(map(outcomes.__getitem__, inputs))
        held.append(CachedAnswers(engine, namespace, tuple(inputs), values))
    return tuple(held)


def engine_of(runtime: MLRuntime, function: MLFunction) -> InferenceEngine:
    """The engine answering ``function``, or the MLStatementError a client gets when
    there is none (its target unusable: 1210 or 1105, logged; no backend: 1235)."""
    try:
        engine = runtime.engine_for(function)
    except InvalidTargetName as exc:
        raise MLStatementError(f"{function.name}(): {exc}", ErrorCode.WRONG_ARGUMENTS) from exc
    except MLBackendError as exc:
        _log_failure(function, _target_of(function), exc)
        raise MLStatementError(f"{function.name}(): {exc}", ErrorCode.UNKNOWN_ERROR) from exc
    if engine is None:
        raise MLStatementError(
            f"no backend is configured for {function.family} functions",
            ErrorCode.NOT_SUPPORTED_YET,
        )
    return engine


def engine_key(definition: AliasFunction) -> Hashable:
    """What makes two aliases share an engine (one backend, one rate limit)."""
    return (
        definition.kind,
        definition.endpoint,
        definition.model_id,
        definition.max_batch_size,
        definition.content_type,
        definition.accept,
        definition.timeout_ms,
    )


async def read_statement_settings(
    backend: BackendConnection, runtime: MLRuntime
) -> StatementSettings:
    try:
        return await read_settings(backend, runtime.max_backend_calls)
    except SettingsError as exc:
        raise MLStatementError(str(exc), ErrorCode.WRONG_ARGUMENTS) from None
    except UnreadableResults as exc:
        raise MLStatementError(str(exc), ErrorCode.NOT_SUPPORTED_YET) from None


@dataclass
class CallInputs:
    """Each site's distinct input rows (exact utf8mb4 bytes per input)."""

    by_site: dict[int, list[Row]] = field(default_factory=dict)


@dataclass(frozen=True)
class Requester:
    """Whose statement it is. Answers are cached per account: a cache hit (its counter,
    its speed) must never tell one account what rows it cannot read hold (issue 10,
    item 8); within an account, sessions share them. Counts go to the session too."""

    account: bytes
    counters: MLCounters | None = None


#: Statements of nobody's session (mlproxy explain): their own cache partition.
NOBODY = Requester(b"")


class MLStatement:
    """One ML statement on one session's backend connection."""

    def __init__(
        self,
        runtime: MLRuntime,
        backend: BackendConnection,
        plan: MLPlan,
        settings: StatementSettings | None = None,
        requester: Requester = NOBODY,
        activity: RunningML | None = None,
    ) -> None:
        self.runtime = runtime
        self.backend = backend
        self.plan = plan
        self.requester = requester
        #: The client's statement as KILL and SHOW PROCESSLIST see it (None: EXPLAIN,
        #: the CLI): interruptible, with its progress counted.
        self.activity = activity
        #: The lookup tables this statement created (dropped if it is interrupted).
        self._tables: list[str] = []
        #: Read first by prepare() unless the caller read them already.
        self.settings = settings
        #: What the statement holds; prepare() takes its share of the process's.
        self.memory = StatementMemory(runtime.statement_memory)
        #: Where the statement's time budget starts.
        self.started = time.monotonic()
        #: The session's ML variables are read and the privileges checked (for requests).
        self._ready_for_requests = False
        #: What each engine answered: (engine, cache namespace, inputs, answers).
        self._answered: list[Asked] = []
        #: Sites whose key queries are sent already (proxy.ml.fastpath.quick): their rows
        #: are read.
        self._sent: frozenset[int] = frozenset()
        #: The wave at hand, for the progress of a statement that turns to requests.
        self._stage = (0, 1)

    @property
    def asked_models(self) -> bool:
        """Whether the statement got ready for model requests (its answers were not all
        cached)."""
        return self._ready_for_requests

    async def prepare_sent(self, sent: Sequence[CallSite]) -> str:
        """prepare() of a statement whose first key queries (of ``sent``) went to the
        backend already, in order (proxy.ml.fastpath.quick): their rows are read, not asked."""
        self._sent = frozenset(site.index for site in sent)
        return await self.prepare()

    async def prepare(self) -> str:
        """Do everything but the statement itself; return the rewritten statement.

        Before the first model request (and only when there is one: a statement whose
        answers are all cached sends nothing but its own queries), the session's ML
        variables are read, the client's privileges for the statement are checked (a
        statement it may not run costs no request; one it may not run and whose answers
        are cached fails as the final statement: with the backend's own error) and the
        request cap is applied."""
        settings = await self.read_settings()
        if self.plan.state_calls and not settings.state_read:
            await read_state(self.backend, settings)
        self.memory = await self.runtime.memory.admit(self.runtime.statement_memory)
        try:
            replacements = await self._answer_waves()
            if self.activity is not None:
                self.activity.check()  # an interruption between the last step and now
        except Interrupted as exc:
            if not exc.ends_session:  # (else the connection ends, and its tables with it)
                await self._drop_tables()
            raise
        finally:
            self.memory.release()  # what the rewritten statement needs is small
        return self.plan.rewrite(replacements, settings.state)

    async def _answer_waves(self) -> dict[int, str]:
        """Each call's replacement, wave by wave (each wave a stage of the progress)."""
        replacements: dict[int, str] = {}
        waves = self.plan.waves()  # usually one: calls reading calls come later
        for index, wave in enumerate(waves):
            inputs = await self.collect(wave, replacements)
            cached = self._from_cache(wave, inputs)
            if cached is not None:
                replacements.update(cached)
                continue
            keyed = await self._keyed(wave, inputs)
            requests = await _family_requests(wave, keyed)
            self._stage = (index, len(waves))
            if self.activity is not None:
                self.activity.begin_stage(index, len(waves), 0)
            if any(len(request.wanted) > CHECK_EVERY for request in requests.values()):
                # Many inputs: get ready for requests now (a few are tried on the cache
                # first: NotCached in _infer).
                await self._before_requests(requests)
            statements = PipelinedStatements(self.backend)
            try:
                tables = self._open_tables(wave, keyed, statements)
                answers = await self._infer(requests, keyed, tables, statements)
                replacements.update(
                    await self._materialize(wave, inputs, answers, tables, statements)
                )
            except Exception as exc:
                if not (isinstance(exc, Interrupted) and exc.ends_session):
                    await statements.abandon()  # (a killed connection has no replies)
                raise
            await statements.finish()
        return replacements

    async def _drop_tables(self) -> None:
        """Drop the lookup tables of an interrupted statement (a statement that ends
        normally leaves them to the next one: its diagnostics stay the client's)."""
        if not self._tables:
            return
        statements = PipelinedStatements(self.backend)
        statements.send("DROP TEMPORARY TABLE IF EXISTS " + ", ".join(self._tables))
        await statements.abandon()

    def _new_table(self, site: CallSite, statements: PipelinedStatements) -> LookupTable:
        table = LookupTable(site, statements)
        table.create()
        self._tables.append(table.name)
        return table

    def _from_cache(self, wave: list[CallSite], inputs: CallInputs) -> dict[int, str] | None:
        """A wave's replacements when each call has few inputs, all of them answered by
        the cache, and its answers fit in the statement: the same as the steps below
        give (keys, requests, inference, materialization, the engine's counts), without
        their machinery. None, with nothing counted, when it takes them."""
        found = self.cached_replacements(wave, inputs)
        if found is None:
            return None
        replacements, asked = found
        self.count_cached(asked)
        return replacements

    def cached_replacements(
        self, wave: list[CallSite], inputs: CallInputs
    ) -> tuple[dict[int, str], list[Asked]] | None:
        """``_from_cache``'s replacements and what it asked each engine, not yet counted
        (``count_cached``); None when the cache does not answer them all."""
        replacements: dict[int, str] = {}
        asked: dict[str, Asked] = {}
        mariadb = self._settings.syntax.mariadb
        for site in wave:
            rows = inputs.by_site[site.index]
            if len(rows) > CHECK_EVERY:
                return None
            function = site.function
            family = function.family
            if family not in asked:
                engine = self._engine(function)
                asked[family] = (engine, self._namespace(family), [], {})
            engine, namespace, wanted, found = asked[family]
            answers = held_answers(function, rows, engine, namespace, wanted, found)
            if answers is None:
                return None
            if site.constant:
                (row,) = rows
                replacements[site.index] = typed_literal(function, answers[row], mariadb=mariadb)
                continue
            inline = inline_lookup(site, answers)
            if inline is None:
                return None
            replacements[site.index] = inline
        return replacements, list(asked.values())

    def count_cached(self, asked: list[Asked]) -> None:
        """Count cached answers as the engine counts them (see cached_replacements)."""
        session = self.requester.counters
        for engine, namespace, wanted, found in asked:
            engine.counters.add_cached(len(wanted))
            if session is not None:
                session.add_cached(len(wanted))
            self._answered.append((engine, namespace, wanted, found))

    def cached_answers(self) -> tuple[CachedAnswers, ...] | None:
        """After prepare(): the cached answers its rewrite holds, when the rewrite is a
        function of them alone (proxy.ml.fastpath.memo): every call built in, with constant
        inputs known from the text, answered from the cache; no ROW_COUNT() or
        FOUND_ROWS(). None otherwise."""
        plan = self.plan
        if self._ready_for_requests or plan.state_calls:
            return None
        if any(s.known_inputs is None or s.function.definition for s in plan.calls):
            return None
        return self.answers_used()

    def answers_used(self) -> tuple[CachedAnswers, ...]:
        """The answers each engine gave the statement (proxy.ml.fastpath.memo)."""
        return answers_held(self._answered)

    async def prepare_explain(self) -> str:
        """The rewritten statement for EXPLAIN: empty lookup tables, no inference. An
        account without CREATE TEMPORARY TABLES gets the form a statement with few
        answers runs as (the answers inline), which needs no privilege."""
        replacements = {}
        statements = PipelinedStatements(self.backend)
        for site in self.plan.calls:
            if site.constant:
                replacements[site.index] = "NULL"
            else:
                LookupTable(site, statements).create()
                replacements[site.index] = lookup_sql(site)
        try:
            await statements.finish()
        except BackendRejected as exc:
            if exc.code not in ACCESS_DENIED:
                raise
            replacements.update(
                (site.index, _explained_inline(site))
                for site in self.plan.calls
                if not site.constant
            )
        return self.plan.rewrite(replacements)

    async def read_settings(self) -> StatementSettings:
        if self.settings is None:
            self.settings = await read_statement_settings(self.backend, self.runtime)
        return self.settings

    async def _before_requests(self, requests: Mapping[str, _FamilyRequest]) -> None:
        """What must come before this wave's model requests: the session's ML variables
        and the privilege check (once per statement), the request cap (per wave)."""
        if not self._ready_for_requests:
            settings = self._settings
            if not settings.variables_read:
                try:
                    await read_variables(self.backend, settings)
                except SettingsError as exc:
                    raise MLStatementError(str(exc), ErrorCode.WRONG_ARGUMENTS) from None
            await check_privileges(self.backend, self.plan)
            self._ready_for_requests = True
        expected = await self._check_caps(requests)
        if self.activity is not None:
            self.activity.begin_stage(*self._stage, expected)

    @property
    def _settings(self) -> StatementSettings:
        assert self.settings is not None, "read_settings() first"
        return self.settings

    async def collect(self, sites: list[CallSite], replacements: Mapping[int, str]) -> CallInputs:
        """The distinct inputs of ``sites``; key queries that read other calls get those
        calls' ``replacements`` (their lookups, once answered)."""
        inputs = CallInputs()
        for site in sites:
            if site.known_inputs is not None:
                inputs.by_site[site.index] = [site.known_inputs]
        constant_query = self.plan.constant_query()
        if constant_query is not None and any(site.constant for site in sites):
            (row,) = await fetch_rows(self.backend, constant_query, self._charge_row)
            pos = 0
            for site in self.plan.queried_constants:
                inputs.by_site[site.index] = [row[pos : pos + len(site.inputs)]]
                pos += len(site.inputs)
        answers_at = {
            c.span.name_start: replacements[c.index]
            for c in self.plan.calls
            if c.index in replacements
        }
        read: dict[str, list[Row]] = {}  # (calls with one key query read it once)
        for site in sites:
            if site.key_query is not None:
                query = render(site.key_query, answers_at)
                rows = read.get(query)
                if rows is None:
                    rows = read[query] = await self._site_inputs(site, query, answers_at)
                inputs.by_site[site.index] = rows
        return inputs

    async def _site_inputs(
        self, site: CallSite, query: str, answers_at: Mapping[int, str]
    ) -> list[Row]:
        """The site's distinct inputs (``query``: its key query, rendered); a correlated
        subquery's own scope does not resolve (1054 unknown column), and then the scopes
        around it are read too."""
        try:
            if site.index in self._sent:
                return await read_rows(self.backend, self._charge_row)
            return await fetch_rows(self.backend, query, self._charge_row)
        except BackendRejected as exc:
            if exc.code != ER_BAD_FIELD or site.flat_key_query is None:
                raise
        return await fetch_rows(
            self.backend, render(site.flat_key_query, answers_at), self._charge_row
        )

    def _charge_row(self, payload_bytes: int) -> None:
        self.memory.charge(row_cost(payload_bytes), "key rows (distinct inputs)")

    async def backend_inputs(self, inputs: CallInputs) -> dict[str, list[Hashable]]:
        """Per family, the inputs the backend would be asked (NULL and empty excluded)."""
        keyed = await self._keyed(self.plan.calls, inputs)
        requests = await _family_requests(self.plan.calls, keyed)
        return {family: request.wanted for family, request in requests.items()}

    async def _keyed(
        self, wave: list[CallSite], inputs: CallInputs
    ) -> dict[int, dict[Row, Hashable | None]]:
        """Per site, each key row's backend input (None: answered NULL unasked); an
        unsupported language fails here, before any backend call. Decoding many rows
        yields to the event loop between slices."""
        slices = LoopSlices()
        keyed: dict[int, dict[Row, Hashable | None]] = {}
        for site in wave:
            rows, function = inputs.by_site[site.index], site.function
            if len(rows) <= CHECK_EVERY:  # a few: no clock to look at
                keyed[site.index] = {row: backend_input(function, row) for row in rows}
                continue
            keyed[site.index] = site_keys = {}
            async for row in slices.each(rows):
                site_keys[row] = backend_input(function, row)
        return keyed

    def _open_tables(
        self,
        wave: list[CallSite],
        keyed: Mapping[int, Mapping[Row, Hashable | None]],
        statements: PipelinedStatements,
    ) -> dict[int, LookupTable]:
        """The sites whose answers cannot go inline whatever they are: their tables are
        created now and filled as the engine's batches come back."""
        tables = {}
        for site in wave:
            if not site.constant and needs_table(keyed[site.index]):
                tables[site.index] = self._new_table(site, statements)
        return tables

    async def _infer(
        self,
        requests: Mapping[str, _FamilyRequest],
        keyed: Mapping[int, Mapping[Row, Hashable | None]],
        tables: Mapping[int, LookupTable],
        statements: PipelinedStatements,
    ) -> dict[int, dict[Row, object]]:
        """Answers per site, keyed by input row; NULL inputs are answered NULL unasked."""
        answers: dict[int, dict[Row, object]] = {}
        slices = LoopSlices()
        for family, request in requests.items():
            sites = request.sites
            fill = _filler(
                [
                    (tables[s.index], await rows_by_input(keyed[s.index]))
                    for s in sites
                    if s.index in tables
                ]
            )
            engine = self._engine(sites[0].function)
            run = self._run_engine(engine, request.wanted, request.batch, family, sites[0].function)
            try:
                outcomes = await run(fill)
            except NotCached:  # the cache does not answer them all: requests are needed
                await statements.finish()  # the connection in step for the check's queries
                await self._before_requests(requests)
                outcomes = await run(fill)
            self._answered.append((engine, self._namespace(family), request.wanted, outcomes))
            for site in sites:
                site_keys = keyed[site.index]
                if len(site_keys) <= CHECK_EVERY:
                    answers[site.index] = {
                        row: None if value is None else outcomes[value]
                        for row, value in site_keys.items()
                    }
                    continue
                answers[site.index] = {
                    row: None if value is None else outcomes[value]
                    async for row, value in slices.each(site_keys.items())
                }
        return answers

    def _namespace(self, family: str) -> Hashable:
        """The cache partition of ``family``'s answers for this statement's account."""
        return (self.requester.account, family)

    async def _check_caps(self, requests: Mapping[str, _FamilyRequest]) -> int:
        """Refuse a statement over the session's request cap before it touches anything
        (an unconfigured family fails here too); return the requests it will need. The
        cap counts requests that cost money: a backend that is not metered (the offline
        local model) is not capped."""
        total = 0
        for request in requests.values():
            function = request.sites[0].function
            total += await self._check_cap(
                self._engine(function), request.wanted, request.batch, function
            )
        return total

    def _engine(self, function: MLFunction) -> InferenceEngine:
        return engine_of(self.runtime, function)

    async def _check_cap(
        self,
        engine: InferenceEngine,
        wanted: Sequence[Hashable],
        batch: int | None,
        function: MLFunction,
    ) -> int:
        """The requests ``wanted`` needs (estimated when there is a cap, or a client
        statement whose progress is counted; else 0)."""
        cap = self._settings.max_backend_calls if engine.backend.metered else 0
        if cap <= 0 and self.activity is None:
            return 0
        missing, requests = await engine.estimate(
            wanted, namespace=self._namespace(function.family), batch_size=batch
        )
        if 0 < cap < requests:
            raise MLStatementError(
                f"{function.name}() would need about {requests} backend requests for {missing} "
                f"new inputs, over the limit of {cap} per statement "
                "(SET @mlproxy_max_backend_calls = N to change it for this session)",
                ErrorCode.USER_LIMIT_REACHED,
            )
        return requests

    def _run_engine(
        self,
        engine: InferenceEngine,
        wanted: list[Hashable],
        batch: int | None,
        family: str,
        function: MLFunction,
    ) -> Callable[[AnswersCallback | None], Awaitable[dict[Hashable, object]]]:
        """Runs the engine for one family's inputs (NotCached: it would need requests the
        statement is not ready for, see _before_requests)."""

        async def run(on_answers: AnswersCallback | None) -> dict[Hashable, object]:
            return await self._engine_answers(engine, wanted, batch, family, function, on_answers)

        return run

    async def _engine_answers(
        self,
        engine: InferenceEngine,
        wanted: list[Hashable],
        batch: int | None,
        family: str,
        function: MLFunction,
        on_answers: AnswersCallback | None,
    ) -> dict[Hashable, object]:
        ready = self._ready_for_requests
        inference = engine.infer(
            wanted,
            namespace=self._namespace(family),
            batch_size=batch,
            timeout=self._timeout(function) if ready else None,
            on_answers=on_answers,
            counters=self.requester.counters,
            check=answer_check(function, self.memory),
            budget=self._budget() if ready else None,
            allow_requests=ready,
        )
        try:
            if self.activity is None or not ready:  # (cached answers only: nothing to wait)
                results = await inference
            else:
                results = await self.activity.infer(inference)
        except BudgetExhausted as exc:  # a statement's limit: no NULLs for it
            _log_failure(function, engine.backend.name, exc)
            raise _budget_error(function, exc) from exc
        except MLBackendError as exc:
            if not self._settings.null_on_error:
                _log_failure(function, engine.backend.name, exc)
                raise MLStatementError(f"{function.name}() failed: {exc}") from exc
            log.warning(
                "%s failed, answering NULL (@mlproxy_on_error = 'null'): %s", function.name, exc
            )
            return dict.fromkeys(wanted)
        failed = next((r for r in results if isinstance(r, ItemError)), None)
        if failed is not None and not self._settings.null_on_error:
            code, sqlstate = (
                (failed.code, failed.sqlstate)
                if isinstance(failed, RefusedAnswer)
                else (ErrorCode.UNKNOWN_ERROR, sqlstate_of(ErrorCode.UNKNOWN_ERROR))
            )
            _log_failure(function, engine.backend.name, failed.message, "for an input")
            raise MLStatementError(
                f"{function.name}() failed for an input: {failed.message}", code, sqlstate
            )
        pairs = zip(wanted, results, strict=True)
        if len(wanted) <= CHECK_EVERY:
            return {key: None if isinstance(r, ItemError) else r for key, r in pairs}
        return {
            key: None if isinstance(r, ItemError) else r
            async for key, r in LoopSlices().each(pairs)
        }

    def _budget(self) -> TimeBudget | None:
        """The statement's time budget: ml_statement_timeout, or the session's own
        max_statement_time / max_execution_time when that is smaller, counted from when
        the statement began."""
        seconds = self.runtime.statement_timeout
        settings = self._settings
        return tightest(
            TimeBudget(seconds, "ml_statement_timeout", self.started) if seconds > 0 else None,
            None
            if settings.session_timeout is None
            else TimeBudget(
                settings.session_timeout, settings.session_timeout_variable, self.started
            ),
        )

    def _timeout(self, function: MLFunction) -> float | None:
        """A Bedrock alias's TIMEOUT_MS wins (its engine has it); else the session's
        aurora_ml_inference_timeout, if set; else the engine's own."""
        definition = function.definition
        if isinstance(definition, AliasFunction) and definition.timeout_ms:
            return None
        return self._settings.inference_timeout

    async def _materialize(
        self,
        wave: list[CallSite],
        inputs: CallInputs,
        answers: dict[int, dict[Row, object]],
        tables: dict[int, LookupTable],
        statements: PipelinedStatements,
    ) -> dict[int, str]:
        """What replaces each call: a literal (constant sites), the answers inline, or a
        lookup in the site's table (its remaining rows sent now)."""
        replacements = {}
        for site in wave:
            site_answers = answers[site.index]
            if site.constant:
                (row,) = inputs.by_site[site.index]
                replacements[site.index] = typed_literal(
                    site.function, site_answers[row], mariadb=self._settings.syntax.mariadb
                )
                continue
            inline = None if site.index in tables else inline_lookup(site, site_answers)
            if inline is None:
                table = tables.get(site.index)
                if table is None:  # few answers, but too many key bytes to inline
                    table = tables[site.index] = self._new_table(site, statements)
                await table.complete(site_answers)
                inline = lookup_sql(site)
            replacements[site.index] = inline
        return replacements


#: The server's own errors for its statement timeouts: (code, SQLSTATE, message).
_SERVER_TIMEOUTS = {
    "max_statement_time": (
        ErrorCode.STATEMENT_TIMEOUT,
        sqlstate_of(ErrorCode.STATEMENT_TIMEOUT),
        "Query execution was interrupted (max_statement_time exceeded)",
    ),
    "max_execution_time": (
        ErrorCode.QUERY_TIMEOUT,
        sqlstate_of(ErrorCode.QUERY_TIMEOUT),
        "Query execution was interrupted, maximum statement execution time exceeded",
    ),
}


def _budget_error(function: MLFunction, exc: BudgetExhausted) -> MLStatementError:
    """The session's own timeout answers as the server answers it; ml_statement_timeout
    as an inference failure naming the function and the setting."""
    known = _SERVER_TIMEOUTS.get(exc.budget.source)
    if known is None:
        return MLStatementError(f"{function.name}() failed: {exc}")
    code, sqlstate, message = known
    return MLStatementError(message, code, sqlstate)


def _target_of(function: MLFunction) -> str:
    """What a function calls, for the log: an alias's endpoint name or model id."""
    definition = function.definition
    return definition.target_name if isinstance(definition, AliasFunction) else function.family


def _log_failure(function: MLFunction, target: str, cause: object, where: str = "") -> None:
    """Every backend failure that reaches a client is in the log too, for the operator:
    one line with the function, what it called and why (no traceback: the cause is
    known)."""
    log.warning(
        "%s() failed%s (backend %s): %s", function.name, f" {where}" if where else "", target, cause
    )


@dataclass
class _FamilyRequest:
    """What one backend family is asked for a wave: its sites, their backend inputs in
    order (NULL and empty excluded), and the batch size the calls ask for."""

    sites: list[CallSite]
    wanted: list[Hashable]
    batch: int | None


async def _family_requests(
    sites: list[CallSite], keyed: Mapping[int, Mapping[Row, Hashable | None]]
) -> dict[str, _FamilyRequest]:
    by_family: dict[str, list[CallSite]] = {}
    for site in sites:
        by_family.setdefault(site.function.family, []).append(site)
    if all(len(keyed[site.index]) <= CHECK_EVERY for site in sites):  # no clock to look at
        return {
            family: _FamilyRequest(
                members,
                [v for s in members for v in keyed[s.index].values() if v is not None],
                min((s.batch_size for s in members if s.batch_size), default=None),
            )
            for family, members in by_family.items()
        }
    slices = LoopSlices()
    return {
        family: _FamilyRequest(
            members,
            [
                value
                for s in members
                async for value in slices.each(keyed[s.index].values())
                if value is not None
            ],
            min((s.batch_size for s in members if s.batch_size), default=None),
        )
        for family, members in by_family.items()
    }


def _filler(
    tables: list[tuple[LookupTable, dict[Hashable, list[Row]]]],
) -> AnswersCallback | None:
    """The engine's per-request callback storing answers into the sites' tables."""
    if not tables:
        return None

    def fill(inputs: Sequence[Hashable], outcomes: Sequence[object]) -> None:
        for table, rows_of in tables:
            table.add_batch(rows_of, inputs, outcomes)

    return fill
