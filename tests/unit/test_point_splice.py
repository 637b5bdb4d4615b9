"""A point statement on its bytes (rewriter.shaped.point_splice, proxy.ml.fastpath.point)
against the quick path on a plan of its own.

The oracle is what a statement goes through without a splice: its decoded text planned by
sqlglot from scratch (rewriter.plan.plan_statement, no template), served by
proxy.ml.fastpath.quick. For statements of several shapes with hostile literals (quotes of
every kind, backslashes, control characters, backticks, characters beyond the BMP, bytes
that are not UTF-8, long texts), in a utf8mb4 session and in single-byte ones, a point
statement must send the same key queries and, for the same rows (hostile too: NULLs,
repeats, other languages), write the same rewrite and count the same answers; when the
quick path would not answer (an answer not cached), neither does it. A shape it is not
made for has no point splice; a session it cannot serve, no pattern.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ml_backends.cache import ResultCache
from ml_backends.counters import MLCounters
from ml_backends.sentiment import Sentiment
from proxy.config import load_config
from proxy.ml.answers import backend_input
from proxy.ml.fastpath.known_settings import KnownSettings
from proxy.ml.fastpath.planning import Pointed, SessionPlanner
from proxy.ml.fastpath.point import PointStatement
from proxy.ml.fastpath.quick import MAX_READS, PARTIAL, QuickStatement
from proxy.ml.path import MLRuntime, MLStatement, Requester
from proxy.ml.registry import FunctionRegistry
from proxy.ml.runtime import build_runtime
from proxy.ml.settings import StatementSettings
from proxy.upstream.internal import Row, encode_text_row
from proxy.wire.packets import frame
from proxy.wire.result_shape import ResultShape
from rewriter.charsets import ClientCharset, client_charset
from rewriter.errors import PlanError
from rewriter.functions import BUILTINS
from rewriter.lexer import SqlSyntax, read_slots
from rewriter.plan import CallSite, plan_statement
from rewriter.shaped.plan_cache import PlanCache, Template, template_of
from rewriter.shaped.shapes import shape_of
from tests.unit.test_constant_splice import STRINGS, statement

S = "aws_comprehend_detect_sentiment"
C = "aws_comprehend_detect_sentiment_confidence"
ACCOUNT = b"app@%"
SYNTAX = SqlSyntax()
#: Client character sets, and whether the session is a utf8mb4 one: the splice serves the
#: first three (its texts ASCII for the single-byte ones), not the last two.
SESSIONS = [
    ("utf8mb4", True),
    ("latin1", False),
    ("koi8r", False),
    ("utf8mb3", False),
    ("ujis", False),
]
#: Point shapes ({s}: a string's bytes between single quotes, {n}: an integer's digits):
#: one call, two calls with other inputs, an input holding a slot, an alias made of slots,
#: a max_batch_size, a column named in UTF-8 (no single-byte session: not ASCII), two
#: calls that share their key query.
FORMS = [
    f"SELECT id, {S}(txt, 'en') FROM t WHERE id = {{n}}",
    f"SELECT {S}(txt, '{{s}}'), {C}(txt, 'en') AS c FROM t WHERE name = '{{s}}' LIMIT {{n}}",
    f"SELECT id, {S}(CONCAT(txt, '{{s}}'), lang) AS s FROM t WHERE id IN ({{n}}, {{n}})",
    f"SELECT {S}(txt, 'en', {{n}}) FROM t WHERE id > {{n}}",
    f"SELECT {S}(tëxt, 'en'), '{{s}}' FROM t WHERE id = {{n}}",
    f"SELECT {S}(txt, 'en'), {C}(txt, 'en') AS c, '{{s}}' FROM t WHERE id = {{n}}",
    f"SELECT id,\n\t{S}(txt, '{{s}}') ,\x0b{C}(txt, 'en')\r\nFROM t WHERE id = {{n}}",
]
#: Shapes with a matcher but no point splice: a constant call (the constant splice's),
#: a call reading another's answer (two waves), ROW_COUNT().
NOT_POINT = [
    f"SELECT {S}('a', 'en') FROM t WHERE id = 1",
    f"SELECT {S}(x, 'en') FROM (SELECT {S}(txt, 'en') AS x FROM t WHERE id = 1) AS d",
    f"SELECT {S}(txt, 'en'), ROW_COUNT() FROM t WHERE id = 1",
]
#: A key row's texts and languages (the rows the backend would answer).
TEXTS = st.one_of(st.none(), STRINGS, st.sampled_from([b"I love it"]))
LANGUAGES = st.sampled_from([b"en", b"es", None])


class FakeBackend:
    """What the callbacks' paths read of a backend connection."""

    def __init__(self, charset: ClientCharset) -> None:
        self.charset = charset
        self.shape = ResultShape()

    def encode(self, sql: str) -> bytes:
        return self.charset.encode(sql)

    def query_payload(self, sql: bytes) -> bytes:
        return b"\x03" + sql


@pytest.fixture(scope="module")
def runtime() -> MLRuntime:
    return build_runtime(load_config({}, env={}))


def _planner(runtime: MLRuntime, charset: ClientCharset, utf8: bool) -> SessionPlanner:
    known = KnownSettings()
    known.keep(StatementSettings(charset=charset, utf8_session=utf8, syntax=SYNTAX))
    return SessionPlanner(runtime, FunctionRegistry(), known)


def _result(rows: Sequence[Row], columns: int) -> bytes:
    """A text result set of ``rows`` (``columns`` columns), framed."""
    eof = b"\xfe\x00\x00\x02\x00"
    definition = b"\x03def" + b"\x00" * 3 + b"\x01a\x01a\x0c" + bytes(12)
    packets = [bytes([columns]), *[definition] * columns, eof]
    packets += [encode_text_row(row) for row in rows] + [eof]
    return b"".join(frame(packet, n) for n, packet in enumerate(packets))


def _oracle(
    runtime: MLRuntime, backend: FakeBackend, charset: ClientCharset, utf8: bool, sql: bytes
) -> QuickStatement:
    """The quick path on a plan made from the statement's text (no template)."""
    plan = plan_statement(charset.decode(sql), BUILTINS, SYNTAX)
    assert plan is not None
    settings = StatementSettings(charset=charset, utf8_session=utf8, syntax=SYNTAX)
    requester = Requester(ACCOUNT, MLCounters())
    statement = MLStatement(runtime, backend, plan, settings, requester)  # type: ignore[arg-type]
    quick = QuickStatement.of(statement)
    assert quick is not None
    return quick


def _cache(runtime: MLRuntime, site: CallSite, rows: Sequence[Row], every: bool) -> None:
    """Answers for a site's ``rows`` in its cache (all of them, or all but the last)."""
    function = site.function
    engine = runtime.engine_for(function)
    assert engine is not None
    cache = engine.cache
    assert isinstance(cache, ResultCache)  # (the process's own: no shared cache configured)
    keys = [key for key in (backend_input(function, row) for row in rows) if key is not None]
    for n, key in enumerate(keys):
        if every or n < len(keys) - 1:
            cache.put(((ACCOUNT, function.family), key), Sentiment("MIXED", 0.25))


@pytest.mark.parametrize("session", SESSIONS, ids=[name for name, _ in SESSIONS])
@pytest.mark.parametrize("form", FORMS)
@given(data=st.data())
@settings(max_examples=60, deadline=None)
def test_a_point_statement_gives_what_the_quick_path_gives(
    runtime: MLRuntime, form: str, session: tuple[str, bool], data: st.DataObject
) -> None:
    name, utf8 = session
    charset = client_charset(name)
    planner = _planner(runtime, charset, utf8)
    first = planner.read_now(form.replace("{s}", "a").replace("{n}", "1").encode(), ACCOUNT)
    assert first is not None
    sql = data.draw(statement(form))
    read = planner.matched(sql)
    if not isinstance(read, Pointed):
        serves = utf8 or (charset.single_byte and form.isascii())
        assert not serves or _refused(planner, sql), sql
        return
    backend = FakeBackend(charset)
    two_trips = read._replace(single=None)  # not its single trip: test_single_trip.py
    point = PointStatement(two_trips, runtime, backend, ACCOUNT)  # type: ignore[arg-type]
    quick = _oracle(runtime, backend, charset, utf8, sql)
    assert point.queries() == quick.queries()
    assert point.query_of == quick.query_of  # (calls sharing a key query: sent once)
    rows_per_query = [
        data.draw(st.lists(st.tuples(TEXTS, LANGUAGES), min_size=0, max_size=4))
        for _ in quick.texts
    ]
    every = data.draw(st.booleans())
    runtime.engines["comprehend.sentiment"].cache.clear()
    for site, at in zip(quick.queried, quick.query_of, strict=True):
        _cache(runtime, site, rows_per_query[at], every)
    reply = b"".join(_result(rows, 2) for rows in rows_per_query)  # (each call: 2 inputs)
    cut = data.draw(st.integers(0, len(reply) - 1))  # the results not all in yet
    assert point.answer(reply[:cut]) is PARTIAL
    assert quick.answer(reply[:cut]) is PARTIAL
    expected, written = _answered(quick, reply), point.answer(reply)
    if expected is None:
        assert written is None
        return
    assert written is not None and written is not PARTIAL
    assert written.command == expected[0]
    assert written.calls == expected[1]
    assert _held(written.answers) == expected[2]


def _answered(quick: QuickStatement, reply: bytes) -> tuple[bytes, int, Any] | None:
    answer = quick.answer(reply)
    if answer is None:
        return None
    assert answer is not PARTIAL
    quick.count(answer)
    return answer.command, answer.calls, _held(quick.statement.answers_used())


def _held(answers: Sequence[Any]) -> list[tuple[Any, ...]]:
    return [(a.namespace, a.inputs, a.values) for a in answers]


def _refused(planner: SessionPlanner, sql: bytes) -> bool:
    """Whether the text path refuses ``sql`` too: its shape's matcher, or the planner (a
    max_batch_size that is not a positive integer). In a session it serves, a pattern
    must take what the text path takes."""
    recent = planner._recent[0]
    settings = planner.known.kept()
    assert settings is not None and settings.charset is not None
    text = settings.charset.decode(sql)
    if recent.matcher.shape(text) is None:
        return True
    try:
        plan_statement(text, BUILTINS, SYNTAX)
    except PlanError:
        return True
    return False


@pytest.mark.parametrize("sql", NOT_POINT)
def test_a_shape_it_is_not_made_for_has_no_point_splice(sql: str) -> None:
    shape = shape_of(read_slots(sql, SYNTAX))
    assert shape is not None
    entry = template_of(shape, BUILTINS, SYNTAX, PlanCache(), ())
    assert isinstance(entry, Template) and entry.matcher is not None
    assert entry.point is None


def test_a_session_it_cannot_serve_gets_no_pattern() -> None:
    sql = f"SELECT id, {S}(tëxt, 'en') FROM t WHERE id = 1"
    shape = shape_of(read_slots(sql, SYNTAX))
    assert shape is not None
    entry = template_of(shape, BUILTINS, SYNTAX, PlanCache(), ())
    assert isinstance(entry, Template) and entry.point is not None
    assert entry.point.pattern(client_charset("utf8mb4"), True) is not None
    assert entry.point.pattern(client_charset("latin1"), False) is None  # (not ASCII)
    assert entry.point.pattern(client_charset("ujis"), False) is None


def test_calls_with_the_same_inputs_in_one_scope_send_one_key_query(runtime: MLRuntime) -> None:
    form = f"SELECT {S}(txt, 'en'), {C}(txt, 'en') AS c FROM t WHERE id = {{}}"
    charset = client_charset("utf8mb4")
    planner = _planner(runtime, charset, True)
    assert planner.read_now(form.format(1).encode(), ACCOUNT) is not None
    read = planner.matched(form.format(2).encode())
    assert isinstance(read, Pointed)
    point = PointStatement(read, runtime, FakeBackend(charset), ACCOUNT)  # type: ignore[arg-type]
    assert len(point.queried) == 2 and len(point.texts) == 1
    assert point.query_of == [0, 0]


def test_results_trickling_in_go_to_the_task_after_max_reads(runtime: MLRuntime) -> None:
    """Each offer parses what came so far: the callback gathers over MAX_READS reads at
    most, then leaves the statement to the task (None), on both paths."""
    form = f"SELECT id, {S}(txt, 'en') FROM t WHERE id = {{}}"
    charset = client_charset("utf8mb4")
    planner = _planner(runtime, charset, True)
    assert planner.read_now(form.format(1).encode(), ACCOUNT) is not None
    sql = form.format(2).encode()
    read = planner.matched(sql)
    assert isinstance(read, Pointed)
    backend = FakeBackend(charset)
    two_trips = read._replace(single=None)  # (test_single_trip.py: the single trip's)
    point = PointStatement(two_trips, runtime, backend, ACCOUNT)  # type: ignore[arg-type]
    quick = _oracle(runtime, backend, charset, True, sql)
    reply = _result([(b"I love it", b"en")], 2)
    for form_ in (point, quick):
        offers = [form_.answer(reply[: n + 1]) for n in range(MAX_READS)]
        assert offers[:-1] == [PARTIAL] * (MAX_READS - 1) and offers[-1] is None
