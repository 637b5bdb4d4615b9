"""The differential oracle for endpoint aliases with several typed arguments.

tests/support/alias_oracle_models.py defines four deterministic functions twice: as Python
callables answering endpoint aliases through the proxy, and as MariaDB stored functions
with the same parameters and RETURNS types. ``alias_direct`` holds the stored functions,
``alias_proxy`` the aliases (created through the proxy, so the backend holds stubs that
refuse to run: a call the proxy fails to intercept errors out with 1644 instead of
answering), both the same tables of hostile values (NULLs, empty strings, quotes,
backslashes, emoji, NUL bytes, trailing spaces, case variants, extreme integers, decimals
and doubles). ``alias_other`` is a third current database from which both sides call the
functions schema-qualified.

Every statement runs through the proxy in ``alias_proxy`` and directly in ``alias_direct``
(``{db}`` in a statement is the side's database) with both ways the proxy writes answers
back (inline ELT lists and session temporary tables), and must give the same column names,
rows, affected-row counts, errors and tables afterwards, as tests/oracle/test_ml_oracle.py does
for the built-in sentiment functions (its helpers are reused). Known differences are
strict xfails with their diagnosis.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import mysql.connector
import pymysql
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import proxy.ml.answers as ml_answers
from proxy.ml.path import MLRuntime
from rewriter.functions import SENTIMENT
from tests.conftest import APP, RunningProxy, admin_connect, start_proxy
from tests.oracle.test_ml_oracle import Outcome, known_failure, run, table_state
from tests.support import alias_oracle_models as models
from tests.support.backend import BackendInfo
from tests.support.select_grammar import Generated, selects
from tests.support.sql_corpus import build_corpus

#: Where the corpora (``*.sql``) are: beside this module.
HERE = Path(__file__).parent
DIRECT_DB = "alias_direct"
PROXY_DB = "alias_proxy"
OTHER_DB = "alias_other"
DATABASES = {"direct": DIRECT_DB, "proxy": PROXY_DB}
PATHS = ("inline", "table")
D = Decimal

SCHEMA = (
    """CREATE TABLE t (id INT PRIMARY KEY, a INT, b VARCHAR(20), c DOUBLE,
                       x DECIMAL(10,2), n BIGINT, s VARCHAR(20), grp CHAR(1),
                       lb VARCHAR(20) CHARACTER SET latin1)""",
    "CREATE TABLE u (id INT PRIMARY KEY, t_id INT, b VARCHAR(20), q DOUBLE, x DECIMAL(10,2))",
    """CREATE TABLE w (id INT AUTO_INCREMENT PRIMARY KEY, a INT, b VARCHAR(20), c DOUBLE,
                       x DECIMAL(10,2), n BIGINT, tag VARCHAR(64), amount DECIMAL(12,2),
                       r DOUBLE, k INT)""",
    "CREATE TABLE many (id INT PRIMARY KEY, a INT, b VARCHAR(20))",
)
OTHER_SCHEMA = ("CREATE TABLE o (id INT PRIMARY KEY, k INT, s VARCHAR(20))",)

T_ROWS = [
    (1, 5, "héllo", 0.1, D("1.50"), 7, "x", "a", "l1"),
    (2, None, None, None, None, None, None, "a", None),
    (3, -2147483648, 'It\'s "q" \\ b\\s', 1e300, D("-99999999.99"), -(2**63), "", "b", ""),
    (4, 2147483647, "ab  ", 0.1 + 0.2, D("99999999.99"), 2**63 - 1, "GOOD", "b", "l4"),
    (5, 0, "", -0.0, D("0.00"), 0, "good", "c", "l5"),
    (6, -7, "emoji 😀🎉", -2.5, D("-1.50"), -107, "Good", "c", "l6"),
    (7, 5, "héllo", 0.1, D("1.50"), 7, "x", "a", "l1"),
    (8, 5, "HÉLLO", 0.1, D("1.5"), 7, "X", "a", "l8"),
    (9, 12, "tab\tnl\n", 1 / 3, D("0.01"), 99, "café", "b", "l9"),
    (10, -1, "nul\x00byte", 2.675, D("12345678.91"), -1, "日本語", "c", "l10"),
    (11, 42, "%_", 1e-300, D("-0.01"), 100, " ", "a", "l11"),
    (12, None, "only b", None, D("3.00"), None, None, "b", "l12"),
    (13, 1, None, 123456.789, None, 5, "x", "c", "l13"),
    (14, 3, "ab", 5e-324, None, -50, "ab ", "a", "l14"),
    (15, 100, "x", 1.7976931348623157e308, D("7.77"), 3, "ab", "b", "l15"),
    (16, 7, "Ünïcödé", 999999999999999.9, D("-42.42"), 1, "ß", "c", "l16"),
    (17, -99, "Good", -0.001, D("0.99"), -9, "GOOD", "a", "l17"),
    (18, 8, "GOOD", 1e15, D("5.55"), 12345, "Good ", "b", "l18"),
]
U_ROWS = [
    (1, 1, "héllo", 2.0, D("1.50")),
    (2, 1, "other", 0.5, None),
    (3, 3, None, -4.0, D("2.00")),
    (4, 6, "emoji 😀🎉", 3.0, D("-1.50")),
    (5, 99, "orphan", 1.0, D("1.00")),
    (6, 9, "", 0.0, D("0.00")),
    (7, 4, "ab", 1e-3, D("99.99")),
    (8, 17, "GOOD", -0.5, D("-7.25")),
]
W_ROWS = [
    (1, 5, "héllo", 0.1, D("1.50"), 7, None, None, None, None),
    (2, None, None, None, None, None, "old", D("1.00"), 0.5, 1),
    (3, -3, "It's \\ 😀", -2.5, D("-1.50"), -107, None, None, None, None),
    (4, 5, "HÉLLO", 0.1, D("1.5"), 7, None, None, None, None),
    (5, 0, "", 1e300, D("99999999.99"), 2**63 - 1, None, None, None, None),
    (6, 12, "ab  ", 1 / 3, D("0.01"), 99, None, None, None, None),
]
O_ROWS = [(1, 5, "héllo"), (2, None, None), (3, -7, "emoji 😀"), (4, 5, "HÉLLO")]
#: More distinct inputs than proxy.ml.answers.INLINE_MAX_ANSWERS: the table path unforced.
MANY = 300

# --------------------------------------------------------------------------------------
# Diagnoses of the shapes the proxy gets wrong today (strict xfails: a fix turns them red)
# --------------------------------------------------------------------------------------

INT_RESULT_TYPE = (
    "rewriter/aliases.py SqlType.cast_target maps RETURNS INT to CAST(... AS SIGNED): CTAS "
    "makes a bigint(10) column inline, bigint(21) through the temporary table and int(4) for "
    "a constant (CAST(NULLIF(1002, NULL) AS SIGNED)), where the stored function gives int(11)"
)
NUMERIC_METADATA = (
    "rewriter/aliases.py SqlType.cast_target: a CAST(... AS DECIMAL(12,2)/DOUBLE) result "
    "carries BINARY_FLAG (flags 128) where a stored function's numeric result has flags 0"
)
INT_METADATA = (
    "rewriter/aliases.py SqlType.cast_target maps RETURNS INT to CAST(... AS SIGNED): a "
    "row-dependent call is MYSQL_TYPE_LONGLONG (8) of length 10 inline, 21 through the "
    "temporary table, a constant MYSQL_TYPE_LONG of length 4, all with BINARY_FLAG; the "
    "stored function's is MYSQL_TYPE_LONG (3), length 11, flags 0"
)
COERCIBILITY = (
    "the proxy's CAST(... AS CHAR(64) CHARACTER SET utf8mb4) is IMPLICIT (2) and a numeric "
    "CAST is NUMERIC (5), where a stored function's result is COERCIBLE (4)"
)
LATIN1_MIX = (
    "a stored function's VARCHAR result is utf8mb4_general_ci COERCIBLE, and MariaDB refuses "
    "to mix it with a latin1 column (1267 Illegal mix of collations); the proxy's CAST "
    "result is IMPLICIT utf8mb4 and converts the latin1 column: rows instead of the error"
)
ASSIGNMENT_ORDER = (
    "MySQL evaluates single-table UPDATE assignments left to right, so tag = tagline(a, b, c) "
    "sees the halved a; rewriter/plan.py _dml_scope's key query collects the pre-update "
    "(a, b, c), the lookup misses and writes NULL (direct '6:...', proxy NULL)"
)
STRING_INTO_INT = (
    "rewriter/aliases.py SqlType.cast_target: the argument goes through CAST('3.7' AS "
    "SIGNED), which truncates to 3 (warning 1292), while assigning '3.7' to the stored "
    "function's INT parameter rounds to 4: direct '12:x#1:100', proxy '9:x#1:100'"
)
INT_RANGE = (
    "rewriter/aliases.py SqlType.cast_target: an INT argument is cast AS SIGNED (BIGINT "
    "range), so 3000000000 reaches the model as is ('9000000000:x#1:100'); the stored "
    "function's INT parameter refuses it (strict sql_mode: 1264 Out of range value for "
    "column 'a')"
)
INT_RANGE_LAX = (
    "rewriter/aliases.py SqlType.cast_target: an INT argument is cast AS SIGNED (BIGINT "
    "range); with sql_mode='' the stored function clamps 3000000000 to 2147483647 "
    "('6442450941:x#1:100'), the proxy sends 3000000000 ('9000000000:x#1:100')"
)
VARCHAR_TOO_LONG = (
    "rewriter/aliases.py SqlType.cast_target: CAST(... AS CHAR(20)) truncates a 21-character "
    "argument with warning 1292 and the model answers; the stored function's VARCHAR(20) "
    "parameter refuses it in strict mode (1406 Data too long for column 'b')"
)
BAD_INTEGER_TEXT = (
    "rewriter/aliases.py SqlType.cast_target: CAST('abc' AS SIGNED) is 0 with warning 1292 "
    "and the model answers '0:x#1:100'; the stored function's INT parameter refuses it in "
    "strict mode (1366 Incorrect integer value: 'abc' for column 'a')"
)
DECIMAL_RANGE = (
    "rewriter/aliases.py SqlType.cast_target: CAST(123456789012 AS DECIMAL(10,2)) clamps to "
    "99999999.99 with warning 1264 and the model answers; the stored function's "
    "DECIMAL(10,2) parameter refuses it in strict mode (1264 Out of range value for 'x')"
)
BIGINT_WRAPS = (
    "rewriter/aliases.py SqlType.cast_target: CAST(9223372036854775808 AS SIGNED) wraps to "
    "-9223372036854775808 without even a warning, so the model answers -8.00; the stored "
    "function's BIGINT parameter refuses it (1264 Out of range value for column 'n')"
)
NESTED_CALLS = (
    "deliberate limit of rewriter/plan.py: a call whose argument is another ML call is "
    'refused with 1235 "tagline() cannot take another ML function\'s result as input"; '
    "stored functions nest"
)
HAVING_ALIAS = (
    "rewriter/plan.py _select_scope: for a call over aggregated inputs the key query keeps "
    "the statement's ML-free HAVING, here 'k > 5' where k is the call's own select alias, "
    "absent from the key query: 1054 Unknown column 'k' in 'HAVING'"
)
WINDOW_IN_LOOKUP = (
    "table path only: proxy/ml/answers.py lookup_sql puts the call's inputs in the lookup "
    "subquery's WHERE (_mlr._mlproxy_k0 <=> CAST(... ROW_NUMBER() OVER (ORDER BY id) ...)), "
    "where MariaDB refuses a window function: 4015 Window function is allowed only in "
    "SELECT list and ORDER BY clause (the inline ELT path answers it)"
)
COUNT_STAR_IN_LOOKUP = (
    "table path only: proxy/ml/answers.py lookup_sql evaluates the call's inputs inside the "
    "lookup subquery (_mlr._mlproxy_k0 <=> CAST(... COUNT(*) ...)), where an aggregate that "
    "names no outer column is the subquery's own (a count of lookup rows): no key matches "
    "and every group answers NULL (the inline ELT path answers it)"
)
PREPARED_NAMES = (
    "proxy/session/prepared.py PreparedStatements.execute binds the parameters into the "
    "statement text (bind_placeholders) before planning, so an unaliased select item keeps "
    "the literal as its name: 'tagline(a, _utf8mb4 X'7070', c)' where the server names it "
    "'tagline(a, ?, c)'"
)
ANSI_QUOTED_NAME = (
    'under ANSI_QUOTES "tagline"(a, b, c) is a call of tagline, but the proxy\'s call '
    "finder does not take a double-quoted name for an identifier (plan_statement returns "
    "None): forwarded unrewritten, 1644 from the stub"
)

# --------------------------------------------------------------------------------------
# The databases, the proxy and the connections
# --------------------------------------------------------------------------------------


def _fill(cur: Any, name: str) -> None:
    cur.executemany(f"INSERT INTO {name}.t VALUES ({', '.join(['%s'] * 9)})", T_ROWS)
    cur.executemany(f"INSERT INTO {name}.u VALUES (%s, %s, %s, %s, %s)", U_ROWS)
    reset_w(cur, name)
    many = [(i, i % 41 - 20, f"m{i}") for i in range(1, MANY + 1)]
    cur.executemany(f"INSERT INTO {name}.many VALUES (%s, %s, %s)", many)


def reset_w(cur: Any, name: str) -> None:
    """The write table back to its seed rows."""
    cur.execute(f"TRUNCATE TABLE {name}.w")
    cur.executemany(f"INSERT INTO {name}.w VALUES ({', '.join(['%s'] * 10)})", W_ROWS)


def _create_database(cur: Any, name: str, schema: Sequence[str]) -> None:
    cur.execute(f"DROP DATABASE IF EXISTS {name}")
    cur.execute(f"CREATE DATABASE {name} CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci")
    for ddl in schema:
        cur.execute(f"USE {name}")
        cur.execute(ddl)
    cur.execute(f"GRANT ALL ON {name}.* TO '{APP.user}'@'%'")


@pytest.fixture(scope="module")
def alias_admin(backend: BackendInfo) -> Iterator[pymysql.Connection[Any]]:
    """Builds the three databases and the stored functions; resets the write tables."""
    connection = admin_connect(backend)
    with connection.cursor() as cur:
        for name in DATABASES.values():
            _create_database(cur, name, SCHEMA)
            _fill(cur, name)
        _create_database(cur, OTHER_DB, OTHER_SCHEMA)
        cur.executemany(f"INSERT INTO {OTHER_DB}.o VALUES (%s, %s, %s)", O_ROWS)
        cur.execute(f"USE {DIRECT_DB}")
        for model in models.MODELS:
            cur.execute(model.stored_ddl())
    yield connection
    with connection.cursor() as cur:
        for name in (DIRECT_DB, PROXY_DB, OTHER_DB):
            cur.execute(f"DROP DATABASE IF EXISTS {name}")
    connection.close()


@pytest.fixture(scope="module")
def alias_proxy(
    backend: BackendInfo, alias_admin: pymysql.Connection[Any]
) -> Iterator[RunningProxy]:
    """A proxy routing each model's endpoint to its callable, with the aliases created
    through it (so ``alias_proxy`` holds their stubs)."""
    running = start_proxy(backend, endpoint=models.ROUTES)
    try:
        with running.connect(database=PROXY_DB) as conn, conn.cursor() as cur:
            for model in models.MODELS:
                cur.execute(model.alias_ddl())
        yield running
    finally:
        running.stop()


@dataclass
class Pair:
    """Connections through the proxy and direct, each in its side's database (home) or
    in ``alias_other``; opened on first use and again after a failure closed them."""

    proxy: RunningProxy
    backend: BackendInfo
    connections: dict[tuple[str, str], pymysql.Connection[Any]] = field(default_factory=dict)

    def conn(self, side: str, where: str = "home") -> pymysql.Connection[Any]:
        current = self.connections.get((side, where))
        if current is None or not current.open:
            database = DATABASES[side] if where == "home" else OTHER_DB
            current = self.connections[(side, where)] = self._connect(side, database)
        return current

    def _connect(self, side: str, database: str) -> pymysql.Connection[Any]:
        if side == "proxy":
            return self.proxy.connect(database=database)
        return pymysql.connect(
            host=self.backend.host,
            port=self.backend.port,
            user=APP.user,
            password=APP.password,
            database=database,
            autocommit=True,
        )

    def close(self) -> None:
        for connection in self.connections.values():
            if connection.open:
                connection.close()


@pytest.fixture(scope="module")
def alias_pair(alias_proxy: RunningProxy, backend: BackendInfo) -> Iterator[Pair]:
    connections = Pair(alias_proxy, backend)
    yield connections
    connections.close()


@pytest.fixture
def fresh_alias(alias_pair: Pair, alias_admin: pymysql.Connection[Any]) -> Pair:
    """The pair, with the write tables back to their seed rows and no made tables."""
    with alias_admin.cursor() as cur:
        for name in DATABASES.values():
            cur.execute(f"DROP TABLE IF EXISTS {name}.made")
            reset_w(cur, name)
    return alias_pair


@pytest.fixture
def answers_through(monkeypatch: pytest.MonkeyPatch) -> Any:
    """``answers_through(path)``: answers inline ("inline", the default for few
    answers) or through session temporary tables ("table", forced as in
    tests/oracle/test_ml_oracle_tables.py)."""

    def choose(path: str) -> None:
        assert path in PATHS
        limit = 0 if path == "table" else ml_answers.INLINE_MAX_ANSWERS
        monkeypatch.setattr(ml_answers, "INLINE_MAX_ANSWERS", limit)

    return choose


def ml_runtime(proxy: RunningProxy) -> MLRuntime:
    assert proxy.server is not None and proxy.server.ctx is not None
    return proxy.server.ctx.ml


# --------------------------------------------------------------------------------------
# Running one statement on both sides
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Failure:
    """A statement the server refused: its error number."""

    errno: int


Result = Outcome | Failure


def for_side(sql: str, side: str) -> str:
    """``sql`` with ``{db}`` naming the side's database."""
    return sql.replace("{db}", DATABASES[side])


def neutral(outcome: Outcome, side: str) -> Outcome:
    """Column names with the side's database name written ``{db}`` again."""
    names = tuple(name.replace(DATABASES[side], "{db}") for name in outcome.names)
    return Outcome(names, outcome.rows, outcome.rowcount)


def attempt(pair: Pair, side: str, where: str, sql: str) -> Result:
    """Run ``sql`` (``{db}`` filled in) on one side: its outcome, or its error."""
    try:
        return neutral(run(pair.conn(side, where), for_side(sql, side)), side)
    except pymysql.MySQLError as exc:
        return Failure(int(exc.args[0]))


def compare(pair: Pair, sql: str, ordered: bool = False, where: str = "home") -> Result:
    """Run ``sql`` directly, then through the proxy: the same names, rows (in order when
    ``ordered``) and affected rows, or the same error."""
    direct = attempt(pair, "direct", where, sql)
    through = attempt(pair, "proxy", where, sql)
    if isinstance(through, Failure) and not isinstance(direct, Failure):
        pytest.fail(f"through the proxy: error {through.errno}\nstatement: {sql}")
    if isinstance(direct, Failure) or isinstance(through, Failure):
        assert through == direct, sql
        return direct
    assert through.names == direct.names, sql
    assert through.rowcount == direct.rowcount, sql
    if ordered:
        assert list(through.rows) == list(direct.rows), sql
    else:
        assert Counter(through.rows) == Counter(direct.rows), sql
    return direct


def tables_equal(pair: Pair, tables: Sequence[str]) -> None:
    """Each table's rows and column definitions are the same on both sides."""
    for table in tables:
        assert table_state(pair.conn("proxy"), table) == table_state(pair.conn("direct"), table), (
            table
        )


# --------------------------------------------------------------------------------------
# The oracle itself: both implementations are the same functions
# --------------------------------------------------------------------------------------

#: Every function once, over the columns of ``t`` it is meant for.
ALL_FOUR = "tagline(a, b, c), scaled(x, n), ratio(c, x), bucket(a, s, x)"


def test_python_and_stored_functions_agree_on_every_row(alias_pair: Pair) -> None:
    """The stored functions, called directly, give what the Python functions give on
    the same values (as the proxy would send them)."""
    with alias_pair.conn("direct").cursor() as cur:
        cur.execute(f"SELECT id, {ALL_FOUR}, ratio(x, c), ratio(n, 7) FROM t ORDER BY id")
        rows = cur.fetchall()
    assert len(rows) == len(T_ROWS)
    for row, (_, a, b, c, x, n, s, *_) in zip(rows, T_ROWS, strict=True):
        expected = (
            models.tagline_of(a, b, c),
            models.scaled_of(x, n),
            models.ratio_of(c, None if x is None else float(x)),
            models.bucket_of(a, s, x),
            models.ratio_of(None if x is None else float(x), c),
            models.ratio_of(None if n is None else float(n), 7.0),
        )
        assert tuple(row[1:]) == expected, row[0]


def test_null_arguments_in_both_implementations(alias_pair: Pair) -> None:
    sql = "SELECT tagline(NULL, NULL, NULL), scaled(NULL, 1), scaled(2, NULL), ratio(1, 0)"
    assert run(alias_pair.conn("direct"), sql).rows == (
        ("null-a:null-b:null-c", None, D("-2.00"), None),
    )


def test_only_stubs_through_the_proxy(alias_pair: Pair) -> None:
    """The proxy's database holds stubs (a call that bypasses the proxy fails with
    1644), the direct database real functions, the other database none."""
    with alias_pair.conn("direct").cursor() as cur:
        cur.execute(
            "SELECT ROUTINE_SCHEMA, ROUTINE_NAME, ROUTINE_COMMENT LIKE 'mlproxy:%'"
            " FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA LIKE 'alias\\_%'"
            " ORDER BY 1, 2"
        )
        names = sorted(model.name for model in models.MODELS)
        assert cur.fetchall() == (
            *((DIRECT_DB, name, 0) for name in names),
            *((PROXY_DB, name, 1) for name in names),
        )
        with pytest.raises(pymysql.MySQLError) as failed:
            cur.execute(f"SELECT {PROXY_DB}.tagline(1, 'x', 1)")
        assert failed.value.args[0] == 1644


# --------------------------------------------------------------------------------------
# The hand-written corpus: read statements
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Shape:
    """One statement to compare; ``setup`` runs first on both sides, ``then`` after it
    (compared too, in order), ``cleanup`` last in any case (not compared); ``where`` is
    the current database: the side's own (``home``) or ``alias_other``."""

    sql: str
    ordered: bool = False
    setup: tuple[str, ...] = ()
    then: tuple[str, ...] = ()
    where: str = "home"
    cleanup: tuple[str, ...] = ()


@dataclass(frozen=True)
class Named:
    """A shape before it becomes one pytest parameter per answer path."""

    name: str
    case: Any
    xfail: str | None = None
    xfail_paths: tuple[str, ...] = PATHS


def shape(
    name: str,
    sql: str,
    *,
    ordered: bool = False,
    setup: Sequence[str] = (),
    then: Sequence[str] = (),
    where: str = "home",
    cleanup: Sequence[str] = (),
    xfail: str | None = None,
    xfail_paths: tuple[str, ...] = PATHS,
) -> Named:
    case = Shape(sql, ordered, tuple(setup), tuple(then), where, tuple(cleanup))
    return Named(name, case, xfail, xfail_paths)


def per_path(named: Sequence[Named]) -> list[Any]:
    """One parameter per shape and answer path, each path with its own known failures."""
    params = []
    for item in named:
        for path in PATHS:
            failing = item.xfail is not None and path in item.xfail_paths
            marks = [known_failure(item.xfail)] if failing and item.xfail else []
            params.append(pytest.param(item.case, path, id=f"{item.name}-{path}", marks=marks))
    return params


#: The known failures the corpora name (``-- xfail: NAME``).
DIAGNOSES = {
    "ANSI_QUOTED_NAME": ANSI_QUOTED_NAME,
    "ASSIGNMENT_ORDER": ASSIGNMENT_ORDER,
    "BAD_INTEGER_TEXT": BAD_INTEGER_TEXT,
    "BIGINT_WRAPS": BIGINT_WRAPS,
    "COERCIBILITY": COERCIBILITY,
    "COUNT_STAR_IN_LOOKUP": COUNT_STAR_IN_LOOKUP,
    "DECIMAL_RANGE": DECIMAL_RANGE,
    "HAVING_ALIAS": HAVING_ALIAS,
    "INT_RANGE": INT_RANGE,
    "INT_RANGE_LAX": INT_RANGE_LAX,
    "INT_RESULT_TYPE": INT_RESULT_TYPE,
    "LATIN1_MIX": LATIN1_MIX,
    "NESTED_CALLS": NESTED_CALLS,
    "STRING_INTO_INT": STRING_INTO_INT,
    "VARCHAR_TOO_LONG": VARCHAR_TOO_LONG,
    "WINDOW_IN_LOOKUP": WINDOW_IN_LOOKUP,
}

#: The read corpus (alias_oracle_reads.sql): the select list, arguments, constants,
#: WHERE, grouping, ordering, joins, subqueries, derived tables and CTEs, set operations,
#: windows, qualified names, another current database, conversions and SQL modes.
READ_SHAPES = build_corpus(HERE / "alias_oracle_reads.sql", shape, DIAGNOSES)


def run_setup(pair: Pair, statements: Sequence[str], where: str) -> None:
    """Setup statements on both sides (the proxy side must accept them too)."""
    for sql in statements:
        for side in ("direct", "proxy"):
            run(pair.conn(side, where), for_side(sql, side))


@pytest.mark.parametrize(("case", "path"), per_path(READ_SHAPES))
def test_read_shape(alias_pair: Pair, answers_through: Any, case: Shape, path: str) -> None:
    """One read shape: the same names, rows, errors and follow-ups through the proxy."""
    answers_through(path)
    run_setup(alias_pair, case.setup, case.where)
    try:
        compare(alias_pair, case.sql, case.ordered, case.where)
        for follow_up in case.then:
            compare(alias_pair, follow_up, ordered=True, where=case.where)
    finally:
        run_setup(alias_pair, case.cleanup, case.where)


# --------------------------------------------------------------------------------------
# Result metadata: what a client learns about each function's column
# --------------------------------------------------------------------------------------


def column_metadata(connection: pymysql.Connection[Any], sql: str) -> list[tuple[Any, ...]]:
    """Type, character set, length, scale and flags of each result column."""
    with connection.cursor() as cur:
        cur.execute(sql)
        cur.fetchall()
        fields = cur._result.fields if cur._result is not None else []
        return [(f.type_code, f.charsetnr, f.length, f.scale, f.flags) for f in fields]


METADATA = [
    ("tagline-row", "SELECT tagline(a, b, c) FROM t", None),
    ("tagline-constant", "SELECT tagline(1, 'x', 1)", None),
    ("scaled-row", "SELECT scaled(x, n) FROM t", NUMERIC_METADATA),
    ("scaled-constant", "SELECT scaled(1, 2)", NUMERIC_METADATA),
    ("ratio-row", "SELECT ratio(c, x) FROM t", NUMERIC_METADATA),
    ("ratio-constant", "SELECT ratio(1, 2)", NUMERIC_METADATA),
    ("bucket-row", "SELECT bucket(a, s, x) FROM t", INT_METADATA),
    ("bucket-constant", "SELECT bucket(1, 'x', 2)", INT_METADATA),
]


@pytest.mark.parametrize(
    ("sql", "path"),
    [
        pytest.param(sql, path, id=f"{name}-{path}", marks=[known_failure(x)] if x else [])
        for name, sql, x in METADATA
        for path in PATHS
    ],
)
def test_result_metadata(alias_pair: Pair, answers_through: Any, sql: str, path: str) -> None:
    """A call's result column has the stored function's type, length, scale, character
    set and flags."""
    answers_through(path)
    direct = column_metadata(alias_pair.conn("direct"), sql)
    assert column_metadata(alias_pair.conn("proxy"), sql) == direct, sql


# --------------------------------------------------------------------------------------
# Writes: affected rows and the tables afterwards (rows and column definitions)
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Write:
    sql: str
    tables: tuple[str, ...] = ("w",)
    setup: tuple[str, ...] = ()
    then: tuple[str, ...] = ()
    where: str = "home"


def write(
    name: str,
    sql: str,
    *,
    tables: Sequence[str] = ("w",),
    setup: Sequence[str] = (),
    then: Sequence[str] = (),
    where: str = "home",
    xfail: str | None = None,
) -> Named:
    return Named(name, Write(sql, tuple(tables), tuple(setup), tuple(then), where), xfail)


#: The write corpus (alias_oracle_writes.sql), CREATE TABLE ... AS SELECT included.
WRITE_SHAPES = build_corpus(HERE / "alias_oracle_writes.sql", write, DIAGNOSES)


@pytest.mark.parametrize(("case", "path"), per_path(WRITE_SHAPES))
def test_write_shape(fresh_alias: Pair, answers_through: Any, case: Write, path: str) -> None:
    """One write shape: the same affected rows, follow-ups and tables through the proxy."""
    answers_through(path)
    run_setup(fresh_alias, case.setup, case.where)
    compare(fresh_alias, case.sql, where=case.where)
    for follow_up in case.then:
        compare(fresh_alias, follow_up, ordered=True, where=case.where)
    tables_equal(fresh_alias, case.tables)


def in_transaction(pair: Pair, statements: Sequence[str]) -> list[Result]:
    """Run ``statements`` on both sides with autocommit off, comparing each result."""
    sides = (pair.conn("proxy"), pair.conn("direct"))
    for side in sides:
        side.autocommit(False)
    try:
        return [compare(pair, sql) for sql in statements]
    finally:
        for side in sides:
            side.rollback()
            side.autocommit(True)


@pytest.mark.parametrize(
    "statement",
    [
        pytest.param(
            "INSERT INTO w (tag, amount) SELECT tagline(a, b, c), scaled(x, n) FROM t", id="insert"
        ),
        pytest.param("UPDATE w SET k = bucket(a, b, x), r = ratio(c, x)", id="update"),
        pytest.param("DELETE FROM w WHERE tagline(a, b, c) NOT LIKE 'null%'", id="delete"),
    ],
)
def test_rollback_undoes_an_alias_write_as_direct(fresh_alias: Pair, statement: str) -> None:
    """Inside a transaction the write is visible, and ROLLBACK undoes it on both sides."""
    before = table_state(fresh_alias.conn("direct"), "w")
    _, inside, _ = in_transaction(fresh_alias, [statement, "SELECT * FROM w", "ROLLBACK"])
    assert isinstance(inside, Outcome) and inside.rows != before[1]
    assert table_state(fresh_alias.conn("proxy"), "w") == before
    assert table_state(fresh_alias.conn("direct"), "w") == before


def test_read_only_transaction_allows_inline_alias_reads(fresh_alias: Pair) -> None:
    in_transaction(
        fresh_alias,
        ["START TRANSACTION READ ONLY", f"SELECT id, {ALL_FOUR} FROM t", "COMMIT"],
    )


def test_ctas_commits_implicitly_through_the_proxy_too(fresh_alias: Pair) -> None:
    """CTAS ends the open transaction: the earlier INSERT survives ROLLBACK."""
    in_transaction(
        fresh_alias,
        [
            "INSERT INTO w (tag) VALUES (tagline(1, 'kept', 1))",
            "CREATE TABLE made AS SELECT id, tagline(a, b, c) AS v FROM w",
            "INSERT INTO w (tag) VALUES (tagline(2, 'undone', 2))",
            "ROLLBACK",
        ],
    )
    tables_equal(fresh_alias, ["w", "made"])
    tags = [row[6] for row in table_state(fresh_alias.conn("direct"), "w")[1]]
    assert "3:tpek#4:100" in tags
    assert "6:enodnu#6:200" not in tags


# --------------------------------------------------------------------------------------
# Server-side prepared statements (mysql-connector's binary protocol)
# --------------------------------------------------------------------------------------


def connector(pair: Pair, side: str) -> Any:
    host, port = (
        (pair.proxy.host, pair.proxy.port)
        if side == "proxy"
        else (pair.backend.host, pair.backend.port)
    )
    return mysql.connector.connect(
        host=host,
        port=port,
        user=APP.user,
        password=APP.password,
        database=DATABASES[side],
        use_pure=True,
        ssl_disabled=True,
        autocommit=True,
    )


def prepared(pair: Pair, side: str, sql: str, params: Sequence[Sequence[Any]]) -> list[Any]:
    """One statement prepared once and executed with each parameter set: per execution,
    the column names and rows, or the error number."""
    conn = connector(pair, side)
    try:
        cur = conn.cursor(prepared=True)
        results: list[Any] = []
        statement = for_side(sql, side)
        for values in params:
            try:
                cur.execute(statement, tuple(values))
                rows = [tuple(row) for row in cur.fetchall()] if cur.with_rows else []
                names = tuple(n.replace(DATABASES[side], "{db}") for n in cur.column_names)
                results.append((names, rows, cur.rowcount))
            except mysql.connector.Error as exc:
                results.append(exc.errno)
        cur.close()
        return results
    finally:
        conn.close()


PREPARED = [
    pytest.param(
        "SELECT id, tagline(a, ?, c) AS tg, scaled(x, ?) AS sc FROM t WHERE id <= ? ORDER BY id",
        [("pp", 3, 10), ("It's \\ 😀", -7, 18), (None, None, 5)],
        id="row-calls-with-parameters",
    ),
    pytest.param(
        "SELECT tagline(?, ?, ?) AS tg, scaled(?, ?) AS sc, ratio(?, ?) AS ra,"
        " bucket(?, ?, ?) AS bu",
        [
            (5, "It's \\ 😀", 2.5, D("1.25"), 3, 1.0, 3.0, 7, "ab", D("-2.50")),
            (None, None, None, None, None, None, None, None, None, None),
            (-(2**31), "", -0.0, D("-99999999.99"), -(2**63), 5e-324, 1, 2**31 - 1, "ß", 0),
        ],
        id="constant-calls-all-parameters",
    ),
    pytest.param(
        "SELECT id FROM t WHERE bucket(a, s, x) > ? ORDER BY id",
        [(1000,), (-(10**9),)],
        id="call-compared-to-parameter",
    ),
    pytest.param(
        "SELECT grp, SUM(scaled(x, ?)) AS total FROM t WHERE grp <> ? GROUP BY grp ORDER BY grp",
        [(2, "c"), (-3, "a")],
        id="aggregate-with-parameters",
    ),
    pytest.param(
        "SELECT id, {db}.tagline(a, b, ?) AS v, {db}.ratio(c, ?) AS r FROM t ORDER BY id",
        [(1.5, 2), (None, 4.0)],
        id="qualified-calls",
    ),
    pytest.param(
        "SELECT t.id, u.id, tagline(t.a, u.b, ?) AS tg FROM t JOIN u ON u.t_id = t.id"
        " WHERE ratio(u.q, ?) > 0 ORDER BY t.id, u.id",
        [(0.25, 1), (1e300, 3)],
        id="join-with-parameters",
    ),
]


@pytest.mark.parametrize(("sql", "params"), PREPARED)
def test_prepared_statement(alias_pair: Pair, sql: str, params: list[tuple[Any, ...]]) -> None:
    """The same statement prepared through the proxy and directly: each execution gives
    the same names and rows."""
    assert prepared(alias_pair, "proxy", sql, params) == prepared(alias_pair, "direct", sql, params)


@known_failure(PREPARED_NAMES)
def test_prepared_unaliased_item_names(alias_pair: Pair) -> None:
    """An unaliased item with a parameter is named as the server names it."""
    sql = "SELECT id, tagline(a, ?, c) FROM t WHERE id < 3 ORDER BY id"
    through, direct = (prepared(alias_pair, side, sql, [("pp",)]) for side in ("proxy", "direct"))
    assert through == direct


def test_prepared_update(fresh_alias: Pair) -> None:
    sql = "UPDATE w SET tag = tagline(a, ?, c), k = bucket(?, b, x) WHERE id > ?"
    params = [("pq", 4, 3), (None, None, 1)]
    assert prepared(fresh_alias, "proxy", sql, params) == prepared(
        fresh_alias, "direct", sql, params
    )
    tables_equal(fresh_alias, ["w"])


# --------------------------------------------------------------------------------------
# Generated shapes
# --------------------------------------------------------------------------------------

ITEMS = (
    "id",
    "a",
    "b",
    "grp",
    "tagline(a, b, c)",
    "scaled(x, n)",
    "ratio(c, x)",
    "bucket(a, s, x)",
    "tagline(a, s, 1.5)",
    "scaled(x, 3)",
    "ratio(n, 7)",
    "bucket(NULL, b, x)",
    "CONCAT(tagline(a, b, c), '/', grp)",
    "scaled(x, n) + bucket(a, s, x)",
    "{db}.tagline(a, s, c)",
    "COALESCE(scaled(x, n), -1)",
    "tagline(a, b, c) = tagline(a, s, c)",
    "ratio(x, 4) * 2",
)
CONDITIONS = (
    "grp = 'a'",
    "a > 0",
    "b IS NOT NULL",
    "id % 2 = 0",
    "scaled(x, n) > 0",
    "bucket(a, s, x) % 2 = 0",
    "tagline(a, b, c) LIKE '%null%'",
    "ratio(c, x) < 1",
    "(bucket(a, s, x) > 1000 OR grp = 'c')",
    "{db}.scaled(x, 2) IS NOT NULL",
)
ORDER_KEYS = (
    "tagline(a, b, c)",
    "scaled(x, n) DESC",
    "grp",
    "ratio(c, x)",
    "bucket(a, s, x) DESC",
)


def generated_selects() -> st.SearchStrategy[Generated]:
    return selects("t", ITEMS, CONDITIONS, ORDER_KEYS, lambda item: "(" in item)


@pytest.mark.parametrize("path", PATHS)
@settings(derandomize=True, max_examples=60, deadline=None, database=None)
@given(case=generated_selects())
def test_generated_shape(alias_pair: Pair, path: str, case: Generated) -> None:
    """A generated SELECT gives the same result through the proxy as directly."""
    saved = ml_answers.INLINE_MAX_ANSWERS
    ml_answers.INLINE_MAX_ANSWERS = 0 if path == "table" else saved
    try:
        compare(alias_pair, case.sql, case.ordered)
    finally:
        ml_answers.INLINE_MAX_ANSWERS = saved


# --------------------------------------------------------------------------------------
# What reaches the model
# --------------------------------------------------------------------------------------


@pytest.fixture
def cold(alias_pair: Pair, alias_proxy: RunningProxy) -> Pair:
    """The pair with the proxy's result cache emptied and the recorders reset."""
    ml_runtime(alias_proxy).engines[SENTIMENT].cache.clear()
    models.reset()
    return alias_pair


def sent(name: str) -> list[tuple[object, ...]]:
    return [row for batch in models.calls(name) for row in batch]


def test_each_distinct_argument_tuple_is_sent_once_nulls_included(cold: Pair) -> None:
    """Every distinct (a, b, c) of t, NULLs included, reaches tagline once, typed as the
    declared parameters (int, str, float), each double exactly as stored; (x, n) reach
    scaled as (Decimal, int)."""
    compare(cold, "SELECT id, tagline(a, b, c), scaled(x, n) FROM t", ordered=False)
    tagline_inputs = sent("tagline")
    assert len(tagline_inputs) == len(set(tagline_inputs))
    assert set(tagline_inputs) == {(a, b, c) for _, a, b, c, *_ in T_ROWS}
    assert (None, None, None) in tagline_inputs
    for a, b, c in tagline_inputs:
        assert a is None or type(a) is int
        assert b is None or type(b) is str
        assert c is None or type(c) is float
    scaled_inputs = sent("scaled")
    assert set(scaled_inputs) == {(x, n) for _, _, _, _, x, n, *_ in T_ROWS}
    assert all(x is None or type(x) is Decimal for x, _ in scaled_inputs)


def test_answers_are_cached_across_functions_and_statements(cold: Pair) -> None:
    """A second statement over the same inputs asks the model nothing."""
    compare(cold, "SELECT id, bucket(a, s, x) FROM t")
    assert sent("bucket")
    models.reset()
    compare(cold, "SELECT id, bucket(a, s, x) + 1 FROM t WHERE id > 3")
    assert sent("bucket") == []


@pytest.mark.parametrize("batch", [1, 4, 25, 100])
def test_max_batch_size_bounds_each_request(
    cold: Pair, alias_admin: pymysql.Connection[Any], batch: int
) -> None:
    """An alias declared with MAX_BATCH_SIZE B sends batches of at most B (the
    python backend takes 10,000), each distinct input once, answered as the function is."""
    name = f"tagline_b{batch}"
    model = models.MODELS[0]
    alias = model.alias_ddl().replace("tagline(", f"{name}(", 1) + f" MAX_BATCH_SIZE {batch}"
    stored = model.stored_ddl().replace("tagline(", f"{name}(", 1)
    with alias_admin.cursor() as cur:
        cur.execute(f"USE {DIRECT_DB}")
        cur.execute(f"DROP FUNCTION IF EXISTS {name}")
        cur.execute(stored)
    run(cold.conn("proxy"), f"DROP FUNCTION IF EXISTS {name}")
    run(cold.conn("proxy"), alias)
    try:
        compare(cold, f"SELECT id, {name}(a, b, c) FROM t ORDER BY id", ordered=True)
        sizes = sorted(len(b) for b in models.calls("tagline"))
        distinct = len({(a, b, c) for _, a, b, c, *_ in T_ROWS})
        size = batch
        assert sum(sizes) == distinct
        assert sizes == sorted(
            [size] * (distinct // size) + [distinct % size] * (distinct % size > 0)
        )
    finally:
        run(cold.conn("proxy"), f"DROP FUNCTION IF EXISTS {name}")
        with alias_admin.cursor() as cur:
            cur.execute(f"DROP FUNCTION IF EXISTS {DIRECT_DB}.{name}")


def test_answer_paths_are_exercised(alias_pair: Pair) -> None:
    """The data keeps the inline path under its limit and 'many' over it."""
    distinct_t = {(a, b, c) for _, a, b, c, *_ in T_ROWS}
    assert len(distinct_t) <= ml_answers.INLINE_MAX_ANSWERS < MANY
