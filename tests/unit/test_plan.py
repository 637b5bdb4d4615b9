"""rewriter/plan.py on its own: which calls a statement has and how each is evaluated
(constant or by key query), the rewritten text, the order calls are answered in, and the
statements it refuses.

Expectations are written out here, not computed with the planner's helpers. What the
plans mean on a real MariaDB (the rows a key query lists, a rewritten column's name) is
tests/integration/test_plan_on_mariadb.py.
"""

from __future__ import annotations

import pytest

from rewriter.errors import PlanError
from rewriter.functions import BUILTINS, MLFunction
from rewriter.plan import MLPlan, dependencies, placeholder, plan_statement, render

S = "aws_comprehend_detect_sentiment"
C = "aws_comprehend_detect_sentiment_confidence"


def plan(sql: str, functions: dict[str, MLFunction] = BUILTINS) -> MLPlan:
    planned = plan_statement(sql, functions)
    assert planned is not None, sql
    return planned


def binary_key(text: str) -> str:
    """An input's key, as the module docstring of rewriter.plan promises it."""
    return f"CAST(CONVERT(({text}) USING utf8mb4) AS BINARY)"


# -- which statements have a plan -----------------------------------------------------------


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 1",
        "SELECT detect_sentiment(txt) FROM t",  # not an ML function's name
        f"SELECT '{S}(txt, ''en'')' FROM t",  # the name inside a string
        f"SELECT 1 /* {S}(txt, 'en') */",  # ... and inside a comment
        "SELECT (",  # not SQL: the backend answers it
    ],
)
def test_a_statement_without_ml_calls_has_no_plan(sql: str) -> None:
    assert plan_statement(sql, BUILTINS) is None


# -- call sites ------------------------------------------------------------------------------


def test_each_call_is_a_site_in_statement_order() -> None:
    sql = f"SELECT id, {S}(txt, 'en'), {C}('Good', lang, 10) AS c FROM t WHERE {S}(txt,'fr') = 'x'"
    calls = plan(sql).calls
    assert [(c.index, c.function.name) for c in calls] == [(0, S), (1, C), (2, S)]
    assert [sql[c.span.start : c.span.end] for c in calls] == [
        f"{S}(txt, 'en')",
        f"{C}('Good', lang, 10)",
        f"{S}(txt,'fr')",
    ]
    assert [c.inputs for c in calls] == [["txt", "'en'"], ["'Good'", "lang"], ["txt", "'fr'"]]
    assert [c.batch_size for c in calls] == [None, 10, None]


@pytest.mark.parametrize(
    ("inputs", "constant"),
    [
        ("'Good', 'en'", True),
        ("CONCAT('Go', 'od'), UPPER('en')", True),
        ("@text, 'en'", True),  # a user variable is one value for the whole statement
        ("txt, 'en'", False),
        ("'Good', lang", False),
        ("(SELECT MAX(txt) FROM t), 'en'", False),  # a subquery reads rows
        ("COUNT(*), 'en'", False),  # an aggregate names no column but reads rows
    ],
)
def test_a_call_is_constant_when_its_inputs_read_no_rows(inputs: str, constant: bool) -> None:
    (call,) = plan(f"SELECT {S}({inputs}) FROM t").calls
    assert call.constant is constant
    assert (call.key_query is None) is constant


def test_the_constant_query_selects_every_constant_inputs_key() -> None:
    planned = plan(f"SELECT {S}('Good', 'en'), {C}(txt, 'en'), {C}('Bad', 'fr') FROM t")
    assert [c.index for c in planned.constant_calls] == [0, 2]
    keys = [binary_key(text) for text in ("'Good'", "'en'", "'Bad'", "'fr'")]
    assert planned.constant_query() == "SELECT " + ", ".join(keys)
    assert plan(f"SELECT {S}(txt, 'en') FROM t").constant_query() is None


def test_lookup_reads_bare_and_qualified_names_case_blind() -> None:
    alias = MLFunction("tagline", "alias:db.tagline", "value", 1, 1, "TEXT")
    functions = {**BUILTINS, "db.tagline": alias}
    (bare,) = plan(f"SELECT {S.upper()}(txt, 'en') FROM t").calls
    assert bare.function is BUILTINS[S]
    (qualified,) = plan("SELECT db.TAGLINE(txt) FROM t", functions).calls
    assert qualified.function is alias
    assert plan_statement("SELECT tagline(txt) FROM t", functions) is None  # db. is its name
    assert plan_statement("SELECT other.tagline(txt) FROM t", functions) is None


# -- the rewritten statement -----------------------------------------------------------------


def test_rewrite_replaces_each_call_and_keeps_the_names_the_client_sees() -> None:
    sql = f"SELECT id, {S}(txt, 'en'), {C}(txt, 'en') AS c FROM t WHERE {S}(txt, 'en') > ''"
    rewritten = plan(sql).rewrite({0: "'A'", 1: "0.5", 2: "'B'"})
    assert rewritten == (f"SELECT id, 'A' AS `{S}(txt, 'en')`, 0.5 AS c FROM t WHERE 'B' > ''")


def test_rewrite_puts_the_sessions_state_in_for_row_count_and_found_rows() -> None:
    planned = plan(f"SELECT {S}('x', 'en') AS s, ROW_COUNT(), FOUND_ROWS()")
    assert [name for name, _ in planned.state_calls] == ["row_count", "found_rows"]
    assert planned.rewrite({0: "'A'"}, {"row_count": "7", "found_rows": "3"}) == (
        "SELECT 'A' AS s, 7, 3"
    )
    assert planned.rewrite({0: "'A'"}) == "SELECT 'A' AS s, ROW_COUNT(), FOUND_ROWS()"


def test_the_metadata_twin_keeps_every_argument_and_the_result_type() -> None:
    twin = plan(f"SELECT {S}(?,'en') AS s, {C}('x',?) AS c").metadata_twin()
    assert twin == (
        "SELECT CAST(IF((?) IS NULL OR ('en') IS NULL, NULL, NULL) AS CHAR(8) CHARACTER SET"
        " utf8mb4) AS s, CAST(IF(('x') IS NULL OR (?) IS NULL, NULL, NULL) AS DOUBLE) AS c"
    )


# -- the order calls are answered in ---------------------------------------------------------


def test_a_call_reading_another_calls_answers_waits_for_it() -> None:
    sql = f"WITH c AS (SELECT id, {S}(txt, 'en') AS lab FROM t) SELECT {C}(lab, 'en') FROM c"
    planned = plan(sql)
    outer = planned.calls[1]
    assert dependencies(outer.key_query or "") == {sql.index(S)}
    assert [[c.index for c in wave] for wave in planned.waves()] == [[0], [1]]


def test_independent_calls_are_answered_together() -> None:
    planned = plan(f"SELECT {S}(txt, 'en'), {C}(txt, 'fr') FROM t")
    assert [[c.index for c in wave] for wave in planned.waves()] == [[0, 1]]


def test_placeholders_are_found_and_filled_by_offset() -> None:
    query = f"SELECT {placeholder(12)}, {placeholder(-1)}, {placeholder(12)}"
    assert dependencies(query) == {12, -1}
    assert render(query, {12: "'A'", -1: "NULL"}) == "SELECT 'A', NULL, 'A'"
    assert dependencies("SELECT 1") == set()


# -- statements it refuses -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "code", "says"),
    [
        (f"SELECT {S}(txt, 'en') FROM t; SELECT 1", 1235, "single statements"),
        (f"CREATE VIEW v AS SELECT {S}(txt, 'en') FROM t", 1235, "view"),
        (f"SELECT {S}({C}(txt, 'en'), 'en') FROM t", 1235, "another ML function"),
        (f"SELECT {S}(txt) FROM t", 1582, "parameter count"),
        (f"SELECT {S}(txt, 'en', 'de', 'fr') FROM t", 1582, "parameter count"),
        (f"SELECT {S}(txt, 'en', 0) FROM t", 1210, "positive integer"),
        (f"SELECT {S}(txt, 'en', n) FROM t", 1210, "positive integer"),
    ],
)
def test_a_statement_it_cannot_evaluate_is_refused(sql: str, code: int, says: str) -> None:
    with pytest.raises(PlanError, match=says) as caught:
        plan_statement(sql, BUILTINS)
    assert caught.value.code == code
