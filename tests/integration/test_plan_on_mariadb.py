"""rewriter/plan.py's plans on a real MariaDB, where what matters is what the SQL means:
the rows a key query lists (against rows written out here), the names a rewritten
statement's columns get, a metadata twin that runs. The planner's text alone is
tests/unit/test_plan.py."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pymysql
import pytest

from rewriter.functions import BUILTINS
from rewriter.lexer import SqlSyntax, read_statement
from rewriter.plan import MLPlan, dependencies, plan_statement, render

S = "aws_comprehend_detect_sentiment"
C = "aws_comprehend_detect_sentiment_confidence"


def plan(sql: str) -> MLPlan:
    planned = plan_statement(sql, BUILTINS)
    assert planned is not None, sql
    return planned


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


#: Executable comments around each version boundary, MySQL's form and MariaDB's.
COMMENT_VERSIONS = ["50505", "50699", "50700", "80036", "99999", "100000", "101109", "999999"]
COMMENT_OPENERS = (
    [f"/*!{v}" for v in COMMENT_VERSIONS]
    + [f"/*M!{v}" for v in ("50700", "99999", "101109", "999999")]
    + ["/*!", "/*!\u0665\u0660\u0660\u0660\u0660 + 0"]
)


@pytest.mark.parametrize("opener", COMMENT_OPENERS)
def test_the_lexer_runs_the_executable_comments_the_server_runs(
    direct: pymysql.Connection[Any], opener: str
) -> None:
    """The lexer's reading of ``SELECT 1 /*!NNNNN + 1 */`` against the server's own, with
    the server's version as its greeting gives it (a MariaDB one starts "5.5.5-")."""
    sql = f"SELECT 1 {opener} + 1 */"
    with direct.cursor() as cur:
        cur.execute("SELECT @@sql_mode")
        ((mode,),) = cur.fetchall()
        try:
            cur.execute(sql)
            server_runs = cur.fetchall() == ((2,),)
        except pymysql.MySQLError:  # the \u0665... identifier: the comment ran
            server_runs = True
    syntax = SqlSyntax.from_session(mode, direct.server_version)
    canonical = read_statement(sql, syntax).canonical
    assert ("+ 1" in canonical) == server_runs, (sql, direct.server_version)


def test_the_metadata_twin_runs_and_answers_nulls(direct: pymysql.Connection[Any]) -> None:
    twin = plan(f"SELECT {S}(?,'en') AS s, {C}('x',?) AS c").metadata_twin()
    with direct.cursor() as cur:
        cur.execute(twin.replace("?", "'p'"))
        assert cur.fetchall() == ((None, None),)
        assert [column[0] for column in cur.description] == ["s", "c"]


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
