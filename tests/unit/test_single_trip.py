"""A point select in one round trip: which statements may take it (rewriter.single_trip),
and the result the proxy writes from its rows (proxy.ml.fastpath.single_trip).

The result is checked against one built here independently: the database's result for
the statement with the answers written in (the same column definitions less the key
columns', each row's answer in place of its NULL), for hostile key rows (NULLs, empty
texts, bytes that are not UTF-8, unknown languages), both ends of the rows (an EOF, an
OK with CLIENT_DEPRECATE_EOF), and every cut of the bytes. Anything the proxy cannot
write as the database would (a warning, an error, an answer not cached, a label the CAST
would change, a character set that does not write ASCII as ASCII) gives None: the
statement is then served the usual way; the statement's own error goes to the client.
tests/oracle/test_cached_plans_oracle.py runs it against a real database.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ml_backends.cache import ResultCache
from ml_backends.sentiment import Sentiment
from proxy.config import load_config
from proxy.ml.answers import backend_input
from proxy.ml.fastpath.planning import Pointed
from proxy.ml.fastpath.point import PointStatement
from proxy.ml.fastpath.quick import MAX_READS, PARTIAL, QUICK_BYTES
from proxy.ml.fastpath.single_trip import Served
from proxy.ml.path import MLRuntime
from proxy.ml.runtime import build_runtime
from proxy.upstream.internal import Row, encode_text_row
from proxy.wire.packets import frame, lenenc_int
from proxy.wire.result_shape import ResultShape
from rewriter.charsets import client_charset
from rewriter.errors import PlanError
from rewriter.functions import BUILTINS
from rewriter.lexer import SqlSyntax, read_slots
from rewriter.plan import plan_statement
from rewriter.shaped.plan_cache import PlanCache, Template, template_of
from rewriter.shaped.point_splice import SingleTripSplice
from rewriter.shaped.shapes import shape_of
from rewriter.single_trip import single_trip
from tests.unit.test_point_splice import ACCOUNT, TEXTS, FakeBackend, _planner

S = "aws_comprehend_detect_sentiment"
C = "aws_comprehend_detect_sentiment_confidence"
SYNTAX = SqlSyntax()
LABELS = ("POSITIVE", "NEGATIVE", "NEUTRAL", "MIXED")

# --- which statements ------------------------------------------------------------------

#: Statements that may take a single trip, and per call the select items after its own.
SINGLE = [
    (f"SELECT id, {S}(txt, 'en') FROM t WHERE id = 7", (0,)),
    (f"SELECT *, {S}(txt, 'en') AS s, id + 1 FROM t WHERE id = 7 LIMIT 1", (1,)),
    (f"SELECT {S}(txt, 'en') s, {S}(t.txt, lang) FROM t JOIN u ON t.id = u.id", (1, 0)),
    (f"SELECT id, {S}(txt, 'en') FROM t WHERE id IN (1, 2) AND NOT txt IS NULL", (0,)),
    (f"SELECT {S}(txt, 'en'), x FROM d.t WHERE id BETWEEN 1 AND 3 LIMIT 2 OFFSET 1", (1,)),
]
#: Statements that may not: a call inside an expression or not in the select list, a
#: function (a stored one may write), a user variable's assignment, a subquery, a CTE,
#: DISTINCT, GROUP BY, ORDER BY, a locking read, SQL_CALC_FOUND_ROWS, a star after a
#: call, a UNION, an INTO, a call of the confidence (a DOUBLE), a qualified call, no FROM.
NOT_SINGLE = [
    f"SELECT id, CONCAT({S}(txt, 'en'), '') FROM t WHERE id = 7",
    f"SELECT id FROM t WHERE {S}(txt, 'en') = 'POSITIVE'",
    f"SELECT id, {S}(txt, 'en'), my_function(id) FROM t WHERE id = 7",
    f"SELECT id, {S}(LOWER(txt), 'en') FROM t WHERE id = 7",
    f"SELECT @n := @n + 1, {S}(txt, 'en') FROM t WHERE id = 7",
    f"SELECT id, {S}(txt, 'en') FROM t WHERE id = (SELECT MAX(id) FROM t)",
    f"WITH c AS (SELECT * FROM t) SELECT id, {S}(txt, 'en') FROM c",
    f"SELECT DISTINCT id, {S}(txt, 'en') FROM t",
    f"SELECT id, {S}(txt, 'en') FROM t GROUP BY id",
    f"SELECT id, {S}(txt, 'en') AS s FROM t ORDER BY s",
    f"SELECT id, {S}(txt, 'en') FROM t WHERE id = 7 FOR UPDATE",
    f"SELECT SQL_CALC_FOUND_ROWS id, {S}(txt, 'en') FROM t LIMIT 1",
    f"SELECT {S}(txt, 'en'), * FROM t WHERE id = 7",
    f"SELECT {S}(txt, 'en'), t.* FROM t WHERE id = 7",
    f"SELECT id, {S}(txt, 'en') FROM t UNION SELECT 1, 'x'",
    f"SELECT id, {S}(txt, 'en') INTO @a, @b FROM t WHERE id = 7",
    f"SELECT id, {C}(txt, 'en') FROM t WHERE id = 7",
    f"SELECT id, {S}(txt, 'en'), RAND() FROM t WHERE id = 7",
    f"SELECT id, mysql.{S}(txt, 'en') FROM t WHERE id = 7",
    f"(SELECT id, {S}(txt, 'en') FROM t WHERE id = 7)",
]


@pytest.mark.parametrize(("sql", "after"), SINGLE)
def test_a_statement_whose_calls_are_whole_items_takes_one_trip(
    sql: str, after: tuple[int, ...]
) -> None:
    plan = plan_statement(sql, BUILTINS, SYNTAX)
    assert plan is not None
    trip = single_trip(plan, BUILTINS, SYNTAX)
    assert trip is not None
    assert trip.items_after == after
    assert sql[trip.insert_at :].lstrip().upper().startswith("FROM")
    assert not sql[: trip.insert_at][-1].isspace()


@pytest.mark.parametrize("sql", NOT_SINGLE)
def test_a_statement_that_could_answer_otherwise_or_do_more_takes_two(sql: str) -> None:
    assert spliced_trip(sql) is None


@pytest.mark.parametrize(("sql", "after"), SINGLE)
def test_its_point_splice_writes_it_on_the_bytes(sql: str, after: tuple[int, ...]) -> None:
    single = spliced_trip(sql)
    assert single is not None and single.items_after == after


def spliced_trip(sql: str) -> SingleTripSplice | None:
    """The single trip of ``sql``'s template's point splice, if it has one."""
    shape = shape_of(read_slots(sql, SYNTAX))
    try:
        entry = None if shape is None else template_of(shape, BUILTINS, SYNTAX, PlanCache(), ())
    except PlanError:
        return None
    if not isinstance(entry, Template) or entry.point is None:
        return None
    return entry.point.single


# --- the result written -------------------------------------------------------------------

#: Point shapes with single trips: one call; two calls, one aliased, a column after.
FORMS = [
    f"SELECT id, {S}(txt, 'en') FROM t WHERE id = {{}}",
    f"SELECT {S}(txt, lang) AS s, {S}(txt, 'fr'), id FROM t WHERE id > {{}}",
]
#: A column definition (its name varied), its 12 fixed bytes starting with ``charset``.
_DEFINITION = b"\x03def\x00\x00\x00\x01%b\x00\x0c%b" + bytes(10)


def definition(name: bytes, charset: int = 45) -> bytes:
    return _DEFINITION % (name, charset.to_bytes(2, "little"))


@pytest.fixture(scope="module")
def runtime() -> MLRuntime:
    return build_runtime(load_config({}, env={}))


def point_of(runtime: MLRuntime, form: str, shape: ResultShape | None = None) -> PointStatement:
    charset = client_charset("utf8mb4")
    planner = _planner(runtime, charset, True)
    assert planner.read_now(form.format(1).encode(), ACCOUNT) is not None
    read = planner.matched(form.format(2).encode())
    assert isinstance(read, Pointed)
    backend = FakeBackend(charset)
    if shape is not None:
        backend.shape = shape
    point = PointStatement(read, runtime, backend, ACCOUNT)  # type: ignore[arg-type]
    assert point.single is not None
    return point


def label_of(key: Row) -> str:
    return LABELS[len(key[0] or b"") % 4]


def cache(runtime: MLRuntime, keys: Sequence[Row], missing: Row | None = None) -> None:
    """Each key's answer in the cache (label_of), but ``missing``'s."""
    function = BUILTINS[S]
    held = answers_cache(runtime)
    held.clear()
    for key in keys:
        asked = backend_input(function, key)
        if asked is not None and key != missing:
            held.put(((ACCOUNT, function.family), asked), Sentiment(label_of(key), 0.5))


def answers_cache(runtime: MLRuntime) -> ResultCache:
    """The built-ins' cache (the process's own: no shared cache configured)."""
    engine = runtime.engine_for(BUILTINS[S])
    assert engine is not None and isinstance(engine.cache, ResultCache)
    return engine.cache


class Result:
    """A text result set: its definitions, rows and end, framed as the database sends
    them (``shape``: the connection's)."""

    def __init__(self, shape: ResultShape, names: Sequence[bytes], rows: Sequence[Row]) -> None:
        self.shape, self.names, self.rows = shape, list(names), list(rows)
        self.charsets = {name: 45 for name in names}
        self.warnings = 0
        self.status = b"\x22\x00"

    def packets(self) -> list[bytes]:
        end = b"\xfe" + self.warnings.to_bytes(2, "little") + self.status
        if self.shape.deprecate_eof:
            end = b"\xfe\x00\x00" + self.status + self.warnings.to_bytes(2, "little")
        out = [lenenc_int(len(self.names))]
        out += [definition(name, self.charsets[name]) for name in self.names]
        if not self.shape.deprecate_eof:
            out.append(b"\xfe\x00\x00\x22\x00")
        return out + [encode_text_row(row) for row in self.rows] + [end]

    def framed(self) -> bytes:
        return b"".join(frame(packet, n) for n, packet in enumerate(self.packets(), start=1))


def single_rows(keys: Sequence[Row], form: int) -> tuple[list[bytes], list[Row], list[Row]]:
    """The single trip's column names and rows for ``keys`` (one per row: text,
    language), and the rows the database gives with the answers written in."""
    sent: list[Row] = []
    expected: list[Row] = []
    for number, key in enumerate(keys):
        ident = str(number).encode()
        text, language = key
        if form == 0:
            sent.append((ident, None, text, language))
            expected.append((ident, answer(key)))
        else:
            sent.append((None, None, ident, text, language, text, b"fr"))
            expected.append((answer(key), answer((text, b"fr")), ident))
    names = (
        [b"id", b"s", b"k0", b"k1"]
        if form == 0
        else [b"s", b"t", b"id", b"k0", b"k1", b"k2", b"k3"]
    )
    return names, sent, expected


def answer(key: Row) -> bytes | None:
    """What the database sends for the CAST of a key's answer."""
    text, language = key
    if not text or language is None:
        return None
    return label_of(key).encode()


KEYS = st.lists(st.tuples(TEXTS, st.sampled_from([b"en", b"EN ", b"fr", None])), max_size=4)


@pytest.mark.parametrize("deprecate_eof", [False, True])
@pytest.mark.parametrize("form", [0, 1])
@given(keys=KEYS, data=st.data())
@settings(max_examples=60, deadline=None)
def test_the_result_is_the_databases_with_the_answers_written_in(
    runtime: MLRuntime, form: int, deprecate_eof: bool, keys: list[Row], data: st.DataObject
) -> None:
    shape = ResultShape(deprecate_eof=deprecate_eof)
    point = point_of(runtime, FORMS[form], shape)
    names, sent, expected = single_rows(keys, form)
    every_key = [(t, lang) for t, lang in keys] + ([(t, b"fr") for t, _ in keys] if form else [])
    cache(runtime, every_key)
    reply = Result(shape, names, sent).framed()
    cut = data.draw(st.integers(0, len(reply) - 1))
    assert point.served(reply[:cut]) is PARTIAL
    point.reads = 0
    written = point.served(reply)
    assert isinstance(written, Served)
    want = Result(shape, names[: len(names) - (2 if form == 0 else 4)], expected)
    assert written.response == want.framed()
    assert written.status == 0x22
    per_site = [dict.fromkeys(keys)]
    if form:
        per_site.append(dict.fromkeys((t, b"fr") for t, _ in keys))
    asked = [k for site in per_site for k in site if backend_input(BUILTINS[S], k) is not None]
    assert sum(len(a.inputs) for a in written.answers) == len(asked)  # (as key queries count)


def test_an_answer_not_cached_leaves_the_statement_to_the_usual_path(runtime: MLRuntime) -> None:
    point = point_of(runtime, FORMS[0])
    keys = [(b"good", b"en"), (b"bad", b"en")]
    names, sent, _ = single_rows(keys, 0)
    cache(runtime, keys, missing=keys[1])
    assert point.served(Result(ResultShape(), names, sent).framed()) is None


@pytest.mark.parametrize("deprecate_eof", [False, True])
def test_a_warning_leaves_the_statement_to_the_usual_path(
    runtime: MLRuntime, deprecate_eof: bool
) -> None:
    """SHOW WARNINGS must then show what the usual path's statement gives."""
    shape = ResultShape(deprecate_eof=deprecate_eof)
    keys = [(b"good", b"en")]
    names, sent, _ = single_rows(keys, 0)
    cache(runtime, keys)
    result = Result(shape, names, sent)
    assert isinstance(point_of(runtime, FORMS[0], shape).served(result.framed()), Served)
    result.warnings = 1
    assert point_of(runtime, FORMS[0], shape).served(result.framed()) is None


@pytest.mark.parametrize(
    ("charset", "served"),
    [(45, True), (33, True), (8, True), (63, True), (54, False), (35, False), (60, False)],
)
def test_only_a_character_set_that_writes_ascii_as_ascii_is_written(
    runtime: MLRuntime, charset: int, served: bool
) -> None:
    """utf16 (54), ucs2 (35) and utf32 (60) results would write a label otherwise."""
    keys = [(b"good", b"en")]
    names, sent, _ = single_rows(keys, 0)
    cache(runtime, keys)
    result = Result(ResultShape(), names, sent)
    result.charsets[b"s"] = charset
    written = point_of(runtime, FORMS[0]).served(result.framed())
    assert isinstance(written, Served) is served


@pytest.mark.parametrize("label", ["POSITIVELY", "ÜBER", "A@B", "a'b", 7, None])
def test_a_label_the_cast_would_change_is_not_written(runtime: MLRuntime, label: object) -> None:
    """Longer than the VARCHAR (the CAST cuts it, with a warning), or not plain ASCII."""
    function = BUILTINS[S]
    keys = [(b"good", b"en")]
    names, sent, _ = single_rows(keys, 0)
    cache(runtime, keys)
    asked = backend_input(function, keys[0])
    answered = Sentiment(label, 0.5)  # type: ignore[arg-type]
    answers_cache(runtime).put(((ACCOUNT, function.family), asked), answered)
    assert point_of(runtime, FORMS[0]).served(Result(ResultShape(), names, sent).framed()) is None


def test_the_statements_error_goes_to_the_client_as_it_is(runtime: MLRuntime) -> None:
    """In place of the result or after rows (KILL QUERY, a timeout, a deadlock): the
    database's ERR, renumbered; running the statement again would undo what it says."""
    keys = [(b"good", b"en")]
    names, sent, _ = single_rows(keys, 0)
    cache(runtime, keys)
    error = b"\xff\x29\x05#40001Deadlock found"
    packets = [frame(p, n) for n, p in enumerate(Result(ResultShape(), names, sent).packets(), 1)]
    for data in (frame(error, 1), b"".join(packets[:-1]) + frame(error, len(packets))):
        written = point_of(runtime, FORMS[0]).served(data)
        assert written == Served(frame(error, 1), 0)


def test_anything_but_one_whole_result_is_left_to_the_usual_path(runtime: MLRuntime) -> None:
    """An OK, bytes after the result or its error, more results to come, more than
    QUICK_BYTES, and results still not all in at the MAX_READS-th offer."""
    keys = [(b"good", b"en")]
    names, sent, _ = single_rows(keys, 0)
    cache(runtime, keys)
    result = Result(ResultShape(), names, sent)
    ok = b"\x00\x00\x00\x02\x00\x00\x00"
    cases = [
        frame(ok, 1),
        result.framed() + frame(ok, len(result.packets()) + 1),
        frame(b"\xff\x15\x04#42000no", 1) + frame(ok, 2),
    ]
    for data in cases:
        assert point_of(runtime, FORMS[0]).served(data) is None, data
    more = Result(ResultShape(), names, sent)
    more.status = b"\x2a\x00"  # SERVER_MORE_RESULTS_EXISTS: not one SELECT's result
    assert point_of(runtime, FORMS[0]).served(more.framed()) is None
    big = Result(ResultShape(), names, [(b"1", None, b"x" * QUICK_BYTES, b"en")]).framed()
    assert point_of(runtime, FORMS[0]).served(big) is None
    point = point_of(runtime, FORMS[0])
    offers = [point.served(result.framed()[: n + 1]) for n in range(MAX_READS)]
    assert offers[:-1] == [PARTIAL] * (MAX_READS - 1) and offers[-1] is None
