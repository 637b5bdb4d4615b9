"""rewriter/plan.py on its own: which calls a statement has and how each is evaluated
(constant or by key query), the rewritten text, the order calls are answered in, and the
statements it refuses.

Expectations are written out here, not computed with the planner's helpers; where what
matters is what SQL means (the rows a key query lists, a rewritten column's name), a
real MariaDB answers (the suite's ``backend``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pymysql
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


def test_the_rewritten_columns_are_named_as_the_server_names_the_original(
    direct: pymysql.Connection[Any],
) -> None:
    """An unaliased item keeps the name MariaDB gives the text the client wrote."""
    sql = f"SELECT 1 + 1, {S}('Good', 'en'), {C}( 'Good' ,'en' ) FROM DUAL"
    rewritten = plan(sql).rewrite({0: "'POSITIVE'", 1: "0.9"})
    with direct.cursor() as cur:
        cur.execute(rewritten)
        names = [column[0] for column in cur.description]
    assert names == ["1 + 1", f"{S}('Good', 'en')", f"{C}( 'Good' ,'en' )"]


def test_the_metadata_twin_keeps_every_argument_and_the_result_type(
    direct: pymysql.Connection[Any],
) -> None:
    twin = plan(f"SELECT {S}(?,'en') AS s, {C}('x',?) AS c").metadata_twin()
    assert twin == (
        "SELECT CAST(IF((?) IS NULL OR ('en') IS NULL, NULL, NULL) AS CHAR(8) CHARACTER SET"
        " utf8mb4) AS s, CAST(IF(('x') IS NULL OR (?) IS NULL, NULL, NULL) AS DOUBLE) AS c"
    )
    with direct.cursor() as cur:
        cur.execute(twin.replace("?", "'p'"))
        assert cur.fetchall() == ((None, None),)


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


# -- what key queries mean, on MariaDB -------------------------------------------------------

T_ROWS = [
    (1, "Good", "en", "a"),
    (2, "good", "fr", "a"),  # equal to row 1 under a case-blind collation: a key of its own
    (3, "Bad", "en", "b"),
    (4, None, "de", "b"),
    (5, "Good", "en", "c"),  # a duplicate of row 1's inputs
]
U_ROWS = [(10, 1, "reply one"), (11, 1, "reply two"), (12, 3, "reply three")]


class Tables:
    """Tables t and u under unique names, holding the rows above, on MariaDB."""

    def __init__(self, connection: pymysql.Connection[Any], t: str, u: str) -> None:
        self.connection, self.t, self.u = connection, t, u

    def run(self, query: str) -> set[tuple[Any, ...]]:
        with self.connection.cursor() as cur:
            cur.execute(query)
            return set(cur.fetchall())

    def keys(self, template: str, flat: bool = False) -> set[tuple[Any, ...]]:
        """Plan a statement written with ``{t}`` and ``{u}``; what its first call's key
        query (or flat key query) lists."""
        (site, *_) = plan(template.format(t=self.t, u=self.u)).calls
        query = site.flat_key_query if flat else site.key_query
        assert query is not None
        return self.run(query)


@pytest.fixture
def db(direct: pymysql.Connection[Any], tables: Callable[[str], str]) -> Tables:
    t = tables("id INT PRIMARY KEY, txt VARCHAR(20), lang VARCHAR(5), grp CHAR(1)")
    u = tables("id INT PRIMARY KEY, t_id INT, txt VARCHAR(20)")
    with direct.cursor() as cur:
        cur.executemany(f"INSERT INTO {t} VALUES (%s, %s, %s, %s)", T_ROWS)
        cur.executemany(f"INSERT INTO {u} VALUES (%s, %s, %s)", U_ROWS)
    return Tables(direct, t, u)


def encoded(*values: str | None) -> tuple[bytes | None, ...]:
    return tuple(None if v is None else v.encode() for v in values)


def test_a_key_query_lists_each_distinct_input_of_the_rows_once(
    db: Tables,
) -> None:
    expected = {encoded(txt, lang) for _, txt, lang, _ in T_ROWS}
    assert db.keys(f"SELECT id, {S}(txt, lang) FROM {{t}}") == expected
    assert len(expected) == 4  # row 5 repeats row 1; 'Good' and 'good' stay apart


def test_a_key_query_keeps_the_ml_free_conditions_and_drops_the_others(
    db: Tables,
) -> None:
    sql = f"SELECT id FROM {{t}} WHERE grp = 'a' AND {S}(txt, 'en') = 'POSITIVE'"
    assert db.keys(sql) == {encoded("Good", "en"), encoded("good", "en")}


def test_an_updates_key_query_reads_the_rows_it_updates(
    db: Tables,
) -> None:
    assert db.keys(f"UPDATE {{t}} SET txt = {S}(txt, lang) WHERE grp = 'b'") == {
        encoded("Bad", "en"),
        encoded(None, "de"),
    }


def test_a_joins_key_query_reads_the_joined_rows(
    db: Tables,
) -> None:
    sql = f"SELECT {S}(u.txt, t.lang) FROM {{t}} t JOIN {{u}} u ON u.t_id = t.id"
    assert db.keys(sql) == {
        encoded("reply one", "en"),
        encoded("reply two", "en"),
        encoded("reply three", "en"),
    }


def test_a_correlated_subquerys_flat_key_query_covers_every_outer_row(
    db: Tables,
) -> None:
    sql = (
        f"SELECT id, (SELECT {S}(u.txt, t.lang) FROM {{u}} u WHERE u.t_id = t.id LIMIT 1)"
        " FROM {t} t"
    )
    needed = {encoded(txt, T_ROWS[t_id - 1][2]) for _, t_id, txt in U_ROWS}
    assert needed <= db.keys(sql, flat=True)


def test_a_key_query_through_an_answered_cte_reads_the_answers(
    db: Tables, direct: pymysql.Connection[Any]
) -> None:
    """The outer call's key query stands the inner call's answer in; rendered, it lists
    the outer inputs those answers make."""
    sql = (
        f"WITH c AS (SELECT id, {S}(txt, 'en') AS lab FROM {db.t} WHERE grp = 'a')"
        f" SELECT {C}(lab, 'de') FROM c"
    )
    outer = plan(sql).calls[1]
    assert outer.key_query is not None
    assert dependencies(outer.key_query) == {sql.index(S)}
    answered = render(outer.key_query, {sql.index(S): "'POSITIVE'"})
    assert db.run(answered) == {encoded("POSITIVE", "de")}


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
