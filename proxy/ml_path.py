"""Running a statement that calls ML functions (the plan comes from rewriter.plan).

1. Read the session's ML settings (user variables) and every call site's inputs: one
   query for all constant inputs, one key query per row-dependent site.
2. Check the inputs (languages) and the estimated backend requests against the cap,
   before any backend call.
3. Infer through the shared engines (one per backend family: sentiment and confidence
   of one text share a call).
4. Write answers as literals (constant sites) or into session temporary tables
   (row-dependent sites), and relay the rewritten statement's result to the client.

Temporary tables are dropped at the next ML statement rather than after this one, so
the client's ROW_COUNT(), warnings and FOUND_ROWS() stay those of its own statement.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field

from ml_backends.base import ItemError
from ml_backends.counters import MLCounters
from ml_backends.engine import InferenceEngine
from ml_backends.errors import MLBackendError
from ml_backends.sentiment import Sentiment, SentimentInput, normalize_language
from proxy.backend import BackendConnection
from proxy.errors import BackendRejected, ProxyError
from proxy.internal import Row, fetch_rows
from rewriter.functions import MLFunction
from rewriter.plan import CallSite, MLPlan, render
from rewriter.sql_text import bytes_literal, double_literal, input_key, string_literal

log = logging.getLogger(__name__)

TEMP_PREFIX = "_mlproxy_ml_"
# Column names no user table has: an unqualified user column in the call's inputs must
# not resolve to the lookup table's columns.
KEY_COLUMN = "_mlproxy_k"
VALUE_COLUMN = "_mlproxy_v"
#: Up to this many distinct answers (and bytes of keys) go into the statement itself;
#: beyond, into a temporary table (a long FIELD list is slower than an index lookup).
INLINE_MAX_ANSWERS = 256
INLINE_MAX_BYTES = 1 << 16
#: Bytes of VALUES per INSERT into a temporary table (well under max_allowed_packet).
INSERT_CHUNK = 1 << 20

ER_BAD_FIELD = 1054  # Unknown column: a key query outside a correlated subquery's context

# ROW_COUNT() and FOUND_ROWS() still report the client's previous statement here, the
# first statement the proxy runs for this one (see MLPlan.state_calls).
_SETTINGS_QUERY = "SELECT @mlproxy_on_error, @mlproxy_max_backend_calls, ROW_COUNT(), FOUND_ROWS()"


class MLStatementError(ProxyError):
    """An ML statement cannot run; the code says why (1582 argument count, 1210 bad
    argument, 1226 over the cap, 1105 inference failed, 1235 not supported)."""

    def __init__(self, message: str, code: int = 1105, sqlstate: str = "HY000") -> None:
        super().__init__(message)
        self.code = code
        self.sqlstate = sqlstate


@dataclass
class MLRuntime:
    """What the ML path shares across sessions."""

    functions: dict[str, MLFunction]
    engines: dict[str, InferenceEngine]
    counters: MLCounters
    max_backend_calls: int = 0

    async def close(self) -> None:
        for engine in self.engines.values():
            await engine.backend.close()


@dataclass
class _Settings:
    null_on_error: bool = False
    max_backend_calls: int = 0


@dataclass
class _Inputs:
    """Each site's distinct input rows (exact utf8mb4 bytes per input)."""

    by_site: dict[int, list[Row]] = field(default_factory=dict)


class MLStatement:
    """One ML statement on one session's backend connection."""

    def __init__(self, runtime: MLRuntime, backend: BackendConnection, plan: MLPlan) -> None:
        self.runtime = runtime
        self.backend = backend
        self.plan = plan
        self.settings = _Settings(max_backend_calls=runtime.max_backend_calls)
        self.state: dict[str, str] = {}

    async def prepare(self) -> str:
        """Do everything but the statement itself; return the rewritten statement."""
        await self._read_settings()
        replacements: dict[int, str] = {}
        for wave in self.plan.waves():  # usually one: calls reading calls come later
            inputs = await self.collect(wave, replacements)
            answers = await self._infer(inputs, wave)
            replacements.update(await self._materialize(wave, inputs, answers))
        return self.plan.rewrite(replacements, self.state)

    async def prepare_explain(self) -> str:
        """The rewritten statement for EXPLAIN: empty lookup tables, no inference."""
        replacements = {}
        for site in self.plan.calls:
            if site.constant:
                replacements[site.index] = "NULL"
            else:
                replacements[site.index] = await self._temporary_table(site, {})
        return self.plan.rewrite(replacements)

    async def _read_settings(self) -> None:
        (on_error, max_calls, row_count, found_rows), *_ = await fetch_rows(
            self.backend, _SETTINGS_QUERY
        )
        self.state = {"row_count": _integer(row_count), "found_rows": _integer(found_rows)}
        if on_error is not None:
            self.settings.null_on_error = on_error.strip().lower() == b"null"
        if max_calls is not None:
            try:
                self.settings.max_backend_calls = int(max_calls)
            except ValueError:
                raise MLStatementError(
                    "@mlproxy_max_backend_calls must be an integer", 1210
                ) from None

    async def collect(self, sites: list[CallSite], replacements: Mapping[int, str]) -> _Inputs:
        """The distinct inputs of ``sites``; key queries that read other calls get those
        calls' ``replacements`` (their lookups, once answered)."""
        inputs = _Inputs()
        constant_query = self.plan.constant_query()
        if constant_query is not None and any(site.constant for site in sites):
            (row,) = await fetch_rows(self.backend, constant_query)
            pos = 0
            for site in self.plan.constant_calls:
                inputs.by_site[site.index] = [row[pos : pos + len(site.inputs)]]
                pos += len(site.inputs)
        answers_at = {
            c.span.name_start: replacements[c.index]
            for c in self.plan.calls
            if c.index in replacements
        }
        for site in sites:
            if site.key_query is not None:
                inputs.by_site[site.index] = await self._site_inputs(site, answers_at)
        return inputs

    async def _site_inputs(self, site: CallSite, answers_at: Mapping[int, str]) -> list[Row]:
        """The site's distinct inputs; a correlated subquery's own scope does not resolve
        (1054 unknown column), and then the scopes around it are read too."""
        assert site.key_query is not None
        try:
            return await fetch_rows(self.backend, render(site.key_query, answers_at))
        except BackendRejected as exc:
            if exc.code != ER_BAD_FIELD or site.flat_key_query is None:
                raise
        return await fetch_rows(self.backend, render(site.flat_key_query, answers_at))

    def backend_inputs(self, inputs: _Inputs) -> dict[str, list[Hashable]]:
        """Per family, the inputs the backend would be asked (NULL and empty excluded)."""
        wanted: dict[str, list[Hashable]] = {}
        for site in self.plan.calls:
            values = (_sentiment_input(site.function, row) for row in inputs.by_site[site.index])
            wanted.setdefault(site.function.family, []).extend(v for v in values if v is not None)
        return wanted

    async def _infer(self, inputs: _Inputs, wave: list[CallSite]) -> dict[int, dict[Row, object]]:
        """Answers per site, keyed by input row; NULL inputs are answered NULL unasked."""
        answers: dict[int, dict[Row, object]] = {}
        for family, sites in self._sites_by_family(wave).items():
            engine = self._engine(family)
            keyed = {
                site.index: {
                    row: _sentiment_input(site.function, row) for row in inputs.by_site[site.index]
                }
                for site in sites
            }
            wanted = [
                value for rows in keyed.values() for value in rows.values() if value is not None
            ]
            batch = min((s.batch_size for s in sites if s.batch_size), default=None)
            self._check_cap(engine, wanted, batch, sites[0].function)
            outcomes = await self._run_engine(engine, wanted, batch, family, sites[0].function)
            for site in sites:
                answers[site.index] = {
                    row: None if value is None else outcomes[value]
                    for row, value in keyed[site.index].items()
                }
        return answers

    def _sites_by_family(self, sites: list[CallSite]) -> dict[str, list[CallSite]]:
        families: dict[str, list[CallSite]] = {}
        for site in sites:
            families.setdefault(site.function.family, []).append(site)
        return families

    def _engine(self, family: str) -> InferenceEngine:
        engine = self.runtime.engines.get(family)
        if engine is None:
            raise MLStatementError(
                f"no backend is configured for {family} functions", 1235, "42000"
            )
        return engine

    def _check_cap(
        self,
        engine: InferenceEngine,
        wanted: Sequence[Hashable],
        batch: int | None,
        function: MLFunction,
    ) -> None:
        cap = self.settings.max_backend_calls
        if cap <= 0:
            return
        missing, requests = engine.estimate(wanted, namespace=function.family, batch_size=batch)
        if requests > cap:
            raise MLStatementError(
                f"{function.name}() would need about {requests} backend requests for {missing} "
                f"new inputs, over the limit of {cap} per statement "
                "(SET @mlproxy_max_backend_calls = N to change it for this session)",
                1226,
                "42000",
            )

    async def _run_engine(
        self,
        engine: InferenceEngine,
        wanted: list[SentimentInput],
        batch: int | None,
        family: str,
        function: MLFunction,
    ) -> dict[Hashable, object]:
        try:
            results = await engine.infer(wanted, namespace=family, batch_size=batch)
        except MLBackendError as exc:
            if not self.settings.null_on_error:
                raise MLStatementError(f"{function.name}() failed: {exc}") from exc
            log.warning(
                "%s failed, answering NULL (@mlproxy_on_error = 'null'): %s", function.name, exc
            )
            return dict.fromkeys(wanted)
        failed = [r for r in results if isinstance(r, ItemError)]
        if failed and not self.settings.null_on_error:
            raise MLStatementError(f"{function.name}() failed for an input: {failed[0].message}")
        return {
            key: None if isinstance(r, ItemError) else r
            for key, r in zip(wanted, results, strict=True)
        }

    async def _materialize(
        self, wave: list[CallSite], inputs: _Inputs, answers: dict[int, dict[Row, object]]
    ) -> dict[int, str]:
        replacements = {}
        for site in wave:
            site_answers = answers[site.index]
            if site.constant:
                (row,) = inputs.by_site[site.index]
                replacements[site.index] = _typed_literal(site.function, site_answers[row])
            else:
                inline = inline_lookup(site, site_answers)
                if inline is None:
                    inline = await self._temporary_table(site, site_answers)
                replacements[site.index] = inline
        return replacements

    async def _temporary_table(self, site: CallSite, site_answers: dict[Row, object]) -> str:
        table = f"{TEMP_PREFIX}{site.index}"
        keys = [f"{KEY_COLUMN}{i}" for i in range(len(site.inputs))]
        columns = ", ".join(f"{k} LONGBLOB" for k in keys)
        await self.backend.query(f"DROP TEMPORARY TABLE IF EXISTS {table}")
        await self.backend.query(
            f"CREATE TEMPORARY TABLE {table} "
            f"({columns}, {VALUE_COLUMN} {site.function.column_type}, KEY ({KEY_COLUMN}0(255)))",
        )
        values = [
            "("
            + ", ".join([*(bytes_literal(b or b"") for b in row), _literal(site.function, answer)])
            + ")"
            for row, answer in site_answers.items()
            if answer is not None
        ]
        for chunk in _chunks(values, INSERT_CHUNK):
            await self.backend.query(f"INSERT INTO {table} VALUES " + ", ".join(chunk))
        return lookup_sql(site)


def inline_lookup(site: CallSite, site_answers: dict[Row, object]) -> str | None:
    """The answers written into the statement itself, when there are few: no temporary
    table (so READ ONLY transactions and users without CREATE TEMPORARY TABLES work),
    and the inputs are evaluated where the call stood (an aggregate input too). FIELD
    compares the binary keys bytewise; ELT picks the answer (NULL when none matches);
    the CAST gives the function's result type. None when there are too many answers."""
    answered = [
        (row, answer)
        for row, answer in site_answers.items()
        if answer is not None and all(part is not None for part in row)
    ]
    keys = [bytes_literal(_combined_key(row)) for row, _ in answered]
    if len(keys) > INLINE_MAX_ANSWERS or sum(len(k) for k in keys) > INLINE_MAX_BYTES:
        return None
    cast = site.function.cast_type
    if not answered:
        return f"CAST(NULL AS {cast})"
    values = ", ".join(_elt_literal(site.function, answer) for _, answer in answered)
    key = _combined_key_sql(site.inputs)
    return f"CAST(ELT(FIELD({key}, {', '.join(keys)}), {values}) AS {cast})"


def _combined_key(row: Row) -> bytes:
    """All inputs in one unambiguous byte string: each but the last length-prefixed."""
    parts = [part or b"" for part in row]
    return b"".join(f"{len(p)}:".encode() + p for p in parts[:-1]) + parts[-1]


def _combined_key_sql(inputs: list[str]) -> str:
    """The SQL computing ``_combined_key`` of the inputs, row by row."""
    keys = [input_key(text) for text in inputs]
    if len(keys) == 1:
        return keys[0]
    parts = [f"LENGTH({k}), ':', {k}" for k in keys[:-1]] + [keys[-1]]
    return f"CONCAT({', '.join(parts)})"


def _elt_literal(function: MLFunction, answer: object) -> str:
    """ELT returns text: a DOUBLE goes as its exact decimal text, cast back after."""
    if function.sql_type == "DOUBLE":
        value = answer[1] if isinstance(answer, Sentiment | tuple | list) else answer
        return string_literal(repr(float(value)))  # type: ignore[arg-type]
    return _literal(function, answer)


def lookup_sql(site: CallSite) -> str:
    """What replaces a row-dependent call: a lookup of its answer by its inputs' keys."""
    condition = " AND ".join(
        f"_mlr.{KEY_COLUMN}{i} = {input_key(text)}" for i, text in enumerate(site.inputs)
    )
    table = f"{TEMP_PREFIX}{site.index}"
    return f"(SELECT _mlr.{VALUE_COLUMN} FROM {table} AS _mlr WHERE {condition})"


def _sentiment_input(function: MLFunction, row: Row) -> SentimentInput | None:
    """The backend input for one key row; None for NULL or empty text (answered NULL)."""
    text, language = row[0], row[1]
    if text is None or language is None or not text:
        return None
    code = normalize_language(language.decode("utf-8", "replace"))
    if code is None:
        raise MLStatementError(
            f"Incorrect arguments to {function.name}: unsupported language "
            f"'{language.decode('utf-8', 'replace')}'",
            1210,
        )
    return SentimentInput(text.decode("utf-8", "replace"), code)


def _literal(function: MLFunction, answer: object) -> str:
    if answer is None:
        return "NULL"
    if isinstance(answer, Sentiment | tuple | list):
        value = answer[0] if function.output == "label" else answer[1]
    else:
        value = answer
    if function.sql_type == "DOUBLE":
        return double_literal(float(value))
    return string_literal(str(value))


def _integer(value: bytes | None) -> str:
    """A session counter as an integer literal (digits and a sign only)."""
    text = (value or b"0").decode("ascii")
    return str(int(text))


def _typed_literal(function: MLFunction, answer: object) -> str:
    """A constant answer with the function's result type and nullability, so that
    CREATE TABLE ... AS SELECT makes the same column as a real function call would."""
    return f"CAST(NULLIF({_literal(function, answer)}, NULL) AS {function.cast_type})"


def _chunks(values: list[str], limit: int) -> list[list[str]]:
    chunks: list[list[str]] = []
    size = math.inf
    for value in values:
        if size + len(value) > limit:
            chunks.append([])
            size = 0
        chunks[-1].append(value)
        size += len(value) + 2
    return chunks
