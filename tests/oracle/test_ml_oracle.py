"""The differential oracle for the ML path (issue 3).

The same deterministic function exists twice (tests/support/oracle_backend.py): as stored functions
in the database ``oracle_direct`` and as the proxy's ``python:`` backend. Both databases
hold identical data; ``oracle_proxy`` has no stored functions, so a call the proxy fails
to intercept errors out instead of passing silently. Every statement of the corpus runs
through the proxy in ``oracle_proxy`` and directly in ``oracle_direct``: the result sets
(rows, column names), affected-row counts and the tables after writes must be equal.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pymysql
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ml_backends.counters import MLCounters
from proxy.ml.path import MLRuntime
from rewriter.functions import SENTIMENT
from rewriter.sql_text import double_literal
from tests.conftest import APP, RunningProxy, admin_connect, start_proxy
from tests.support import oracle_backend
from tests.support.backend import BackendInfo
from tests.support.select_grammar import Generated, selects

DIRECT_DB = "oracle_direct"
PROXY_DB = "oracle_proxy"
SENT = "aws_comprehend_detect_sentiment"
CONF = "aws_comprehend_detect_sentiment_confidence"
#: The family both functions belong to (they share one engine).
FAMILY = SENTIMENT

SCHEMA = (
    """CREATE TABLE comments (id INT PRIMARY KEY, txt TEXT, lang VARCHAR(16),
                              grp CHAR(1), n INT)""",
    """CREATE TABLE replies (id INT PRIMARY KEY, comment_id INT, txt TEXT,
                             lang VARCHAR(16))""",
    "CREATE TABLE langs (code VARCHAR(16) PRIMARY KEY, name VARCHAR(32))",
    "CREATE TABLE capture (id INT PRIMARY KEY, k0 TEXT, v TEXT, k1 VARCHAR(16))",
    """CREATE TABLE w (id INT AUTO_INCREMENT PRIMARY KEY, txt TEXT,
                       lang VARCHAR(16) DEFAULT 'en', lab VARCHAR(8), conf DOUBLE, n INT)""",
    "CREATE TABLE batch_texts (id INT PRIMARY KEY, txt TEXT)",
)

COMMENTS = [
    (1, "Good", "en", "a", 1),
    (2, "GOOD", "en", "a", 2),
    (3, "good", "en", "b", 3),
    (4, "Good", "en", "b", 4),
    (5, None, "en", "a", 5),
    (6, "", "en", "c", 6),
    (7, " ", "en", "c", 7),
    (8, "Good ", "en", "a", 8),
    (9, 'It\'s "quoted" \\ back\\slash', "en", "b", 9),
    (10, "emoji 😀🎉 ok", "en", "c", 10),
    (11, "café crème", "fr", "a", 11),
    (12, "日本語のテキスト", "ja", "b", 12),
    (13, "Bad service", "EN", "c", 13),
    (14, "Bad service", "en", "a", 14),
    (15, "Bad service", "de", "b", None),
    (16, "Neutral remark", None, "c", 15),
    (17, "Mixed feelings", "es", "a", 16),
    (18, "zh text 中文", "zh-TW", "b", 17),
    (19, "Good", "fr", "c", 18),
    (20, "tab\tnewline\n", "en", "a", 19),
    (21, "a", "en", "b", 20),
    (22, "percent % underscore _", "en", "c", 21),
    (23, "Ünïcödé", "de", "a", 22),
    (24, "GOOD", "en", "c", 23),
    (25, "nul\x00byte", "en", "b", 24),
]
REPLIES = [
    (1, 1, "Thanks!", "en"),
    (2, 1, "Good", "en"),
    (3, 2, "GOOD", "fr"),
    (4, 4, None, "en"),
    (5, 10, "emoji 😀🎉 ok", "en"),
    (6, 13, "Bad service", "en"),
    (7, 99, "orphan reply", "de"),
    (8, 3, "", "en"),
    (9, 14, "Mixed feelings", "es"),
    (10, 21, "a", "en"),
]
LANGS = [
    ("en", "English"),
    ("fr", "French"),
    ("de", "German"),
    ("ja", "Japanese"),
    ("es", "Spanish"),
    ("zh-TW", "Chinese"),
]
CAPTURE = [(1, "Good", "Bad service", "en"), (2, "GOOD", "emoji 😀", "fr"), (3, None, "x", "de")]
W_ROWS = [
    (1, "Good", "en", None, None, 1),
    (2, "GOOD", "en", None, None, 2),
    (3, "Bad service", "fr", None, None, 3),
    (4, None, "en", None, None, 4),
    (5, "", "en", None, None, None),
    (6, "emoji 😀", "de", None, None, 6),
    (7, "Mixed feelings", "es", "old", 0.5, 7),
    (8, "Good", "en", None, None, 8),
]
BATCH_TEXTS = 60

# --------------------------------------------------------------------------------------
# Diagnoses of the shapes the proxy gets wrong today (strict xfails: a fix turns them red)
# --------------------------------------------------------------------------------------

STANDALONE_VALUES = (
    "sqlglot 30.30 cannot parse a standalone VALUES statement (ParseError: Required keyword "
    "'expressions' missing for Aliases): plan_statement returns None, the statement is "
    "forwarded unrewritten and fails with 1305 FUNCTION ...aws_comprehend_detect_sentiment "
    "does not exist"
)
SQL_PREPARE = (
    "sqlglot parses PREPARE st FROM '...' as exp.Command and the call is inside a string "
    "literal: plan_statement returns None, the PREPARE is forwarded and fails with 1305 "
    "(the proxy would have to plan the text and rewrite at EXECUTE)"
)
ASSIGNMENT_ORDER = (
    "MySQL evaluates single-table UPDATE assignments left to right, so lab = f(txt, 'en') "
    "sees the upper-cased txt; rewriter/plan.py _dml_scope's key query collects the "
    "pre-update txt values, the lookup misses UPPER(txt) and writes NULL (ids 3, 6, 7: "
    "direct 'MIXED'/'NEGATIVE', proxy NULL)"
)
ODKU_VALUES = (
    "rewriter/plan.py _refers_to_rows: sqlglot parses VALUES(txt) as exp.Values, so the "
    "call is judged constant and the constant query SELECT CAST(CONVERT((VALUES(txt)) "
    "USING utf8mb4) ...) fails with 4100 Field reference 'txt' can't be used in table "
    "value constructor"
)
ODKU_COLUMN = (
    "rewriter/plan.py _scope climbs from ON DUPLICATE KEY UPDATE to the Insert node, not in "
    "_SCOPES: PlanError 1235 'this placement of an ML function is not supported'"
)
VIEW = (
    "the rewritten view body reads the session temporary table: 1352 View's SELECT refers "
    "to a temporary table '_mlr' (a view cannot keep per-statement answers in any case)"
)
RECURSIVE_BODY = (
    "a call in a recursive CTE's recursive member: its key query SELECT DISTINCT ... FROM r "
    "WHERE k < 4 gets no WITH (the _attach_ctes 'with'/'with_' bug): 1146 Table "
    "'oracle_proxy.r' doesn't exist; with the WITH attached it would still contain the call "
    "itself, and a recursive member's inputs can depend on its own outputs"
)


# --------------------------------------------------------------------------------------
# The two databases and the connections to them
# --------------------------------------------------------------------------------------


def _create_database(cur: Any, name: str, with_functions: bool) -> None:
    """A fresh database with the oracle's tables and data (and its stored functions)."""
    cur.execute(f"DROP DATABASE IF EXISTS {name}")
    cur.execute(f"CREATE DATABASE {name} CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci")
    cur.execute(f"USE {name}")
    for ddl in SCHEMA:
        cur.execute(ddl)
    if with_functions:
        for function in oracle_backend.STORED_FUNCTIONS:
            cur.execute(function)
    cur.executemany("INSERT INTO comments VALUES (%s, %s, %s, %s, %s)", COMMENTS)
    cur.executemany("INSERT INTO replies VALUES (%s, %s, %s, %s)", REPLIES)
    cur.executemany("INSERT INTO langs VALUES (%s, %s)", LANGS)
    cur.executemany("INSERT INTO capture VALUES (%s, %s, %s, %s)", CAPTURE)
    cur.executemany("INSERT INTO w VALUES (%s, %s, %s, %s, %s, %s)", W_ROWS)
    batch = [(i, f"batch text {i}") for i in range(1, BATCH_TEXTS + 1)]
    cur.executemany("INSERT INTO batch_texts VALUES (%s, %s)", batch)
    cur.execute(f"GRANT ALL ON {name}.* TO '{APP.user}'@'%'")


@pytest.fixture(scope="module")
def admin(backend: BackendInfo) -> Iterator[pymysql.Connection[Any]]:
    """The admin connection that builds both databases and resets their write tables."""
    connection = admin_connect(backend)
    with connection.cursor() as cur:
        _create_database(cur, DIRECT_DB, with_functions=True)
        _create_database(cur, PROXY_DB, with_functions=False)
    yield connection
    with connection.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {DIRECT_DB}")
        cur.execute(f"DROP DATABASE IF EXISTS {PROXY_DB}")
    connection.close()


@pytest.fixture(scope="module")
def oracle_proxy(backend: BackendInfo, admin: pymysql.Connection[Any]) -> Iterator[RunningProxy]:
    running = start_proxy(
        backend, comprehend_backend="python:tests.support.oracle_backend:crc_sentiment"
    )
    yield running
    running.stop()


@dataclass
class Pair:
    """One connection through the proxy (``oracle_proxy``), one direct (``oracle_direct``)."""

    proxy: RunningProxy
    backend: BackendInfo
    via_proxy: pymysql.Connection[Any] = field(init=False)
    direct: pymysql.Connection[Any] = field(init=False)

    def __post_init__(self) -> None:
        self.via_proxy = self._connect_proxy()
        self.direct = self._connect_direct()

    def _connect_proxy(self) -> pymysql.Connection[Any]:
        return self.proxy.connect(database=PROXY_DB)

    def _connect_direct(self) -> pymysql.Connection[Any]:
        return pymysql.connect(
            host=self.backend.host,
            port=self.backend.port,
            user=APP.user,
            password=APP.password,
            database=DIRECT_DB,
            autocommit=True,
        )

    def ensure_open(self) -> None:
        """Replace a connection that a failed statement closed."""
        if not self.via_proxy.open:
            self.via_proxy = self._connect_proxy()
        if not self.direct.open:
            self.direct = self._connect_direct()

    def close(self) -> None:
        self.via_proxy.close()
        self.direct.close()


@pytest.fixture(scope="module")
def pair(oracle_proxy: RunningProxy, backend: BackendInfo) -> Iterator[Pair]:
    connections = Pair(oracle_proxy, backend)
    yield connections
    connections.close()


@pytest.fixture
def fresh(pair: Pair, admin: pymysql.Connection[Any]) -> Pair:
    """The pair, with both write tables back to their seed rows and no made objects."""
    pair.ensure_open()
    with admin.cursor() as cur:
        for name in (DIRECT_DB, PROXY_DB):
            cur.execute(f"DROP VIEW IF EXISTS {name}.vv")
            cur.execute(f"DROP TABLE IF EXISTS {name}.made")
            cur.execute(f"TRUNCATE TABLE {name}.w")
            cur.executemany(f"INSERT INTO {name}.w VALUES (%s, %s, %s, %s, %s, %s)", W_ROWS)
    return pair


# --------------------------------------------------------------------------------------
# Running one statement on both sides
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """What a client sees of one statement."""

    names: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]
    rowcount: int


def run(connection: pymysql.Connection[Any], sql: str) -> Outcome:
    """Execute ``sql`` and collect its column names, rows and affected-row count."""
    with connection.cursor() as cur:
        cur.execute(sql)
        names = tuple(d[0] for d in cur.description or ())
        return Outcome(names, tuple(cur.fetchall()), cur.rowcount)


def run_through_proxy(pair: Pair, sql: str) -> Outcome:
    """``run`` on the proxy side, failing with the statement when the proxy errors."""
    try:
        return run(pair.via_proxy, sql)
    except pymysql.MySQLError as exc:
        pair.ensure_open()
        pytest.fail(f"through the proxy: {exc!r}\nstatement: {sql}")


def assert_same(through: Outcome, direct: Outcome, ordered: bool, sql: str) -> None:
    """Equal column names, affected rows, and rows (as lists or as multisets)."""
    assert through.names == direct.names, sql
    assert through.rowcount == direct.rowcount, sql
    if ordered:
        assert list(through.rows) == list(direct.rows), sql
    else:
        assert Counter(through.rows) == Counter(direct.rows), sql


def compare(pair: Pair, sql: str, ordered: bool = False) -> Outcome:
    """Run ``sql`` directly, then through the proxy, and assert both are equal."""
    direct = run(pair.direct, sql)
    through = run_through_proxy(pair, sql)
    assert_same(through, direct, ordered, sql)
    return direct


def fmt(sql: str) -> str:
    """Spell out the function names: ``{S}`` is the label, ``{C}`` the confidence."""
    return sql.format(S=SENT, C=CONF)


# --------------------------------------------------------------------------------------
# The oracle itself: both implementations are the same function
# --------------------------------------------------------------------------------------


def test_every_confidence_value_is_the_same_double_in_sql_and_python(pair: Pair) -> None:
    """All 10,000 confidences: the stored function's DOUBLE equals, on the server, the
    literal the proxy writes for Python's value, and both read back as the same float."""
    values = ", ".join(
        f"({v}, {double_literal(oracle_backend.fraction(v))})"
        for v in range(oracle_backend.DENOMINATOR)
    )
    with pair.direct.cursor() as cur:
        cur.execute("CREATE TEMPORARY TABLE fractions (v INT PRIMARY KEY, x DOUBLE)")
        try:
            cur.execute(f"INSERT INTO fractions VALUES {values}")
            cur.execute("SELECT COUNT(*) FROM fractions WHERE _oracle_fraction(v) = x")
            assert cur.fetchone() == (oracle_backend.DENOMINATOR,)
            cur.execute("SELECT v, _oracle_fraction(v) FROM fractions ORDER BY v")
            read = cur.fetchall()
        finally:
            cur.execute("DROP TEMPORARY TABLE fractions")
    assert [x for _, x in read] == [oracle_backend.fraction(v) for v, _ in read]


def test_python_and_stored_functions_agree_on_every_corpus_text(pair: Pair) -> None:
    """The two implementations, compared without the proxy, over every non-empty text of
    the tables and every language the corpus uses."""
    with pair.direct.cursor() as cur:
        cur.execute(
            f"""SELECT t.txt, l.code, {SENT}(t.txt, l.code), {CONF}(t.txt, l.code)
                FROM (SELECT txt FROM comments UNION ALL SELECT txt FROM replies
                      UNION ALL SELECT txt FROM batch_texts) t
                JOIN (SELECT code FROM langs UNION ALL SELECT 'EN') l
                WHERE OCTET_LENGTH(t.txt) > 0"""
        )
        rows = cur.fetchall()
    assert len(rows) > 100
    for text, language, label, confidence in rows:
        assert (label, confidence) == oracle_backend.answer(text, language), (text, language)


def test_nulls_and_empty_text_are_null_in_both_implementations(pair: Pair) -> None:
    sql = fmt("SELECT {S}(NULL, 'en'), {S}('', 'en'), {S}('x', NULL), {C}('', 'en')")
    assert run(pair.direct, sql).rows == ((None, None, None, None),)


def test_variants_a_collation_would_merge_get_different_answers() -> None:
    """The corpus can only catch inputs merged by a case- or pad-insensitive comparison if
    the oracle answers them differently: 'Good', 'GOOD', 'good', 'Good ' all differ."""
    variants = ("Good", "GOOD", "good", "Good ")
    confidences = {oracle_backend.answer(text, "en")[1] for text in variants}
    assert len(confidences) == len(variants)
    assert oracle_backend.answer("Good", "en")[0] != oracle_backend.answer("GOOD", "en")[0]


def test_oracle_proxy_has_no_stored_functions(pair: Pair) -> None:
    """The proxy side cannot fall back to a stored function: uncaught calls fail."""
    with pair.direct.cursor() as cur:
        cur.execute(f"SHOW FUNCTION STATUS WHERE Db = '{PROXY_DB}'")
        assert cur.fetchall() == ()


# --------------------------------------------------------------------------------------
# The hand-written corpus: read statements
# --------------------------------------------------------------------------------------


def known_failure(diagnosis: str) -> pytest.MarkDecorator:
    """A strict xfail that only accepts a proxy-side difference (a failed comparison or a
    proxy error), not a broken fixture."""
    return pytest.mark.xfail(
        strict=True, reason=diagnosis, raises=(AssertionError, pytest.fail.Exception)
    )


@dataclass(frozen=True)
class Shape:
    """One statement to compare; ``setup`` runs first on both sides, ``then`` after it
    (and is compared too, in order)."""

    sql: str
    ordered: bool = False
    setup: tuple[str, ...] = ()
    then: tuple[str, ...] = ()


def shape(
    name: str,
    sql: str,
    *,
    ordered: bool = False,
    setup: Sequence[str] = (),
    then: Sequence[str] = (),
    xfail: str | None = None,
) -> Any:
    """A pytest parameter for one shape (``xfail``: the diagnosis of a known failure)."""
    marks = [known_failure(xfail)] if xfail else []
    value = Shape(fmt(sql), ordered, tuple(map(fmt, setup)), tuple(map(fmt, then)))
    return pytest.param(value, id=name, marks=marks)


SELECT_LIST = [
    shape("sel-plain-lang-column", "SELECT id, {S}(txt, lang) FROM comments"),
    shape(
        "sel-both-aliased",
        "SELECT id, {S}(txt, 'en') AS lab, {C}(txt, 'en') AS conf FROM comments ORDER BY id",
        ordered=True,
    ),
    shape("sel-concat", "SELECT id, CONCAT('[', {S}(txt, 'en'), ']') FROM comments"),
    shape(
        "sel-case-simple",
        "SELECT id, CASE {S}(txt, 'en') WHEN 'POSITIVE' THEN 1 WHEN 'NEGATIVE' THEN -1"
        " ELSE 0 END AS score FROM comments",
    ),
    shape(
        "sel-case-searched",
        "SELECT id, CASE WHEN {C}(txt, lang) > 0.5 THEN {S}(txt, lang) ELSE 'LOW' END"
        " FROM comments",
    ),
    shape("sel-round-arith", "SELECT id, ROUND({C}(txt, 'en') * 100, 2) AS pct FROM comments"),
    shape("sel-plus-column", "SELECT id, {C}(txt, 'en') + n FROM comments"),
    shape(
        "sel-if-alias-without-as",
        "SELECT id, IF({S}(txt, 'en') = 'POSITIVE', 'yes', 'no') yes_no FROM comments",
    ),
    shape("sel-compare-two-langs", "SELECT id, {S}(txt, 'en') = {S}(txt, 'fr') FROM comments"),
    shape("sel-lower", "SELECT id, LOWER({S}(txt, lang)) FROM comments"),
    shape("sel-coalesce", "SELECT id, COALESCE({S}(txt, lang), 'none') FROM comments"),
    shape(
        "sel-same-call-twice",
        "SELECT id, {S}(txt, 'en'), {C}(txt, 'en'), {S}(txt, 'en') FROM comments",
    ),
    shape("sel-star-and-call", "SELECT *, {S}(txt, 'en') FROM comments"),
    shape("sel-qualified-star", "SELECT c.*, {C}(c.txt, c.lang) conf FROM comments c"),
    shape(
        "sel-uppercase-name", "SELECT id, AWS_COMPREHEND_DETECT_SENTIMENT(txt, 'en') FROM comments"
    ),
    shape("sel-space-before-paren", "SELECT id, {S} (txt, 'en') FROM comments"),
    shape("sel-spacing-inside-call", "SELECT id, {S}( txt ,  'en' ) FROM comments"),
    shape("sel-comment-inside-call", "SELECT id, {S}(txt /* inner */, 'en') FROM comments"),
    shape(
        "sel-comment-before-item",
        "SELECT id, /* {S}(txt, 'en') */ {S}(txt, 'en') FROM comments",
    ),
    shape(
        "sel-emoji-in-unaliased-item",
        "SELECT id, CONCAT({S}(txt, 'en'), '😀') FROM comments",
    ),
    shape(
        "sel-emoji-in-aliased-item", "SELECT id, CONCAT({S}(txt, 'en'), '😀') AS e FROM comments"
    ),
    shape(
        "sel-field-order",
        "SELECT id FROM comments ORDER BY FIELD({S}(txt, 'en'), 'POSITIVE',"
        " 'NEGATIVE', 'NEUTRAL', 'MIXED'), id",
        ordered=True,
    ),
    shape(
        "sel-name-in-string",
        "SELECT id, '{S}(txt)' AS s, {S}(txt, 'en') FROM comments",
    ),
    shape("sel-quoted-alias", "SELECT id, {S}(txt, 'en') AS `odd ``name`` ` FROM comments"),
    shape("sel-json-object", "SELECT id, JSON_OBJECT('lab', {S}(txt, 'en')) FROM comments"),
    shape(
        "sel-charset-collation",
        "SELECT CHARSET({S}(txt, 'en')), COLLATION({S}(txt, 'en')) FROM comments WHERE id = 1",
    ),
    shape(
        "sel-six-sites",
        "SELECT id, {S}(txt, 'en'), {S}(txt, 'fr'), {S}(txt, 'de'), {C}(txt, 'en'),"
        " {C}(txt, 'fr'), {C}(txt, 'de') FROM comments",
    ),
    shape(
        "sel-multiline-comments",
        "SELECT id, -- a comment {S}(x)\n {S}(txt, 'en') # another\n FROM comments",
    ),
    shape(
        "sel-sql-no-cache",
        "SELECT SQL_NO_CACHE {S}(txt, 'en') FROM comments",
    ),
    shape(
        "sel-straight-join-modifier",
        "SELECT STRAIGHT_JOIN {S}(txt, 'en') FROM comments",
    ),
    shape("sel-distinct-first-item", "SELECT DISTINCT {S}(txt, 'en') FROM comments"),
    shape("sel-trailing-semicolon", "SELECT id, {S}(txt, 'en') FROM comments;"),
    shape(
        "sel-long-item-name",
        "SELECT CONCAT({S}(txt, 'en'), '" + "x" * 300 + "') FROM comments WHERE id < 4",
    ),
]

ARGUMENTS = [
    shape("arg-concat", "SELECT id, {S}(CONCAT(txt, '!'), 'en') FROM comments"),
    shape("arg-upper-lang-column", "SELECT id, {S}(UPPER(txt), lang) FROM comments"),
    shape(
        "arg-coalesce-both",
        "SELECT id, {S}(COALESCE(txt, 'missing'), COALESCE(lang, 'en')) FROM comments",
    ),
    shape("arg-concat-columns", "SELECT id, {S}(CONCAT(grp, ':', n), 'en') FROM comments"),
    shape("arg-integer", "SELECT id, {S}(n, 'en') FROM comments"),
    shape("arg-decimal", "SELECT id, {C}(n * 1.5, 'en') FROM comments"),
    shape("arg-trim", "SELECT id, {C}(TRIM(txt), 'en') FROM comments"),
    shape("arg-substring", "SELECT id, {S}(SUBSTRING(txt, 1, 3), 'en') FROM comments"),
    shape(
        "arg-convert-latin1",
        "SELECT id, {S}(CONVERT(txt USING latin1), 'en') FROM comments"
        " WHERE id NOT IN (10, 12, 18)",
    ),
    shape("arg-binary", "SELECT id, {S}(CAST(txt AS BINARY), 'en') FROM comments"),
    shape("arg-collate", "SELECT id, {S}(txt COLLATE utf8mb4_bin, 'en') FROM comments"),
    shape(
        "arg-lang-if",
        "SELECT id, {S}(REPLACE(txt, 'o', '0'), IF(grp = 'a', 'en', 'fr')) FROM comments",
    ),
    shape(
        "arg-lang-case",
        "SELECT id, {S}(txt, CASE grp WHEN 'a' THEN 'en' WHEN 'b' THEN 'de' ELSE 'es' END)"
        " FROM comments",
    ),
    shape(
        "arg-scalar-subquery",
        "SELECT id, {S}((SELECT r.txt FROM replies r WHERE r.id = 1), 'en') AS lab FROM comments",
    ),
    shape(
        "arg-correlated-subquery",
        "SELECT id, {S}((SELECT MAX(r.txt) FROM replies r WHERE r.comment_id = c.id), 'en')"
        " FROM comments c",
    ),
    shape("arg-parenthesised", "SELECT id, {S}((txt), ('en')) FROM comments"),
    shape("arg-constant-text-column-lang", "SELECT id, {S}('Good', lang) FROM comments"),
]

CONSTANTS = [
    shape("const-both", "SELECT {S}('Good', 'en'), {C}('Good', 'en')"),
    shape(
        "const-case-variants",
        "SELECT {S}('Good', 'en') AS a, {S}('GOOD', 'en') AS b, {S}('good', 'en') AS c,"
        " {C}('Good', 'en') AS d, {C}('GOOD', 'en') AS e",
    ),
    shape(
        "const-null-empty", "SELECT {S}(NULL, 'en'), {C}(NULL, 'en'), {S}('', 'en'), {S}('x', NULL)"
    ),
    shape("const-quotes-backslashes", "SELECT {S}('It''s a \\\\ \"quote\"', 'en')"),
    shape(
        "const-multibyte",
        "SELECT {S}('emoji 😀', 'en'), {C}('日本語', 'ja')",
    ),
    shape("const-concat", "SELECT {S}(CONCAT('Go', 'od'), 'en')"),
    shape("const-hex", "SELECT {S}(X'476F6F64', 'en')"),
    shape("const-in-from-query", "SELECT id, {S}('constant', 'en') AS k FROM comments"),
    shape(
        "const-vs-row",
        "SELECT id FROM comments WHERE {S}('Good', 'en') = {S}(txt, 'en')",
    ),
    shape("const-user-variable", "SELECT {S}(@v, 'en')", setup=["SET @v = 'Good'"]),
    shape("const-from-dual", "SELECT {C}('Good', 'en') FROM DUAL"),
    shape("const-uppercase-lang", "SELECT {S}('Good', 'EN'), {S}('Good', 'zh-tw')"),
    shape("const-values", "VALUES ({S}('Good', 'en'), {C}('Good', 'en'))", xfail=STANDALONE_VALUES),
    shape(
        "const-derived-literals",
        "SELECT {S}(t, 'en') FROM (SELECT 'Good' AS t UNION ALL SELECT 'Bad') d",
    ),
    shape("const-set-variable", "SET @x = {S}('Good', 'fr')", then=["SELECT @x"]),
]

WHERE = [
    shape("where-equals", "SELECT id FROM comments WHERE {S}(txt, 'en') = 'POSITIVE'"),
    shape(
        "where-and-ml-free",
        "SELECT id FROM comments WHERE grp = 'a' AND {S}(txt, lang) <> 'NEGATIVE'",
    ),
    shape("where-or", "SELECT id FROM comments WHERE grp = 'b' OR {C}(txt, 'en') > 0.5"),
    shape(
        "where-in-list",
        "SELECT id FROM comments WHERE {S}(txt, 'en') IN ('POSITIVE', 'MIXED') AND n > 3",
    ),
    shape("where-between", "SELECT id FROM comments WHERE {C}(txt, 'en') BETWEEN 0.2 AND 0.7"),
    shape("where-null-safe", "SELECT id FROM comments WHERE NOT ({S}(txt, 'en') <=> 'NEUTRAL')"),
    shape("where-is-null", "SELECT id FROM comments WHERE {S}(txt, 'en') IS NULL"),
    shape("where-case-insensitive", "SELECT id FROM comments WHERE {S}(txt, 'en') = 'positive'"),
    shape("where-like", "SELECT id FROM comments WHERE {S}(txt, 'en') LIKE 'NEG%'"),
    shape(
        "where-ci-text-filter",
        "SELECT id, txt, {S}(txt, 'en') FROM comments WHERE txt = 'good'",
    ),
    shape(
        "where-nondeterministic-conjunct",
        "SELECT id FROM comments WHERE n > 5 AND RAND() < 2 AND {S}(txt, 'en') <> 'MIXED'",
    ),
    shape(
        "where-two-calls",
        "SELECT id FROM comments WHERE id < 10 AND {C}(txt, 'en') < {C}(txt, 'fr')",
    ),
    shape(
        "where-call-vs-call-of-expr",
        "SELECT id FROM comments WHERE {S}(txt, 'en') = {S}(UPPER(txt), 'en')",
    ),
    shape(
        "where-row-constructor",
        "SELECT id FROM comments WHERE (grp, {S}(txt, 'en')) IN (('a', 'POSITIVE'),"
        " ('b', 'NEGATIVE'), ('c', 'MIXED'))",
    ),
    shape(
        "where-warnings",
        "SELECT id, {S}(txt, 'en') FROM comments WHERE n = 'abc' OR n = 3",
        then=["SHOW WARNINGS"],
    ),
]

GROUPING = [
    shape("group-by-alias", "SELECT {S}(txt, 'en') AS lab, COUNT(*) FROM comments GROUP BY lab"),
    shape(
        "group-by-call",
        "SELECT {S}(txt, 'en'), COUNT(*) FROM comments GROUP BY {S}(txt, 'en')",
    ),
    shape(
        "having-sum",
        "SELECT grp, COUNT(*) FROM comments GROUP BY grp"
        " HAVING SUM({S}(txt, 'en') = 'POSITIVE') > 0",
    ),
    shape(
        "agg-avg-case",
        "SELECT grp, AVG(CASE {S}(txt, lang) WHEN 'POSITIVE' THEN 1 WHEN 'NEGATIVE' THEN -1"
        " ELSE 0 END) AS score FROM comments GROUP BY grp",
    ),
    shape("agg-count-distinct", "SELECT COUNT(DISTINCT {S}(txt, 'en')) FROM comments"),
    shape(
        "agg-max-min-sum",
        "SELECT grp, MAX({C}(txt, 'en')), MIN({C}(txt, 'en')), SUM({C}(txt, 'en'))"
        " FROM comments GROUP BY grp",
    ),
    shape(
        "agg-group-concat",
        "SELECT GROUP_CONCAT({S}(txt, 'en') ORDER BY id SEPARATOR ',') FROM comments",
    ),
    shape(
        "agg-argument-is-aggregate",
        "SELECT grp, {S}(GROUP_CONCAT(txt ORDER BY id), 'en') FROM comments GROUP BY grp",
    ),
    shape(
        "agg-max-argument-having",
        "SELECT grp, {S}(MAX(txt), 'en') AS lab FROM comments GROUP BY grp HAVING COUNT(*) > 1",
    ),
    shape(
        "having-max-conf",
        "SELECT grp, COUNT(*) FROM comments GROUP BY grp HAVING MAX({C}(txt, 'en')) > 0.3",
    ),
    shape(
        "group-by-column-and-call",
        "SELECT lang, {S}(txt, lang), COUNT(*) FROM comments GROUP BY lang, {S}(txt, lang)",
    ),
    shape(
        "group-with-rollup",
        "SELECT {S}(txt, 'en') AS lab, SUM({C}(txt, 'en')) FROM comments GROUP BY lab WITH ROLLUP",
    ),
    shape(
        "having-call-on-group-column",
        "SELECT grp FROM comments GROUP BY grp HAVING {S}(grp, 'en') <> 'MIXED'",
    ),
    shape(
        "agg-sum-if",
        "SELECT SUM(IF({S}(txt, 'en') = 'NEGATIVE', 1, 0)) AS neg, COUNT(*) FROM comments"
        " WHERE txt IS NOT NULL",
    ),
    shape(
        "group-by-ordinal",
        "SELECT {S}(txt, 'en') AS lab, COUNT(*) AS c FROM comments GROUP BY 1 ORDER BY c DESC, lab",
        ordered=True,
    ),
    shape(
        "having-alias-of-call",
        "SELECT grp, {S}(grp, 'en') lab FROM comments GROUP BY grp HAVING lab = 'POSITIVE'",
    ),
    shape(
        "agg-group-concat-ordered-by-call",
        "SELECT grp, GROUP_CONCAT(id ORDER BY {C}(txt, 'en'), id) FROM comments GROUP BY grp",
    ),
    shape(
        "agg-two-aggregate-arguments",
        "SELECT grp, {S}(MIN(txt), 'en'), {C}(CONCAT(MAX(txt), 'x'), 'en') FROM comments"
        " GROUP BY grp",
    ),
    shape(
        "having-alias-without-group",
        "SELECT id, {S}(txt, 'en') AS lab FROM comments HAVING lab <> 'MIXED'",
    ),
]

ORDERING = [
    shape("distinct-call", "SELECT DISTINCT {S}(txt, lang) AS lab FROM comments"),
    shape("distinct-text-and-call", "SELECT DISTINCT txt, {S}(txt, 'en') FROM comments"),
    shape(
        "order-by-call",
        "SELECT id, txt FROM comments ORDER BY {S}(txt, 'en'), id",
        ordered=True,
    ),
    shape(
        "order-desc-limit",
        "SELECT id FROM comments ORDER BY {C}(txt, lang) DESC, id LIMIT 5",
        ordered=True,
    ),
    shape(
        "order-alias-limit-offset",
        "SELECT id, {C}(txt, 'en') AS c FROM comments ORDER BY c, id LIMIT 3 OFFSET 2",
        ordered=True,
    ),
    shape(
        "order-two-calls-limit-comma",
        "SELECT id FROM comments ORDER BY {S}(txt, 'en') DESC, {C}(txt, 'en'), id LIMIT 4, 4",
        ordered=True,
    ),
    shape(
        "order-by-ordinal",
        "SELECT id, {S}(txt, 'en') FROM comments ORDER BY 2, 1",
        ordered=True,
    ),
    shape(
        "order-by-select-alias",
        "SELECT id, {S}(txt, 'en') AS lab FROM comments ORDER BY lab, id",
        ordered=True,
    ),
    shape("limit-zero", "SELECT id, {S}(txt, 'en') FROM comments LIMIT 0"),
    shape("empty-where", "SELECT {S}(txt, 'en') FROM comments WHERE 1 = 0"),
    shape(
        "found-rows",
        "SELECT SQL_CALC_FOUND_ROWS id FROM comments WHERE {S}(txt, 'en') <> 'MIXED'"
        " ORDER BY id LIMIT 2",
        ordered=True,
        then=["SELECT FOUND_ROWS()"],
    ),
    shape(
        "for-update",
        "SELECT id, {S}(txt, lang) FROM comments WHERE id < 5 FOR UPDATE",
    ),
]

JOINS = [
    shape(
        "join-inner",
        "SELECT c.id, r.id, {S}(r.txt, c.lang) FROM comments c"
        " JOIN replies r ON r.comment_id = c.id",
    ),
    shape(
        "join-left-null-side",
        "SELECT c.id, r.id, {S}(r.txt, 'en') FROM comments c"
        " LEFT JOIN replies r ON r.comment_id = c.id",
    ),
    shape(
        "join-call-in-on",
        "SELECT c.id, r.id FROM comments c JOIN replies r"
        " ON r.comment_id = c.id AND {S}(r.txt, 'en') = {S}(c.txt, 'en')",
    ),
    shape(
        "join-left-call-in-on",
        "SELECT c.id, r.id FROM comments c LEFT JOIN replies r"
        " ON r.comment_id = c.id AND {S}(r.txt, 'en') <> 'NEGATIVE'",
    ),
    shape(
        "join-lang-from-other-table",
        "SELECT c.id, l.name, {S}(c.txt, l.code) FROM comments c JOIN langs l ON l.code = c.lang",
    ),
    shape(
        "join-right",
        "SELECT c.id, r.id FROM comments c RIGHT JOIN replies r ON r.comment_id = c.id"
        " WHERE {S}(r.txt, 'en') <> 'MIXED'",
    ),
    shape(
        "join-self",
        "SELECT a.id, b.id FROM comments a JOIN comments b ON a.id < b.id AND a.grp = b.grp"
        " WHERE {S}(a.txt, 'en') = {S}(b.txt, 'en')",
    ),
    shape(
        "join-argument-from-both-sides",
        "SELECT c.id, r.id, {S}(CONCAT(c.txt, r.txt), 'en') FROM comments c"
        " JOIN replies r ON r.comment_id = c.id",
    ),
    shape(
        "join-comma",
        "SELECT c.id FROM comments c, replies r WHERE r.comment_id = c.id"
        " AND {C}(r.txt, 'en') > {C}(c.txt, 'en')",
    ),
    shape(
        "join-derived-with-call",
        "SELECT c.id, x.lab FROM comments c JOIN (SELECT comment_id, {S}(txt, 'en') AS lab"
        " FROM replies) x ON x.comment_id = c.id",
    ),
    shape(
        "join-on-only-calls",
        "SELECT c.id, r.id FROM comments c JOIN replies r ON {S}(r.txt, 'en') = {S}(c.txt, 'en')",
    ),
]

SUBQUERIES = [
    shape(
        "subq-scalar-uncorrelated",
        "SELECT id, (SELECT {S}(r.txt, 'en') FROM replies r WHERE r.id = 1) AS first_lab"
        " FROM comments",
    ),
    shape(
        "subq-in",
        "SELECT id FROM comments WHERE id IN"
        " (SELECT comment_id FROM replies WHERE {S}(txt, 'en') = 'POSITIVE')",
    ),
    shape(
        "subq-exists-correlated",
        "SELECT id FROM comments c WHERE EXISTS (SELECT 1 FROM replies r"
        " WHERE r.comment_id = c.id AND {S}(r.txt, 'en') <> 'NEGATIVE')",
    ),
    shape(
        "subq-scalar-correlated-count",
        "SELECT id, (SELECT COUNT(*) FROM replies r WHERE r.comment_id = c.id"
        " AND {S}(r.txt, 'en') = 'POSITIVE') AS pos FROM comments c",
    ),
    shape(
        "subq-outer-column-as-input",
        "SELECT id, (SELECT {S}(c.txt, r.lang) FROM replies r WHERE r.id = 2) FROM comments c",
    ),
    shape(
        "subq-compare-to-scalar",
        "SELECT id FROM comments WHERE {S}(txt, 'en') ="
        " (SELECT {S}(txt, 'en') FROM replies WHERE id = 1)",
    ),
    shape(
        "subq-in-calls-both-sides",
        "SELECT id FROM comments WHERE {S}(txt, 'en') IN (SELECT {S}(txt, lang) FROM replies)",
    ),
    shape(
        "subq-not-exists-call-outside",
        "SELECT id FROM comments c WHERE NOT EXISTS (SELECT 1 FROM replies r"
        " WHERE r.comment_id = c.id) AND {S}(c.txt, 'en') IS NOT NULL",
    ),
    shape(
        "subq-avg-uncorrelated",
        "SELECT id FROM comments WHERE {C}(txt, 'en') > (SELECT AVG({C}(txt, 'en')) FROM comments)",
    ),
    shape(
        "subq-all-correlated",
        "SELECT id FROM comments c WHERE {C}(c.txt, 'en') >= ALL"
        " (SELECT {C}(c2.txt, 'en') FROM comments c2 WHERE c2.grp = c.grp)",
    ),
]

DERIVED_AND_CTES = [
    shape(
        "derived-group",
        "SELECT lab, COUNT(*) FROM (SELECT {S}(txt, 'en') AS lab FROM comments) d GROUP BY lab",
    ),
    shape(
        "derived-outer-call",
        "SELECT d.id, {S}(d.t, 'en') FROM (SELECT id, UPPER(txt) AS t FROM comments"
        " WHERE grp <> 'c') d",
    ),
    shape(
        "derived-limited-inner-call",
        "SELECT * FROM (SELECT id, {S}(txt, lang) AS lab FROM comments ORDER BY id LIMIT 5) d"
        " ORDER BY id",
        ordered=True,
    ),
    shape(
        "derived-limited-outer-call",
        "SELECT d.id, {C}(d.txt, 'en') FROM (SELECT id, txt FROM comments"
        " ORDER BY id DESC LIMIT 4) d",
    ),
    shape(
        "derived-calls-inside-and-outside",
        "SELECT id, lab, {C}(txt, 'en') FROM (SELECT id, txt, {S}(txt, 'en') AS lab"
        " FROM comments) d",
    ),
    shape("derived-unaliased-item", "SELECT * FROM (SELECT id, {S}(txt, 'en') FROM comments) d"),
    shape(
        "derived-filter-on-result",
        "SELECT x.lab FROM (SELECT {S}(txt, 'en') lab FROM comments WHERE id < 5) x"
        " WHERE x.lab <> 'MIXED'",
    ),
    shape(
        "cte-plain",
        "WITH p AS (SELECT id, txt FROM comments WHERE grp = 'a') SELECT id, {S}(txt, 'en') FROM p",
    ),
    shape(
        "cte-call-inside",
        "WITH s AS (SELECT id, {S}(txt, 'en') AS lab FROM comments)"
        " SELECT lab, COUNT(*) FROM s GROUP BY lab",
    ),
    shape(
        "cte-recursive-outer-call",
        "WITH RECURSIVE r (k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM r WHERE k < 6)"
        " SELECT k, {S}(CONCAT('text ', k), 'en') FROM r",
    ),
    shape(
        "cte-recursive-strings",
        "WITH RECURSIVE r (k, t) AS (SELECT 1, CAST('a' AS CHAR(20)) UNION ALL"
        " SELECT k + 1, CONCAT(t, 'b') FROM r WHERE k < 5) SELECT k, t, {C}(t, 'en') FROM r",
    ),
    shape(
        "cte-calls-inside-and-outside",
        "WITH s AS (SELECT id, txt, {S}(txt, 'en') AS lab FROM comments)"
        " SELECT id, lab, {C}(txt, 'en') FROM s",
    ),
    shape(
        "cte-read-in-subquery",
        "WITH p AS (SELECT id, txt FROM comments WHERE grp = 'a') SELECT id FROM comments"
        " WHERE id IN (SELECT id FROM p WHERE {S}(txt, 'en') = 'NEGATIVE')",
    ),
    shape(
        "cte-read-in-union-branches",
        "WITH p AS (SELECT id, txt FROM comments WHERE grp = 'a') SELECT {S}(txt, 'en') FROM p"
        " UNION ALL SELECT {C}(txt, 'en') FROM p",
    ),
    shape(
        "cte-chained",
        "WITH a AS (SELECT id, txt FROM comments), b AS (SELECT id, txt FROM a WHERE id > 10)"
        " SELECT id, {S}(txt, 'en') FROM b",
    ),
    shape(
        "cte-recursive-call-in-body",
        "WITH RECURSIVE r (k, lab) AS (SELECT 1, {S}('seed', 'en') UNION ALL"
        " SELECT k + 1, {S}(CONCAT('seed', k), 'en') FROM r WHERE k < 4) SELECT * FROM r",
        xfail=RECURSIVE_BODY,
    ),
]

SET_OPERATIONS = [
    shape(
        "union-distinct",
        "SELECT {S}(txt, 'en') FROM comments UNION SELECT {S}(txt, 'en') FROM replies",
    ),
    shape(
        "union-all",
        "SELECT id, {S}(txt, 'en') AS lab FROM comments UNION ALL"
        " SELECT id, {S}(txt, lang) FROM replies",
    ),
    shape(
        "union-order-limit",
        "SELECT id FROM comments WHERE {S}(txt, 'en') = 'POSITIVE' UNION"
        " SELECT id FROM replies WHERE {S}(txt, 'en') = 'NEGATIVE' ORDER BY id LIMIT 5",
        ordered=True,
    ),
    shape(
        "union-in-derived",
        "SELECT lab, COUNT(*) FROM (SELECT {S}(txt, 'en') lab FROM comments UNION ALL"
        " SELECT {S}(txt, 'en') FROM replies) u GROUP BY lab",
    ),
    shape(
        "union-row-and-constant",
        "SELECT {S}(txt, 'en') FROM comments WHERE id = 1 UNION ALL SELECT {S}('Good', 'en')",
    ),
    shape("union-constants", "SELECT {S}('Good', 'en') UNION SELECT {S}('Bad', 'en')"),
    shape(
        "union-global-order-by-call",
        "SELECT id, txt FROM comments UNION ALL SELECT id, txt FROM replies"
        " ORDER BY {S}(txt, 'en'), id",
        ordered=True,
    ),
    shape(
        "intersect",
        "SELECT id FROM comments INTERSECT"
        " SELECT comment_id FROM replies WHERE {S}(txt, 'en') <> 'MIXED'",
    ),
    shape(
        "except",
        "SELECT id FROM comments WHERE {S}(txt, 'en') <> 'NEUTRAL' EXCEPT"
        " SELECT comment_id FROM replies",
    ),
]

WINDOWS_AND_MISC = [
    shape(
        "window-partition-by-call",
        "SELECT id, ROW_NUMBER() OVER (PARTITION BY {S}(txt, 'en') ORDER BY id) FROM comments",
    ),
    shape("window-running-sum", "SELECT id, SUM({C}(txt, 'en')) OVER (ORDER BY id) FROM comments"),
    shape("window-lag", "SELECT id, LAG({S}(txt, 'en')) OVER (ORDER BY id) FROM comments"),
    shape(
        "window-rank-by-call",
        "SELECT id, RANK() OVER (ORDER BY {C}(txt, 'en') DESC) AS r FROM comments",
    ),
    shape("capture-column-named-v", "SELECT id, {S}(v, 'en') FROM capture"),
    shape("capture-columns-named-k0-k1", "SELECT id, {S}(k0, k1) FROM capture"),
    shape("capture-table-alias-mlr", "SELECT id, {S}(_mlr.txt, 'en') FROM comments _mlr"),
    shape(
        "select-into-variable",
        "SELECT {S}(txt, 'en') INTO @lab FROM comments WHERE id = 3",
        then=["SELECT @lab"],
    ),
    shape(
        "set-variable-from-subquery",
        "SET @x = (SELECT {S}(txt, 'en') FROM comments WHERE id = 4)",
        then=["SELECT @x"],
    ),
    shape(
        "sql-prepare-execute",
        "EXECUTE st",
        setup=["PREPARE st FROM 'SELECT id, {S}(txt, ''en'') FROM comments'"],
        xfail=SQL_PREPARE,
    ),
]

READ_SHAPES = [
    *SELECT_LIST,
    *ARGUMENTS,
    *CONSTANTS,
    *WHERE,
    *GROUPING,
    *ORDERING,
    *JOINS,
    *SUBQUERIES,
    *DERIVED_AND_CTES,
    *SET_OPERATIONS,
    *WINDOWS_AND_MISC,
]


def run_setup(pair: Pair, statements: Sequence[str]) -> None:
    """Run setup statements on both sides (the proxy side must accept them too)."""
    for sql in statements:
        run(pair.direct, sql)
        run_through_proxy(pair, sql)


@pytest.mark.parametrize("case", READ_SHAPES)
def test_read_shape(pair: Pair, case: Shape) -> None:
    """One read shape: same names, rows and follow-up results through the proxy."""
    pair.ensure_open()
    run_setup(pair, case.setup)
    compare(pair, case.sql, case.ordered)
    for follow_up in case.then:
        compare(pair, follow_up, ordered=True)


# --------------------------------------------------------------------------------------
# Writes: affected rows and the tables afterwards
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Write:
    """A writing statement; ``tables`` are compared afterwards (rows and column
    definitions)."""

    sql: str
    tables: tuple[str, ...] = ("w",)
    setup: tuple[str, ...] = ()
    then: tuple[str, ...] = ()


def write(
    name: str,
    sql: str,
    *,
    tables: Sequence[str] = ("w",),
    setup: Sequence[str] = (),
    then: Sequence[str] = (),
    xfail: str | None = None,
) -> Any:
    marks = [known_failure(xfail)] if xfail else []
    value = Write(fmt(sql), tuple(tables), tuple(map(fmt, setup)), tuple(map(fmt, then)))
    return pytest.param(value, id=name, marks=marks)


WRITE_SHAPES = [
    write(
        "insert-select",
        "INSERT INTO w (txt, lang, lab, conf) SELECT txt, lang, {S}(txt, lang), {C}(txt, lang)"
        " FROM comments WHERE txt IS NOT NULL",
    ),
    write(
        "insert-values-literals",
        "INSERT INTO w (txt, lang, lab) VALUES ('Good', 'en', {S}('Good', 'en')),"
        " ('Bad', 'en', {S}('Bad', 'en'))",
    ),
    write(
        "insert-values-last-insert-id",
        "INSERT INTO w (txt, lab, conf) VALUES ('x', {S}('x', 'en'), {C}('x', 'en'))",
        then=["SELECT LAST_INSERT_ID(), ROW_COUNT()"],
    ),
    write("update-where", "UPDATE w SET lab = {S}(txt, lang) WHERE id > 2"),
    write("update-both", "UPDATE w SET lab = {S}(txt, lang), conf = {C}(txt, lang)"),
    write(
        "update-assignment-order",
        "UPDATE w SET txt = UPPER(txt), lab = {S}(txt, 'en')",
        xfail=ASSIGNMENT_ORDER,
    ),
    write(
        "update-where-call",
        "UPDATE w SET n = n + 1 WHERE {S}(txt, lang) = 'POSITIVE'",
        then=["SELECT ROW_COUNT()"],
    ),
    write("update-order-limit", "UPDATE w SET lab = {S}(txt, 'en') ORDER BY id DESC LIMIT 2"),
    write(
        "update-multi-table",
        "UPDATE w JOIN comments c ON c.id = w.id SET w.lab = {S}(c.txt, c.lang)",
    ),
    write(
        "update-correlated-subquery",
        "UPDATE w SET lab = (SELECT {S}(c.txt, 'en') FROM comments c WHERE c.id = w.id)",
    ),
    write("update-constant", "UPDATE w SET lab = {S}('const', 'en') WHERE id = 1"),
    write("update-expression-arg", "UPDATE w SET conf = {C}(CONCAT(txt, n), 'en') WHERE n > 1"),
    write("delete-where-call", "DELETE FROM w WHERE {S}(txt, lang) = 'NEGATIVE'"),
    write(
        "delete-order-limit",
        "DELETE FROM w WHERE {C}(txt, 'en') < 0.5 ORDER BY id LIMIT 2",
    ),
    write(
        "delete-multi-table",
        "DELETE w FROM w JOIN comments c ON c.id = w.id WHERE {S}(c.txt, 'en') = 'POSITIVE'",
    ),
    write(
        "delete-in-subquery",
        "DELETE FROM w WHERE id IN (SELECT id FROM comments WHERE {S}(txt, 'en') = 'MIXED')",
    ),
    write(
        "replace-select",
        "REPLACE INTO w (id, txt, lang, lab) SELECT id, txt, lang, {S}(txt, lang)"
        " FROM comments WHERE id <= 5",
    ),
    write(
        "replace-values",
        "REPLACE INTO w (id, txt, lab) VALUES (1, 'Good', {S}('Good', 'en'))",
    ),
    write(
        "ctas",
        "CREATE TABLE made AS SELECT id, {S}(txt, lang) AS lab, {C}(txt, lang) AS conf"
        " FROM comments",
        tables=("made",),
    ),
    write(
        "ctas-unaliased",
        "CREATE TABLE made AS SELECT id, {S}(txt, 'en') FROM comments",
        tables=("made",),
    ),
    write(
        "ctas-constant",
        "CREATE TABLE made AS SELECT {S}('Good', 'en') AS lab, {C}('Good', 'en') AS conf,"
        " {S}('', 'en') AS nothing",
        tables=("made",),
    ),
    write(
        "insert-select-self",
        "INSERT INTO w (txt, lab) SELECT txt, {S}(txt, 'en') FROM w",
    ),
    write(
        "insert-on-duplicate-values",
        "INSERT INTO w (id, txt, lab) VALUES (1, 'dup', 'x')"
        " ON DUPLICATE KEY UPDATE lab = {S}(VALUES(txt), 'en')",
        xfail=ODKU_VALUES,
    ),
    write(
        "insert-on-duplicate-column",
        "INSERT INTO w (id, txt, lab) VALUES (1, 'dup', 'x')"
        " ON DUPLICATE KEY UPDATE lab = {S}(txt, 'en')",
        xfail=ODKU_COLUMN,
    ),
    write(
        "insert-select-on-duplicate",
        "INSERT INTO w (id, txt, lab) SELECT id, txt, {S}(txt, 'en') FROM comments"
        " WHERE id <= 3 ON DUPLICATE KEY UPDATE lab = VALUES(lab)",
    ),
    write(
        "insert-select-from-dual",
        "INSERT INTO w (txt, lab) SELECT 'k', {S}('k', 'en') FROM DUAL",
    ),
    write(
        "insert-select-union",
        "INSERT INTO w (txt, lab) SELECT txt, {S}(txt, 'en') FROM replies WHERE id < 4"
        " UNION ALL SELECT txt, {S}(txt, 'fr') FROM comments WHERE id > 20",
    ),
    write(
        "create-view",
        "CREATE VIEW vv AS SELECT id, {S}(txt, 'en') AS lab FROM comments",
        tables=("vv",),
        xfail=VIEW,
    ),
]


def table_state(connection: pymysql.Connection[Any], table: str) -> tuple[Any, ...]:
    """The rows of ``table`` in key order, and its column definitions."""
    columns = run(
        connection,
        "SELECT column_name, column_type, is_nullable, collation_name"
        " FROM information_schema.columns WHERE table_schema = DATABASE()"
        f" AND table_name = '{table}' ORDER BY ordinal_position",
    ).rows
    rows = run(connection, f"SELECT * FROM {table} ORDER BY 1").rows
    return columns, rows


@pytest.mark.parametrize("case", WRITE_SHAPES)
def test_write_shape(fresh: Pair, case: Write) -> None:
    """One write shape: same affected rows, follow-ups and tables through the proxy."""
    run_setup(fresh, case.setup)
    compare(fresh, case.sql)
    for follow_up in case.then:
        compare(fresh, follow_up, ordered=True)
    for table in case.tables:
        assert table_state(fresh.via_proxy, table) == table_state(fresh.direct, table), table


# --------------------------------------------------------------------------------------
# Transactions
# --------------------------------------------------------------------------------------


def in_transaction(pair: Pair, statements: Sequence[str]) -> list[Outcome]:
    """Run ``statements`` on both sides with autocommit off, comparing each result; the
    direct outcomes."""
    for side in (pair.via_proxy, pair.direct):
        side.autocommit(False)
    try:
        return [compare(pair, fmt(sql)) for sql in statements]
    finally:
        for side in (pair.via_proxy, pair.direct):
            side.rollback()
            side.autocommit(True)


@pytest.mark.parametrize(
    "statement",
    [
        pytest.param(
            "INSERT INTO w (txt, lab) SELECT txt, {S}(txt, lang) FROM comments", id="insert"
        ),
        pytest.param("UPDATE w SET lab = {S}(txt, lang), conf = {C}(txt, lang)", id="update"),
        pytest.param(
            "DELETE FROM w WHERE {S}(txt, lang) <> 'MIXED'",
            id="delete",
        ),
    ],
)
def test_rollback_undoes_an_ml_write_as_direct(fresh: Pair, statement: str) -> None:
    """Inside a transaction the write is visible, and ROLLBACK undoes it on both sides."""
    before = table_state(fresh.direct, "w")
    _, inside, _ = in_transaction(fresh, [statement, "SELECT * FROM w ORDER BY id", "ROLLBACK"])
    assert inside.rows != before[1]
    assert table_state(fresh.via_proxy, "w") == before
    assert table_state(fresh.direct, "w") == before


def test_ctas_commits_implicitly_through_the_proxy_too(fresh: Pair) -> None:
    """CTAS ends the open transaction in MySQL: the earlier INSERT survives ROLLBACK."""
    in_transaction(
        fresh,
        [
            "INSERT INTO w (txt, lab) VALUES ('kept', {S}('kept', 'en'))",
            "CREATE TABLE made AS SELECT id, {S}(txt, 'en') AS lab FROM w",
            "INSERT INTO w (txt, lab) VALUES ('undone', {S}('undone', 'en'))",
            "ROLLBACK",
        ],
    )
    for table in ("w", "made"):
        assert table_state(fresh.via_proxy, table) == table_state(fresh.direct, table)
    assert any(row[1] == "kept" for row in table_state(fresh.direct, "w")[1])
    assert not any(row[1] == "undone" for row in table_state(fresh.direct, "w")[1])


def test_read_only_transaction_allows_ml_reads(fresh: Pair) -> None:
    """An ML read inside START TRANSACTION READ ONLY works as it does directly."""
    in_transaction(
        fresh,
        [
            "START TRANSACTION READ ONLY",
            "SELECT id, {S}(txt, lang), {C}(txt, lang) FROM comments",
            "COMMIT",
        ],
    )


# --------------------------------------------------------------------------------------
# Generated shapes
# --------------------------------------------------------------------------------------

ITEMS = (
    "id",
    "txt",
    "grp",
    "{S}(txt, lang)",
    "{C}(txt, 'en')",
    "CONCAT({S}(txt, 'en'), '/', grp)",
    "{S}(UPPER(txt), 'fr')",
    "ROUND({C}(CONCAT(grp, txt), lang), 3)",
    "n * {C}(txt, 'de')",
    "CASE WHEN {C}(txt, lang) > 0.5 THEN 'hi' ELSE 'lo' END",
    "COALESCE({S}(txt, 'en'), 'none')",
    "{S}(txt, 'en') = {S}(txt, 'fr')",
)
CONDITIONS = (
    "grp = 'a'",
    "n > 3",
    "txt IS NOT NULL",
    "lang = 'en'",
    "id % 2 = 0",
    "{S}(txt, 'en') <> 'MIXED'",
    "{C}(txt, lang) > 0.3",
    "{S}(txt, lang) IN ('POSITIVE', 'NEUTRAL')",
    "{C}(UPPER(txt), 'en') < {C}(txt, 'en')",
    "({S}(txt, 'de') = 'NEGATIVE' OR grp = 'b')",
)
ORDER_KEYS = ("{S}(txt, 'en')", "{C}(txt, lang) DESC", "grp", "n DESC", "{S}(txt, lang) DESC")


def generated_selects() -> st.SearchStrategy[Generated]:
    return selects("comments", ITEMS, CONDITIONS, ORDER_KEYS, lambda item: "{" in item)


@settings(
    derandomize=True,
    max_examples=40,
    deadline=None,
    database=None,
)
@given(case=generated_selects())
def test_generated_shape(pair: Pair, case: Generated) -> None:
    """A generated SELECT gives the same result through the proxy as directly."""
    pair.ensure_open()
    compare(pair, fmt(case.sql), case.ordered)


# --------------------------------------------------------------------------------------
# Batching and de-duplication
# --------------------------------------------------------------------------------------


def ml_runtime(proxy: RunningProxy) -> MLRuntime:
    """The running proxy's shared ML state (engines, cache, counters)."""
    assert proxy.server is not None and proxy.server.ctx is not None
    return proxy.server.ctx.ml


@pytest.fixture
def cold(pair: Pair, oracle_proxy: RunningProxy) -> Pair:
    """The pair with the proxy's result cache emptied and the recorders reset."""
    ml_runtime(oracle_proxy).engines[FAMILY].cache.clear()
    ml_runtime(oracle_proxy).counters.reset()
    oracle_backend.reset()
    pair.ensure_open()
    return pair


def counters(proxy: RunningProxy) -> MLCounters:
    """The proxy's Aurora_ml_* counters."""
    return ml_runtime(proxy).counters


def expected_batches(count: int, requested: int | None) -> list[int]:
    """Sorted batch sizes for ``count`` inputs (the python backend takes 25 at most)."""
    size = min(requested or 25, 25)
    full, rest = divmod(count, size)
    return sorted([size] * full + ([rest] if rest else []))


@pytest.mark.parametrize("batch", [1, 7, 25, 60, 100])
def test_max_batch_size_bounds_each_request(
    cold: Pair, oracle_proxy: RunningProxy, batch: int
) -> None:
    """N distinct texts with max_batch_size B: ceil(N / min(B, 25)) requests, and the
    answers equal the two-argument form run directly."""
    through = run_through_proxy(
        cold, f"SELECT id, {SENT}(txt, 'en', {batch}) FROM batch_texts ORDER BY id"
    )
    direct = run(cold.direct, f"SELECT id, {SENT}(txt, 'en') FROM batch_texts ORDER BY id")
    assert through.rows == direct.rows
    assert oracle_backend.batch_sizes() == expected_batches(BATCH_TEXTS, batch)
    assert counters(oracle_proxy).actual_request_cnt == math.ceil(BATCH_TEXTS / min(batch, 25))


def test_sentiment_and_confidence_share_each_request(
    cold: Pair, oracle_proxy: RunningProxy
) -> None:
    """Both functions over the same texts in one statement: one request per batch."""
    through = run_through_proxy(
        cold,
        f"SELECT id, {SENT}(txt, 'en', 10), {CONF}(txt, 'en', 10) FROM batch_texts ORDER BY id",
    )
    direct = run(
        cold.direct, f"SELECT id, {SENT}(txt, 'en'), {CONF}(txt, 'en') FROM batch_texts ORDER BY id"
    )
    assert through.rows == direct.rows
    assert oracle_backend.batch_sizes() == expected_batches(BATCH_TEXTS, 10)
    assert len(oracle_backend.sent_inputs()) == BATCH_TEXTS
    assert counters(oracle_proxy).cache_hit_cnt == BATCH_TEXTS


def test_repeated_texts_are_sent_once(cold: Pair, oracle_proxy: RunningProxy) -> None:
    """25 rows of comments hold 21 distinct (text, language) inputs once NULL and empty
    texts are left out; each is sent once, and a second run is answered from the cache."""
    sql = f"SELECT id, {SENT}(txt, 'en') FROM comments ORDER BY id"
    compare(cold, sql, ordered=True)
    distinct = {text for _, text, *_ in COMMENTS if text}
    sent = oracle_backend.sent_inputs()
    assert sorted(sent) == sorted((text, "en") for text in distinct)
    assert counters(oracle_proxy).actual_request_cnt == 1
    oracle_backend.reset()
    compare(cold, sql, ordered=True)
    assert oracle_backend.sent_inputs() == []
    assert counters(oracle_proxy).cache_hit_cnt == len(distinct)


def test_languages_that_normalise_alike_share_one_input(
    cold: Pair, oracle_proxy: RunningProxy
) -> None:
    """'en' and 'EN' are one language: 'Bad service' in both is sent once."""
    compare(cold, f"SELECT id, {SENT}(txt, lang) FROM comments WHERE id IN (13, 14)")
    assert oracle_backend.sent_inputs() == [("Bad service", "en")]
