"""rewriter.shaped.shapes and rewriter.shaped.plan_cache: a plan made from one statement's
shape is the plan of every statement of that shape.

The oracle is the planner itself: for generated statements (their literals, comments and
numbers drawn, in every sql_mode the lexer knows), the plan the cache gives, made from
another statement of the same shape, must equal plan_statement's plan of the statement
itself, field by field (the key queries as text).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rewriter.errors import PlanError
from rewriter.functions import BUILTINS
from rewriter.lexer import SlotKind, SqlSyntax, read_slots, read_statement
from rewriter.plan import MLPlan, plan_statement
from rewriter.shaped.plan_cache import UNSHARED, PlanCache, Template, make_template, plan_shaped
from rewriter.shaped.shapes import Shape, shape_of

S = "aws_comprehend_detect_sentiment"
C = "aws_comprehend_detect_sentiment_confidence"
SYNTAXES = [
    SqlSyntax(),
    SqlSyntax(backslash_escapes=False),
    SqlSyntax(ansi_quotes=True),
    SqlSyntax(pipes_as_concat=True),
]

#: Statements with holes: {s} a string literal, {n} an integer, {c} a comment.
FORMS = [
    f"SELECT id, {S}(txt, {{s}}) FROM t WHERE id = {{n}}",
    f"SELECT {S}({{s}}, {{s}}) {{c}}",
    f"SELECT {S}({{s}}, 'en', {{n}}), {C}(txt, lang) FROM t WHERE id IN ({{n}}, {{n}}) LIMIT {{n}}",
    f"SELECT a.id, (SELECT {S}(b.txt, {{s}}) FROM b WHERE b.id = a.id AND b.k > {{n}}) FROM a",
    f"INSERT INTO t2 SELECT id, {S}(txt, 'en') FROM t {{c}} WHERE id BETWEEN {{n}} AND {{n}}",
    f"UPDATE t SET lab = {S}(txt, {{s}}) WHERE id > {{n}} AND txt <> {{s}}",
    f"WITH c AS (SELECT id, {S}(txt, 'en') AS s FROM t WHERE id < {{n}}) "
    "SELECT * FROM c WHERE s = {s}",
    f"SELECT ROW_COUNT(), {S}(CONCAT(txt, {{s}}), 'en') FROM t /* {{n}} */ WHERE txt LIKE {{s}}",
    f"SELECT id, {S}(txt || {{s}}, 'en') FROM t WHERE txt || {{s}} = {{s}} ORDER BY {{n}}",
    f"SELECT {S}(txt, 'en') AS x, COUNT(*) FROM t WHERE n = -{{n}} "
    "GROUP BY 1 HAVING COUNT(*) > {n}",
    # Executable comments' openers and ends inside the items and the arguments.
    f"SELECT {S}(txt /*! , {{s}} */), /*! {C}(txt, {{s}})*/, {{n}} FROM t WHERE id = {{n}}",
]
TEXT = st.text(alphabet=st.sampled_from(list("ab 'x\"\\%_é😀?(")), max_size=8)


def quoted(value: str, syntax: SqlSyntax) -> str:
    """``value`` as a string literal a client would write in ``syntax``."""
    if syntax.backslash_escapes:
        value = value.replace("\\", "\\\\")
    return "'" + value.replace("'", "''") + "'"


@st.composite
def statements(draw: st.DrawFn, form: str, syntax: SqlSyntax) -> str:
    parts = form.split("{")
    out = [parts[0]]
    for part in parts[1:]:
        hole, rest = part[0], part[2:]
        if hole == "s":
            out.append(quoted(draw(TEXT), syntax))
        elif hole == "n":
            out.append(str(draw(st.integers(0, 10**6))))
        else:
            out.append(draw(st.sampled_from(["", "/* note */", "-- x\n", "# y\n"])))
        out.append(rest)
    return "".join(out)


def as_data(plan: MLPlan | None) -> Any:
    """A plan's fields, without what only the cache computes (known constant inputs)."""
    if plan is None:
        return None
    data = dataclasses.asdict(plan)
    for call in data["calls"]:
        call["known_inputs"] = None
    return data


def direct(sql: str, syntax: SqlSyntax) -> Any:
    try:
        return as_data(plan_statement(sql, BUILTINS, syntax))
    except PlanError as exc:
        return ("PlanError", str(exc))


def cached(sql: str, syntax: SqlSyntax, cache: PlanCache) -> Any:
    shape = shape_of(read_slots(sql, syntax))
    assert shape is not None
    try:
        return as_data(plan_shaped(shape, BUILTINS, syntax, cache, (syntax,)))
    except PlanError as exc:
        return ("PlanError", str(exc))


@pytest.mark.parametrize("syntax", SYNTAXES, ids=repr)
@pytest.mark.parametrize("form", FORMS)
@given(data=st.data())
@settings(max_examples=25, deadline=None)
def test_a_plan_made_from_one_statement_is_the_plan_of_another_of_its_shape(
    form: str, syntax: SqlSyntax, data: st.DataObject
) -> None:
    first = data.draw(statements(form, syntax))
    second = data.draw(statements(form, syntax))
    cache = PlanCache()
    assert cached(first, syntax, cache) == direct(first, syntax)
    assert cached(second, syntax, cache) == direct(second, syntax)
    shapes = {shape_of(read_slots(sql, syntax)).key for sql in (first, second)}  # type: ignore[union-attr]
    if len(shapes) == 1:
        assert len(cache) == 1  # the second statement used the first one's template


def test_the_shape_keeps_the_text_around_the_literals() -> None:
    sql = f"SELECT {S}(txt, 'en') FROM t WHERE id = 7 /* a */"
    shape = shape_of(read_slots(sql, SqlSyntax()))
    assert shape is not None
    other = shape_of(read_slots(sql.replace("7", "12345").replace("a */", "bc */"), SqlSyntax()))
    assert other is not None and other.key == shape.key
    assert [shape.slot_kind(i) for i in range(3)] == [
        SlotKind.STRING,
        SlotKind.INTEGER,
        SlotKind.COMMENT,
    ]
    # Identifiers, keywords, operators and introduced or hex literals are the shape.
    for changed in ("id = 7", "ID = 7", "id >= 7", "id = _latin1'7'", "id = X'37'"):
        variant = shape_of(read_slots(sql.replace("id = 7", changed), SqlSyntax()))
        assert variant is not None
        assert (variant.key == shape.key) == (changed == "id = 7")


def test_a_string_is_a_literal_or_an_identifier_as_the_session_reads_it() -> None:
    sql = f"SELECT {S}(\"txt\", 'en') FROM t"
    plain = read_slots(sql, SqlSyntax())
    ansi = read_slots(sql, SqlSyntax(ansi_quotes=True))
    assert [sql[a:b] for a, b, _ in plain.slots] == ['"txt"', "'en'"]
    assert [sql[a:b] for a, b, _ in ansi.slots] == ["'en'"]


@pytest.mark.parametrize("syntax", SYNTAXES, ids=repr)
@given(value=TEXT, number=st.integers(0, 99))
@settings(max_examples=50, deadline=None)
def test_slots_without_the_canonical_twin_are_the_same_slots(
    syntax: SqlSyntax, value: str, number: int
) -> None:
    sql = f'SELECT {S}({quoted(value, syntax)}, "c") -- x\n FROM t WHERE id = {number} # y'
    assert read_slots(sql, syntax).slots == read_statement(sql, syntax).slots


def test_a_prepared_statements_parameters_are_slots_and_take_bound_literals() -> None:
    sql = f"SELECT id, {S}(txt, ?) FROM t WHERE id = ?"
    shape = shape_of(read_slots(sql, SqlSyntax(), parameters=True))
    assert shape is not None
    bound = shape.with_slot_texts({0: "_utf8mb4 X'656e'", 1: "7"})
    assert bound.text == f"SELECT id, {S}(txt, _utf8mb4 X'656e') FROM t WHERE id = 7"
    cache = PlanCache()
    plan = plan_shaped(bound, BUILTINS, SqlSyntax(), cache, ())
    assert plan is not None and plan.calls[0].literal_inputs == (False, True)
    # The planner reads the bound text's _utf8mb4 X'656e' as an introduced literal, not a
    # Literal; the shape knew it as a parameter: the same value in every row either way.
    expected = plan_statement(bound.text, BUILTINS, SqlSyntax())
    assert expected is not None
    expected.calls[0].literal_inputs = (False, True)
    assert as_data(plan) == as_data(expected)


def test_a_batch_size_is_checked_for_each_statement() -> None:
    cache = PlanCache()
    good = f"SELECT {S}(txt, 'en', 5) FROM t"
    plan = plan_shaped(_shape(good), BUILTINS, SqlSyntax(), cache, ())
    assert plan is not None and plan.calls[0].batch_size == 5
    with pytest.raises(PlanError) as caught:
        plan_shaped(_shape(good.replace("5", "0")), BUILTINS, SqlSyntax(), cache, ())
    assert caught.value.code == 1210


def test_constant_inputs_are_known_when_their_text_is_their_value() -> None:
    cache = PlanCache()

    def known(sql: str, utf8: bool = True) -> Any:
        plan = plan_shaped(_shape(sql), BUILTINS, SqlSyntax(), cache, (), utf8)
        assert plan is not None
        return plan.calls[0].known_inputs

    assert known(f"SELECT {S}('I love it', 'en')") == (b"I love it", b"en")
    assert known(f"SELECT {S}('café', 'fr')") == ("café".encode(), b"fr")
    assert known(f"SELECT {S}('café', 'fr')", utf8=False) is None  # another charset: ask
    assert known(f"SELECT {S}('it''s', 'en')") is None  # an escape: the server reads it
    assert known(f"SELECT {S}('', 'en')") is None  # EMPTY_STRING_IS_NULL may make it NULL
    assert known(f"SELECT {S}(CONCAT('a', 'b'), 'en')") is None
    assert known(f"SELECT {S}(_latin1'a', 'en')") is None
    assert known(f"SELECT {S}(txt, 'en') FROM t") is None  # not constant


def test_a_template_whose_markers_sqlglot_rewrites_is_not_shared() -> None:
    # An INTERVAL's number is written back quoted (INTERVAL '7' DAY): still a whole
    # marker; a statement whose key query would lose one is planned alone.
    sql = f"SELECT {S}(txt, 'en') FROM t WHERE d > NOW() - INTERVAL 7 DAY"
    entry = make_template(_shape(sql), BUILTINS, SqlSyntax())
    assert isinstance(entry, Template) or entry is UNSHARED
    cache = PlanCache()
    assert as_data(plan_shaped(_shape(sql), BUILTINS, SqlSyntax(), cache, ())) == direct(
        sql, SqlSyntax()
    )


def test_the_cache_is_bounded_in_entries_and_bytes() -> None:
    cache = PlanCache(max_entries=3, max_bytes=1 << 20)
    for i in range(5):
        plan_shaped(_shape(f"SELECT {S}(txt, 'en') FROM t{i}"), BUILTINS, SqlSyntax(), cache, ())
    assert len(cache) == 3
    small = PlanCache(max_entries=100, max_bytes=64_000)
    for i in range(20):
        plan_shaped(_shape(f"SELECT {S}(txt, 'en') FROM t{i}"), BUILTINS, SqlSyntax(), small, ())
    assert small.bytes <= 64_000 and 0 < len(small) < 20
    huge = f"SELECT {S}(txt, 'en') FROM t WHERE " + " OR ".join(f"c{i} = 1" for i in range(500))
    plan_shaped(_shape(huge), BUILTINS, SqlSyntax(), small, ())
    assert all(size <= 64_000 // 8 for _, size in small._entries.values())
    off = PlanCache(max_entries=0)
    plan_shaped(_shape(f"SELECT {S}(txt, 'en') FROM t"), BUILTINS, SqlSyntax(), off, ())
    assert len(off) == 0 and not off.enabled


def test_another_context_is_another_entry() -> None:
    cache = PlanCache()
    sql = f"SELECT {S}(txt, 'en') FROM t"
    for context in (("STRICT_TRANS_TABLES", "utf8mb4", "db1"), ("ANSI_QUOTES", "utf8mb4", "db1")):
        plan_shaped(_shape(sql), BUILTINS, SqlSyntax(), cache, context)
    assert len(cache) == 2


def _shape(sql: str, syntax: SqlSyntax | None = None) -> Shape:
    shape = shape_of(read_slots(sql, syntax or SqlSyntax()))
    assert shape is not None
    return shape
