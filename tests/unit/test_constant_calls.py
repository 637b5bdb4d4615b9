"""rewriter.shaped.constant_calls: a recipe writes what the filled-in plan writes.

The oracle is the plan path: for generated statements whose calls all take literals (in
each sql_mode the lexer knows, with comments, aliases and calls inside expressions), a
recipe made from one statement's shape must give another statement of that shape the key
rows instantiate gives it (CallSite.known_inputs) and, for any answers, the text
MLPlan.rewrite writes with them.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rewriter.errors import PlanError
from rewriter.functions import BUILTINS
from rewriter.lexer import SqlSyntax, read_slots
from rewriter.shaped.plan_cache import PlanCache, Template, instantiate, template_of
from rewriter.shaped.shapes import Shape, shape_of
from tests.unit.test_plan_cache import SYNTAXES, statements

S = "aws_comprehend_detect_sentiment"
C = "aws_comprehend_detect_sentiment_confidence"
#: Statements with holes ({s} a string, {n} an integer, {c} a comment), calls on literals.
FORMS = [
    f"SELECT {S}({{s}}, {{s}})",
    f"SELECT {S}({{s}}, 'en') {{c}}, {C}({{s}}, 'en') AS conf, {{n}} + 1",
    f"SELECT CONCAT({S}({{s}}, 'en'), '-', {C}({{s}}, {{s}})) FROM t WHERE id = {{n}}",
    f"SELECT {S}({{s}}, 'en', {{n}}) {{c}} FROM dual WHERE {{n}} > 0",
    f"INSERT INTO t (a, b) VALUES ({{n}}, {S}({{s}}, 'en'))",
    f"SELECT UPPER({S}({{s}}, 'en')), {S}({{s}}, 'en') AS x, {{s}}",
    f"SELECT /*! {S}({{s}}, 'en') */, {C}({{s}} /*! , {{s}} */)",
]


def shape(sql: str, syntax: SqlSyntax) -> Shape:
    found = shape_of(read_slots(sql, syntax))
    assert found is not None
    return found


@pytest.mark.parametrize("syntax", SYNTAXES, ids=repr)
@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("utf8", [True, False], ids=["utf8", "other"])
@given(data=st.data())
@settings(max_examples=20, deadline=None)
def test_a_recipe_writes_what_the_plan_writes(
    form: str, syntax: SqlSyntax, utf8: bool, data: st.DataObject
) -> None:
    first, second = (data.draw(statements(form, syntax)) for _ in range(2))
    cache = PlanCache()
    entry = template_of(shape(first, syntax), BUILTINS, syntax, cache, ())
    other = shape(second, syntax)
    if other.key != shape(first, syntax).key:
        return  # (a drawn comment changed the shape)
    assert isinstance(entry, Template)
    recipe = entry.constant
    assert recipe is not None
    rows = recipe.rows(other, utf8)
    try:
        plan = instantiate(entry, other, utf8)
    except PlanError:  # a max_batch_size of 0: the plan path reports it
        assert rows is None
        return
    known = [site.known_inputs for site in plan.calls]
    assert rows == (None if None in known else known)
    answers = [f"'answer {i}'" for i in range(len(plan.calls))]
    expected = plan.rewrite({site.index: answers[i] for i, site in enumerate(plan.calls)})
    assert recipe.rewrite(other, answers) == expected


@pytest.mark.parametrize(
    "sql",
    [
        f"SELECT {S}(txt, 'en') FROM t",  # a column: a key query reads it
        f"SELECT ROW_COUNT(), {S}('a', 'en')",  # a query reads ROW_COUNT()
        f"SELECT {S}(CONCAT('a', 'b'), 'en')",  # not a literal
    ],
)
def test_no_recipe_where_the_text_does_not_settle_the_inputs(sql: str) -> None:
    entry = template_of(shape(sql, SqlSyntax()), BUILTINS, SqlSyntax(), PlanCache(), ())
    assert isinstance(entry, Template)
    assert entry.constant is None
