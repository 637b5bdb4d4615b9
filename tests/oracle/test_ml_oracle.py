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
from pathlib import Path
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
from tests.support.sql_corpus import build_corpus

#: Where the corpora (``*.sql``) are: beside this module.
HERE = Path(__file__).parent
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


#: The known failures the corpora name (``-- xfail: NAME``).
DIAGNOSES = {
    "ASSIGNMENT_ORDER": ASSIGNMENT_ORDER,
    "ODKU_COLUMN": ODKU_COLUMN,
    "ODKU_VALUES": ODKU_VALUES,
    "RECURSIVE_BODY": RECURSIVE_BODY,
    "SQL_PREPARE": SQL_PREPARE,
    "STANDALONE_VALUES": STANDALONE_VALUES,
    "VIEW": VIEW,
}

#: The read corpus (ml_oracle_reads.sql): the select list, arguments, constants, WHERE,
#: grouping, ordering, joins, subqueries, derived tables and CTEs, set operations,
#: windows and the rest.
READ_SHAPES = build_corpus(HERE / "ml_oracle_reads.sql", shape, DIAGNOSES)


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


#: The write corpus (ml_oracle_writes.sql).
WRITE_SHAPES = build_corpus(HERE / "ml_oracle_writes.sql", write, DIAGNOSES)


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
