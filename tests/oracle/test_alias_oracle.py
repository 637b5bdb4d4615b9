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
    "proxy/session/prepared_handlers.py _on_execute binds the parameters into the statement text "
    "(bind_placeholders) before planning, so an unaliased select item keeps the literal "
    "as its name: 'tagline(a, _utf8mb4 X'7070', c)' where the server names it "
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


SELECT_LIST = [
    shape("sel-all-four", f"SELECT id, {ALL_FOUR} FROM t"),
    shape(
        "sel-all-four-aliased-ordered",
        "SELECT id, tagline(a, b, c) AS tg, scaled(x, n) AS sc, ratio(c, x) AS ra,"
        " bucket(a, s, x) AS bu FROM t ORDER BY id",
        ordered=True,
    ),
    shape("sel-concat", "SELECT id, CONCAT('[', tagline(a, b, c), ']') FROM t"),
    shape(
        "sel-case",
        "SELECT id, CASE WHEN bucket(a, s, x) > 0 THEN 'pos' WHEN bucket(a, s, x) < 0"
        " THEN 'neg' ELSE 'zero' END AS sign FROM t",
    ),
    shape("sel-arithmetic", "SELECT id, scaled(x, n) * 2 + 1, bucket(a, s, x) DIV 7 FROM t"),
    shape("sel-double-arithmetic", "SELECT id, ratio(c, x) * 100, -ratio(x, 4) FROM t"),
    shape(
        "sel-same-call-twice",
        "SELECT id, tagline(a, b, c), scaled(x, n), tagline(a, b, c) FROM t",
    ),
    shape("sel-star-and-calls", "SELECT *, bucket(a, s, x), scaled(x, n) FROM t"),
    shape("sel-qualified-star", "SELECT t1.*, tagline(t1.a, t1.b, t1.c) tg FROM t t1"),
    shape("sel-uppercase-name", "SELECT id, TAGLINE(a, b, c), Scaled(x, n) FROM t"),
    shape("sel-backticked-name", "SELECT id, `tagline`(a, b, c) AS v FROM t"),
    shape("sel-space-before-paren", "SELECT id, tagline (a, b, c) AS v FROM t"),
    shape("sel-spacing-inside-call", "SELECT id, bucket(  a ,s,   x ) AS v FROM t"),
    shape("sel-comment-inside-call", "SELECT id, tagline(a /* one */, b, /* two */ c) FROM t"),
    shape("sel-comment-before-item", "SELECT id, /* tagline(a, b, c) */ tagline(a, b, c) FROM t"),
    shape("sel-name-in-string", "SELECT id, 'tagline(a, b, c)' AS s, scaled(x, n) FROM t"),
    shape("sel-quoted-alias", "SELECT id, ratio(c, x) AS `odd ``name`` ` FROM t"),
    shape(
        "sel-json-object",
        # Text only: MariaDB writes a stored function's numeric result into JSON as a
        # string ("10.50"), where the proxy's CAST gives a JSON number (as MySQL does).
        "SELECT id, JSON_OBJECT('t', tagline(a, b, c), 's', CONCAT(scaled(x, n))) FROM t",
    ),
    shape("sel-emoji-in-item", "SELECT id, CONCAT(tagline(a, b, c), '😀') AS e FROM t"),
    shape(
        "sel-charset-collation",
        "SELECT CHARSET(tagline(a, b, c)), COLLATION(tagline(a, b, c)) FROM t WHERE id = 1",
    ),
    shape(
        "sel-coercibility",
        "SELECT COERCIBILITY(tagline(a, b, c)), COERCIBILITY(scaled(x, n)) FROM t WHERE id = 1",
        xfail=COERCIBILITY,
    ),
    shape(
        "sel-nested-calls",
        "SELECT id, tagline(bucket(a, s, x), b, ratio(c, x)) FROM t",
        xfail=NESTED_CALLS,
    ),
    shape(
        "sel-nested-same-function",
        "SELECT id, scaled(scaled(x, 3), 2) FROM t WHERE ABS(x) < 1000",
        xfail=NESTED_CALLS,
    ),
    shape(
        "sel-one-function-many-argument-sets",
        "SELECT id, tagline(a, b, c), tagline(a, s, c), tagline(1, b, 2.5), tagline(a, NULL, c)"
        " FROM t",
    ),
    shape("sel-distinct", "SELECT DISTINCT bucket(a, s, x) FROM t"),
    shape("sel-distinct-text", "SELECT DISTINCT tagline(a, b, c) FROM t"),
    shape("sel-trailing-semicolon", "SELECT id, scaled(x, n) FROM t;"),
    shape("sel-sql-no-cache", "SELECT SQL_NO_CACHE id, tagline(a, b, c) FROM t"),
    shape("sel-multiline-comments", "SELECT id, -- tagline(x)\n bucket(a, s, x) # z\n FROM t"),
    shape("sel-length-of-answer", "SELECT id, CHAR_LENGTH(tagline(a, b, c)) FROM t"),
]

ARGUMENTS = [
    shape(
        "arg-expressions",
        "SELECT id, tagline(a DIV 2 + 1, CONCAT(b, '!'), c / 4) FROM t",
    ),
    shape(
        "arg-coalesce",
        "SELECT id, tagline(COALESCE(a, -1), COALESCE(b, 'none'), COALESCE(c, 0)) FROM t",
    ),
    shape("arg-constant-and-column", "SELECT id, tagline(7, b, 1.5), scaled(x, 3) FROM t"),
    shape("arg-null-and-column", "SELECT id, bucket(NULL, s, NULL), scaled(NULL, n) FROM t"),
    shape("arg-integer-as-text", "SELECT id, tagline(CAST(a AS CHAR), b, c) FROM t"),
    shape("arg-decimal-as-text", "SELECT id, scaled(CONCAT(x), n) FROM t"),
    shape("arg-double-as-text", "SELECT id, ratio(CONCAT(c), 3) FROM t"),
    shape("arg-decimal-into-double", "SELECT id, ratio(x, 3), ratio(3, x) FROM t"),
    shape(
        "arg-double-into-decimal",
        "SELECT id, scaled(c, n), bucket(a, s, c) FROM t WHERE ABS(c) < 1e6",
    ),
    shape("arg-bigint-into-double", "SELECT id, ratio(n, 7), ratio(a, n) FROM t"),
    shape("arg-int-into-varchar", "SELECT id, tagline(a, a, c), bucket(a, n, x) FROM t"),
    shape("arg-varchar-into-int", "SELECT id, tagline(LENGTH(b), grp, n DIV 1e17) FROM t"),
    shape("arg-decimal-into-int", "SELECT id, tagline(x, b, c) FROM t WHERE ABS(x) < 1e6"),
    shape("arg-double-into-int", "SELECT id, bucket(c, s, x) FROM t WHERE ABS(c) < 1e6"),
    shape(
        "arg-scalar-subquery",
        "SELECT id, tagline((SELECT MAX(a) FROM t WHERE a < 1000), b, c) FROM t",
    ),
    shape(
        "arg-correlated-subquery",
        "SELECT id, tagline(a, (SELECT MAX(u.b) FROM u WHERE u.t_id = t.id), c) FROM t",
    ),
    shape("arg-collate-bin", "SELECT id, tagline(a, b COLLATE utf8mb4_bin, c) FROM t"),
    shape("arg-binary", "SELECT id, tagline(a, CAST(b AS BINARY), c) FROM t"),
    shape("arg-latin1", "SELECT id, tagline(a, lb, c), bucket(a, lb, x) FROM t"),
    shape(
        "arg-case",
        "SELECT id, bucket(CASE grp WHEN 'a' THEN 1 WHEN 'b' THEN 2 ELSE NULL END, s, x) FROM t",
    ),
    shape("arg-user-variable", "SELECT id, tagline(@k, b, c) FROM t", setup=["SET @k = 11"]),
    shape("arg-parenthesised", "SELECT id, scaled((x), (n)) FROM t"),
    shape("arg-if", "SELECT id, ratio(IF(grp = 'a', c, NULL), 2) FROM t"),
    shape("arg-hex-string", "SELECT id, tagline(a, X'C3A92764', c) FROM t"),
]

CONSTANTS = [
    shape(
        "const-all-four",
        "SELECT tagline(1, 'x', 2.5), scaled(1.5, 3), ratio(1, 3), bucket(1, 'ab', 3.5)",
    ),
    shape(
        "const-nulls",
        "SELECT tagline(NULL, NULL, NULL), scaled(NULL, 1), scaled(1, NULL), ratio(1, 0),"
        " ratio(NULL, 2), bucket(NULL, NULL, NULL)",
    ),
    shape(
        "const-hostile-strings",
        "SELECT tagline(1, 'It''s \\\\ \"q\"', 1), tagline(2, '😀🎉', 2), tagline(3, '', 3),"
        " tagline(4, 'nul\\0byte', 4), tagline(5, 'ab  ', 5), bucket(6, 'ß', 6)",
    ),
    shape(
        "const-extremes",
        "SELECT tagline(-2147483648, 'x', 1e300),"
        " tagline(2147483647, 'y', -1.7976931348623157e308),"
        " scaled(99999999.99, 99), scaled(-99999999.99, -9223372036854775808),"
        " ratio(1.7976931348623157e308, 2), ratio(5e-324, 1),"
        " bucket(2147483647, 'x', 99999999.99)",
    ),
    shape(
        "const-negative-zero",
        "SELECT scaled(-1.5, 0), ratio(-0.0, 1), ratio(-0e0, 1), tagline(0, '', -0e0)",
    ),
    shape(
        "const-rounded-arguments",
        "SELECT scaled(1.005, 1), scaled(2.675e0, 1), tagline(2.5e0, 'x', 1)",
    ),
    shape("const-hex", "SELECT tagline(1, X'C3A9', 1)"),
    shape("const-from-dual", "SELECT bucket(1, 'x', 2) FROM DUAL"),
    shape("const-in-from-query", "SELECT id, tagline(1, 'k', 1) AS k FROM t"),
    shape(
        "const-vs-row",
        "SELECT id FROM t WHERE bucket(1, 'x', 0) < bucket(a, s, x)",
    ),
    shape("const-user-variables", "SELECT scaled(@x, @n)", setup=["SET @x = 2.5, @n = -3"]),
    shape("const-set-variable", "SET @v = tagline(1, 'v', 1)", then=["SELECT @v"]),
    shape(
        "const-derived-literals",
        "SELECT tagline(k, t, 1) FROM (SELECT 1 AS k, 'a' AS t UNION ALL SELECT 2, 'b') d",
    ),
    shape("const-expression-arguments", "SELECT tagline(2 * 3, CONCAT('a', 'b'), 1 / 8)"),
]

WHERE = [
    shape("where-equals-text", "SELECT id FROM t WHERE tagline(a, b, c) = '15:olléh#5:10'"),
    shape(
        "where-case-insensitive",
        "SELECT id FROM t WHERE tagline(a, b, c) = '15:OLLÉH#5:10'",
    ),
    shape(
        "where-binary-collation",
        "SELECT id FROM t WHERE tagline(a, b, c) = _utf8mb4'15:OLLÉH#5:10' COLLATE utf8mb4_bin",
    ),
    shape("where-and-ml-free", "SELECT id FROM t WHERE grp = 'a' AND scaled(x, n) > 0"),
    shape("where-or", "SELECT id FROM t WHERE grp = 'b' OR bucket(a, s, x) < 0"),
    shape(
        "where-in-list",
        "SELECT id FROM t WHERE bucket(a, s, x) IN (5002, 999, 2002) AND id > 0",
    ),
    shape("where-between", "SELECT id FROM t WHERE ratio(c, x) BETWEEN -1 AND 1"),
    shape("where-is-null", "SELECT id FROM t WHERE scaled(x, n) IS NULL"),
    shape("where-null-safe", "SELECT id FROM t WHERE NOT (ratio(c, x) <=> NULL)"),
    shape("where-like", "SELECT id FROM t WHERE tagline(a, b, c) LIKE '%null%'"),
    shape("where-like-escape", "SELECT id FROM t WHERE tagline(a, b, c) LIKE '%\\_%'"),
    shape("where-two-calls", "SELECT id FROM t WHERE scaled(x, n) < scaled(x, 3)"),
    shape(
        "where-decimal-equality",
        "SELECT id FROM t WHERE scaled(x, n) = 10.5 OR scaled(x, n) = 0",
    ),
    shape(
        "where-row-constructor",
        "SELECT id FROM t WHERE (grp, bucket(a, s, x) > 0) IN (('a', 1), ('b', 0))",
    ),
    shape(
        "where-utf8mb4-bin-column",
        "SELECT id FROM t WHERE tagline(a, b, c) = CONVERT(b USING utf8mb4) COLLATE utf8mb4_bin",
    ),
    shape(
        "where-latin1-column",
        "SELECT id FROM t WHERE tagline(a, b, c) = lb",
        xfail=LATIN1_MIX,
    ),
    shape(
        "where-nondeterministic-conjunct",
        "SELECT id FROM t WHERE a > 0 AND RAND() < 2 AND bucket(a, s, x) > 0",
    ),
]

GROUPING = [
    shape(
        "group-by-alias",
        "SELECT bucket(a, s, x) DIV 1000 AS k, COUNT(*) FROM t GROUP BY k",
    ),
    shape(
        "group-by-call",
        "SELECT tagline(a, b, c), COUNT(*) FROM t GROUP BY tagline(a, b, c)",
    ),
    shape(
        "group-by-column-and-call",
        "SELECT grp, scaled(x, 2), COUNT(*) FROM t GROUP BY grp, scaled(x, 2)",
    ),
    shape("having-sum", "SELECT grp, COUNT(*) FROM t GROUP BY grp HAVING SUM(scaled(x, n)) > 0"),
    shape(
        "agg-sum-min-max",
        "SELECT grp, SUM(scaled(x, n)), MIN(ratio(c, x)), MAX(bucket(a, s, x)) FROM t GROUP BY grp",
    ),
    shape("agg-count-distinct", "SELECT COUNT(DISTINCT tagline(a, b, c)) FROM t"),
    shape(
        "agg-group-concat",
        "SELECT GROUP_CONCAT(tagline(a, b, c) ORDER BY id SEPARATOR '|') FROM t",
    ),
    shape(
        "agg-arguments-are-aggregates",
        "SELECT grp, tagline(MAX(a), MAX(grp), COUNT(*)), scaled(SUM(x), COUNT(*)) FROM t"
        " WHERE a < 1000 GROUP BY grp",
    ),
    shape(
        "having-alias-of-call",
        "SELECT grp, bucket(COUNT(*), grp, 1) AS k FROM t GROUP BY grp HAVING k > 5",
        xfail=HAVING_ALIAS,
    ),
    shape(
        "having-alias-of-plain-call",
        "SELECT grp, bucket(1, grp, 1) AS k FROM t GROUP BY grp HAVING k > 1002",
    ),
    shape(
        "agg-count-argument-with-column",
        "SELECT grp, tagline(COUNT(*), grp, NULL) FROM t GROUP BY grp",
    ),
    shape(
        "agg-count-star-only-argument",
        "SELECT grp, bucket(COUNT(*), 'x', 1) AS k FROM t GROUP BY grp",
        xfail=COUNT_STAR_IN_LOOKUP,
        xfail_paths=("table",),
    ),
    shape(
        "agg-count-star-no-group",
        "SELECT bucket(COUNT(*), NULL, NULL) FROM t",
    ),
    shape(
        "having-alias-without-group",
        "SELECT id, scaled(x, n) AS v FROM t HAVING v > 0",
    ),
    shape(
        "group-with-rollup",
        "SELECT bucket(a, s, x) % 3 AS k, SUM(scaled(x, 2)) FROM t GROUP BY k WITH ROLLUP",
    ),
    shape(
        "group-by-ordinal",
        "SELECT tagline(1, grp, 1) AS k, COUNT(*) AS c FROM t GROUP BY 1 ORDER BY c DESC, k",
        ordered=True,
    ),
    shape(
        "agg-group-concat-ordered-by-call",
        "SELECT grp, GROUP_CONCAT(id ORDER BY bucket(a, s, x), id) FROM t GROUP BY grp",
    ),
]

ORDERING = [
    shape("order-by-text-call", "SELECT id FROM t ORDER BY tagline(a, b, c), id", ordered=True),
    shape(
        "order-desc-limit",
        "SELECT id FROM t ORDER BY ratio(c, x) DESC, id LIMIT 5",
        ordered=True,
    ),
    shape(
        "order-alias-limit-offset",
        "SELECT id, scaled(x, n) AS v FROM t ORDER BY v, id LIMIT 4 OFFSET 3",
        ordered=True,
    ),
    shape(
        "order-two-calls-limit-comma",
        "SELECT id FROM t ORDER BY bucket(a, s, x) DESC, tagline(a, b, c), id LIMIT 2, 6",
        ordered=True,
    ),
    shape("order-by-ordinal", "SELECT id, tagline(a, s, c) FROM t ORDER BY 2, 1", ordered=True),
    shape("limit-zero", "SELECT id, tagline(a, b, c) FROM t LIMIT 0"),
    shape("empty-where", "SELECT tagline(a, b, c) FROM t WHERE 1 = 0"),
    shape(
        "found-rows",
        "SELECT SQL_CALC_FOUND_ROWS id FROM t WHERE bucket(a, s, x) > 0 ORDER BY id LIMIT 2",
        ordered=True,
        then=["SELECT FOUND_ROWS()"],
    ),
    shape("for-update", "SELECT id, scaled(x, n) FROM t WHERE id < 5 FOR UPDATE"),
]

JOINS = [
    shape(
        "join-inner",
        "SELECT t.id, u.id, tagline(t.a, u.b, u.q) FROM t JOIN u ON u.t_id = t.id",
    ),
    shape(
        "join-left-null-side",
        "SELECT t.id, u.id, scaled(u.x, t.n), bucket(t.a, u.b, u.x) FROM t"
        " LEFT JOIN u ON u.t_id = t.id",
    ),
    shape(
        "join-call-in-on",
        "SELECT t.id, u.id FROM t JOIN u ON u.t_id = t.id AND bucket(t.a, u.b, u.x) > 0",
    ),
    shape(
        "join-left-call-in-on",
        "SELECT t.id, u.id FROM t LEFT JOIN u ON u.t_id = t.id AND scaled(u.x, t.a) > 0",
    ),
    shape(
        "join-right",
        "SELECT t.id, u.id FROM t RIGHT JOIN u ON u.t_id = t.id WHERE ratio(u.q, 2) <> 1",
    ),
    shape(
        "join-self-arguments-from-both-sides",
        "SELECT p.id, q.id, tagline(p.a, q.b, p.c) FROM t p JOIN t q ON p.id < q.id"
        " AND p.grp = q.grp WHERE q.id < 10",
    ),
    shape(
        "join-comma",
        "SELECT t.id, u.id FROM t, u WHERE u.t_id = t.id AND scaled(t.x, 2) > scaled(u.x, 1)",
    ),
    shape(
        "join-derived-with-call",
        "SELECT t.id, d.v FROM t JOIN (SELECT t_id, tagline(id, b, q) AS v FROM u) d"
        " ON d.t_id = t.id",
    ),
    shape(
        "join-on-only-calls",
        "SELECT t.id, u.id FROM t JOIN u ON bucket(t.a, t.s, NULL) = bucket(u.t_id, u.b, NULL)",
    ),
]

SUBQUERIES = [
    shape(
        "subq-in",
        "SELECT id FROM t WHERE id IN (SELECT t_id FROM u WHERE ratio(q, 2) > 0.2)",
    ),
    shape(
        "subq-exists-correlated",
        "SELECT id FROM t WHERE EXISTS (SELECT 1 FROM u WHERE u.t_id = t.id"
        " AND tagline(t.a, u.b, u.q) LIKE '1%')",
    ),
    shape(
        "subq-scalar-correlated",
        "SELECT id, (SELECT MAX(scaled(u.x, t.n)) FROM u WHERE u.t_id = t.id) AS m FROM t",
    ),
    shape(
        "subq-outer-column-as-input",
        "SELECT id, (SELECT tagline(t.a, u.b, 1) FROM u WHERE u.id = 1) FROM t",
    ),
    shape(
        "subq-scalar-uncorrelated",
        "SELECT id, (SELECT bucket(a, s, x) FROM t WHERE id = 1) AS first FROM t",
    ),
    shape(
        "subq-compare-to-scalar",
        "SELECT id FROM t WHERE bucket(a, s, x) > (SELECT AVG(bucket(a, s, x)) FROM t)",
    ),
    shape(
        "subq-in-calls-both-sides",
        "SELECT id FROM t WHERE tagline(1, b, 1) IN (SELECT tagline(1, b, 1) FROM u)",
    ),
    shape(
        "subq-all-correlated",
        "SELECT id FROM t WHERE scaled(t.x, 2) >= ALL (SELECT scaled(t2.x, 2) FROM t t2"
        " WHERE t2.grp = t.grp AND t2.x IS NOT NULL) AND t.x IS NOT NULL",
    ),
]

DERIVED_AND_CTES = [
    shape(
        "derived-group",
        "SELECT v, COUNT(*) FROM (SELECT bucket(a, s, x) % 5 AS v FROM t) d GROUP BY v",
    ),
    shape(
        "derived-outer-call",
        "SELECT d.id, tagline(d.k, d.t, d.c) FROM (SELECT id, a DIV 3 AS k, CONCAT(b, '*') AS t,"
        " c FROM t WHERE grp <> 'c') d",
    ),
    shape(
        "derived-limited-inner-call",
        "SELECT * FROM (SELECT id, scaled(x, n) AS v FROM t ORDER BY id LIMIT 5) d ORDER BY id",
        ordered=True,
    ),
    shape(
        "derived-calls-inside-and-outside",
        "SELECT id, v, bucket(a, SUBSTRING(v, 1, 12), x) FROM (SELECT id, a, x,"
        " tagline(a, NULL, NULL) AS v"
        " FROM t) d",
    ),
    shape("derived-unaliased-item", "SELECT * FROM (SELECT id, tagline(a, b, c) FROM t) d"),
    shape(
        "cte-plain",
        "WITH p AS (SELECT id, a, b, c FROM t WHERE grp = 'a') SELECT id, tagline(a, b, c) FROM p",
    ),
    shape(
        "cte-call-inside",
        "WITH s AS (SELECT id, scaled(x, n) AS v FROM t) SELECT v > 0, COUNT(*) FROM s"
        " GROUP BY v > 0",
    ),
    shape(
        "cte-recursive-outer-call",
        "WITH RECURSIVE r (k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM r WHERE k < 6)"
        " SELECT k, tagline(k, CONCAT('r', k), k / 3), scaled(k * 1.25, k) FROM r",
    ),
    shape(
        "cte-read-in-union-branches",
        "WITH p AS (SELECT id, a, b, c FROM t WHERE grp = 'b') SELECT tagline(a, b, c) FROM p"
        " UNION ALL SELECT tagline(a, NULL, c) FROM p",
    ),
    shape(
        "cte-chained",
        "WITH p AS (SELECT * FROM t), q AS (SELECT * FROM p WHERE id > 8)"
        " SELECT id, bucket(a, s, x) FROM q",
    ),
]

SET_OPERATIONS = [
    shape(
        "union-distinct",
        "SELECT tagline(a, b, 1) FROM t UNION SELECT tagline(t_id, b, 1) FROM u",
    ),
    shape(
        "union-all-mixed-types",
        "SELECT id, scaled(x, n) AS v FROM t UNION ALL SELECT id, bucket(t_id, b, x) FROM u",
    ),
    shape(
        "union-order-limit",
        "SELECT id FROM t WHERE bucket(a, s, x) > 0 UNION SELECT id FROM u"
        " WHERE ratio(q, 1) < 0 ORDER BY id LIMIT 6",
        ordered=True,
    ),
    shape(
        "union-row-and-constant",
        "SELECT tagline(a, b, c) FROM t WHERE id = 1 UNION ALL SELECT tagline(1, 'k', 1)",
    ),
    shape("union-constants", "SELECT scaled(1, 2) UNION SELECT scaled(3, 4)"),
    shape(
        "intersect",
        "SELECT id FROM t INTERSECT SELECT t_id FROM u WHERE scaled(x, 1) IS NOT NULL",
    ),
    shape("except", "SELECT id FROM t WHERE bucket(a, s, x) > 0 EXCEPT SELECT t_id FROM u"),
]

WINDOWS_AND_MISC = [
    shape(
        "window-partition-by-call",
        "SELECT id, ROW_NUMBER() OVER (PARTITION BY bucket(a, s, x) % 2 ORDER BY id) FROM t",
    ),
    shape("window-running-sum", "SELECT id, SUM(scaled(x, n)) OVER (ORDER BY id) FROM t"),
    shape("window-lag", "SELECT id, LAG(tagline(a, b, c)) OVER (ORDER BY id) FROM t"),
    shape(
        "window-function-argument",
        "SELECT id, tagline(ROW_NUMBER() OVER (ORDER BY id), NULL, NULL) FROM t",
        xfail=WINDOW_IN_LOOKUP,
        xfail_paths=("table",),
    ),
    shape(
        "window-function-argument-without-columns",
        "SELECT id, tagline(COUNT(*) OVER (), NULL, NULL) FROM t",
        xfail=WINDOW_IN_LOOKUP,
        xfail_paths=("table",),
    ),
    shape(
        "window-rank-by-call",
        "SELECT id, RANK() OVER (ORDER BY ratio(c, x) DESC) AS r FROM t",
    ),
    shape(
        "select-into-variable",
        "SELECT tagline(a, b, c) INTO @tg FROM t WHERE id = 3",
        then=["SELECT @tg"],
    ),
    shape(
        "set-variable-from-subquery",
        "SET @sv = (SELECT scaled(x, n) FROM t WHERE id = 4)",
        then=["SELECT @sv"],
    ),
    shape("table-path-unforced", "SELECT id, tagline(a, b, 0.5), bucket(a, b, id) FROM many"),
]

QUALIFIED = [
    shape("qual-select", "SELECT id, {db}.tagline(a, b, c) AS v FROM t"),
    shape("qual-unaliased-item", "SELECT id, {db}.scaled(x, n) FROM t"),
    shape("qual-backticked", "SELECT id, `{db}`.`bucket`(a, s, x) FROM `{db}`.t"),
    shape(
        "qual-equals-unqualified",
        "SELECT id, {db}.tagline(a, b, c) = tagline(a, b, c) AS same FROM t",
    ),
    shape("qual-where", "SELECT id FROM t WHERE {db}.bucket(a, s, x) > 0"),
    shape(
        "qual-group-order",
        "SELECT {db}.tagline(1, grp, 1) AS k, SUM({db}.scaled(x, 2)) FROM t GROUP BY k ORDER BY k",
        ordered=True,
    ),
    shape("qual-constant", "SELECT {db}.ratio(1, 8), {db}.tagline(NULL, 'q', NULL)"),
    shape("qual-spaced-dot", "SELECT id, {db} . tagline(a, b, c) AS v FROM t"),
]

OTHER_DATABASE = [
    shape("other-select", "SELECT id, {db}.tagline(a, b, c) AS v FROM {db}.t", where="other"),
    shape("other-unaliased-item", "SELECT id, {db}.ratio(c, x) FROM {db}.t", where="other"),
    shape(
        "other-all-four",
        "SELECT id, {db}.tagline(a, b, c), {db}.scaled(x, n), {db}.ratio(c, x),"
        " {db}.bucket(a, s, x) FROM {db}.t",
        where="other",
    ),
    shape(
        "other-local-table",
        "SELECT id, {db}.bucket(k, s, NULL), {db}.tagline(k, s, id) FROM o",
        where="other",
    ),
    shape(
        "other-join-local-and-remote",
        "SELECT o.id, t.id, {db}.tagline(o.k, t.b, t.c) FROM o JOIN {db}.t t ON t.a = o.k",
        where="other",
    ),
    shape("other-constant", "SELECT {db}.scaled(1.5, 3), {db}.bucket(1, 'x', 2)", where="other"),
    shape(
        "other-where-group",
        "SELECT grp, COUNT(*) FROM {db}.t WHERE {db}.scaled(x, n) > 0 GROUP BY grp",
        where="other",
    ),
    shape(
        "other-subquery",
        "SELECT id FROM o WHERE {db}.bucket(k, s, 0) IN (SELECT {db}.bucket(a, b, 0) FROM {db}.t)",
        where="other",
    ),
    # Unqualified, the name means alias_other.tagline: an error on both sides.
    shape("other-unqualified-is-an-error", "SELECT tagline(1, 'x', 1)", where="other"),
    shape(
        "other-use-then-unqualified",
        "SELECT id, tagline(a, b, c) FROM t",
        setup=["USE {db}"],
        cleanup=["USE " + OTHER_DB],
        where="other",
    ),
]

CONVERSION_PROBES = [
    shape("probe-string-into-int", "SELECT tagline('3.7', 'x', 1)", xfail=STRING_INTO_INT),
    shape("probe-int-out-of-range", "SELECT tagline(3000000000, 'x', 1)", xfail=INT_RANGE),
    shape(
        "probe-int-out-of-range-row",
        "SELECT tagline(a * 2, 'x', 1) FROM t WHERE id = 4",
        xfail=INT_RANGE,
    ),
    shape(
        "probe-int-out-of-range-lax",
        "SELECT tagline(3000000000, 'x', 1)",
        setup=["SET SESSION sql_mode = ''"],
        cleanup=["SET SESSION sql_mode = DEFAULT"],
        xfail=INT_RANGE_LAX,
    ),
    shape(
        "probe-varchar-too-long",
        "SELECT tagline(1, REPEAT('x', 21), 1)",
        xfail=VARCHAR_TOO_LONG,
    ),
    shape("probe-bad-integer-text", "SELECT tagline('abc', 'x', 1)", xfail=BAD_INTEGER_TEXT),
    shape("probe-decimal-out-of-range", "SELECT scaled(123456789012, 1)", xfail=DECIMAL_RANGE),
    shape("probe-bigint-wraps", "SELECT scaled(1, 9223372036854775808)", xfail=BIGINT_WRAPS),
    shape("probe-infinite-answer", "SELECT ratio(1e300, 1e-300)"),
    shape("probe-trailing-spaces-fit", "SELECT tagline(1, CONCAT(REPEAT('x', 20), '   '), 1)"),
    shape("probe-decimal-rounding", "SELECT scaled(1.005e0, 1), scaled('2.675', 1)"),
    shape("probe-double-into-int-rounding", "SELECT tagline(2.5e0, 'x', 1), tagline(-3.5, 'x', 1)"),
]


def in_mode(mode: str) -> dict[str, Any]:
    """Setup and cleanup running a shape under another sql_mode."""
    return {
        "setup": [f"SET SESSION sql_mode = '{mode}'"],
        "cleanup": ["SET SESSION sql_mode = DEFAULT"],
    }


SQL_MODES = [
    shape(
        "mode-no-backslash-escapes-row",
        "SELECT id, tagline(a, 'x\\', c) FROM t",
        **in_mode("NO_BACKSLASH_ESCAPES"),
    ),
    shape(
        "mode-no-backslash-escapes-constant",
        "SELECT tagline(1, 'x\\''y', 1)",
        **in_mode("NO_BACKSLASH_ESCAPES"),
    ),
    shape(
        "mode-no-backslash-escapes-no-backslash",
        "SELECT id, tagline(a, 'it''s', c) FROM t",
        **in_mode("NO_BACKSLASH_ESCAPES"),
    ),
    shape(
        "mode-pipes-as-concat",
        "SELECT id, tagline(a, b || '!', c), scaled(x || '1', n) FROM t",
        **in_mode("PIPES_AS_CONCAT"),
    ),
    shape(
        "mode-pipes-as-concat-constant",
        "SELECT tagline(1, 'a' || 'b', 1)",
        **in_mode("PIPES_AS_CONCAT"),
    ),
    shape("mode-pipes-as-or", "SELECT id, tagline(a, b || c, 1) FROM t", **in_mode("")),
    shape(
        "mode-ansi-quotes-column-argument",
        'SELECT id, tagline(a, "b", c) FROM t',
        **in_mode("ANSI_QUOTES"),
    ),
    shape(
        "mode-ansi-quotes-only-column-is-quoted",
        'SELECT tagline(1, "b", 1) FROM t WHERE id = 1',
        **in_mode("ANSI_QUOTES"),
    ),
    shape(
        "mode-ansi-quotes-quoted-name",
        'SELECT id, "tagline"(a, b, c) FROM t',
        **in_mode("ANSI_QUOTES"),
        xfail=ANSI_QUOTED_NAME,
    ),
    shape("mode-ignore-space", "SELECT id, tagline (a, b, c) FROM t", **in_mode("IGNORE_SPACE")),
    shape(
        "mode-high-not-precedence",
        "SELECT id, bucket(NOT a BETWEEN -5 AND 5, s, x) FROM t",
        **in_mode("HIGH_NOT_PRECEDENCE"),
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
    *QUALIFIED,
    *OTHER_DATABASE,
    *CONVERSION_PROBES,
    *SQL_MODES,
]


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


def ctas(name: str, select: str, xfail: str | None = None, where: str = "home") -> Named:
    table = "{db}.made" if where == "other" else "made"
    return write(
        name, f"CREATE TABLE {table} AS {select}", tables=("made",), where=where, xfail=xfail
    )


WRITE_SHAPES = [
    write(
        "insert-select-all-four",
        f"INSERT INTO w (a, b, c, x, n, tag, amount, r, k) SELECT a, b, c, x, n, {ALL_FOUR} FROM t",
    ),
    write(
        "insert-values-constants",
        "INSERT INTO w (tag, amount, r, k) VALUES"
        " (tagline(1, 'x', 1), scaled(1.5, 2), ratio(1, 3), bucket(1, 'x', 1)),"
        " (tagline(NULL, NULL, NULL), scaled(NULL, 1), ratio(1, 0), bucket(NULL, NULL, NULL))",
    ),
    write(
        "insert-values-last-insert-id",
        "INSERT INTO w (tag) VALUES (tagline(2, 'li', 2))",
        then=["SELECT LAST_INSERT_ID(), ROW_COUNT()"],
    ),
    write("update-where", "UPDATE w SET tag = tagline(a, b, c) WHERE id > 2"),
    write(
        "update-all-four",
        "UPDATE w SET tag = tagline(a, b, c), amount = scaled(x, n), r = ratio(c, x),"
        " k = bucket(a, b, x)",
    ),
    write(
        "update-assignment-order",
        "UPDATE w SET a = a DIV 2, tag = tagline(a, b, c)",
        xfail=ASSIGNMENT_ORDER,
    ),
    write(
        "update-where-call",
        "UPDATE w SET n = n - 1 WHERE scaled(x, n) > 0",
        then=["SELECT ROW_COUNT()"],
    ),
    write("update-order-limit", "UPDATE w SET tag = tagline(a, b, c) ORDER BY id DESC LIMIT 2"),
    write(
        "update-multi-table",
        "UPDATE w JOIN t ON t.id = w.id SET w.tag = tagline(t.a, t.s, t.c),"
        " w.k = bucket(t.a, w.b, t.x)",
    ),
    write(
        "update-correlated-subquery",
        "UPDATE w SET amount = (SELECT scaled(t.x, t.n) FROM t WHERE t.id = w.id)",
    ),
    write("update-constant", "UPDATE w SET tag = tagline(9, 'const', 9) WHERE id = 1"),
    write("update-own-column-as-argument", "UPDATE w SET tag = tagline(a, tag, c)"),
    write("delete-where-call", "DELETE FROM w WHERE bucket(a, b, x) < 0"),
    write(
        "delete-order-limit",
        "DELETE FROM w WHERE scaled(x, n) IS NOT NULL ORDER BY id LIMIT 2",
    ),
    write(
        "delete-multi-table",
        "DELETE w FROM w JOIN t ON t.id = w.id WHERE tagline(t.a, t.b, t.c) LIKE '15%'",
    ),
    write(
        "delete-in-subquery",
        "DELETE FROM w WHERE id IN (SELECT id FROM t WHERE ratio(c, x) < 0)",
    ),
    write(
        "replace-select",
        "REPLACE INTO w (id, a, b, tag, k) SELECT id, a, b, tagline(a, b, c), bucket(a, s, x)"
        " FROM t WHERE id <= 5",
    ),
    write("replace-values", "REPLACE INTO w (id, tag) VALUES (1, tagline(1, 'r', 1))"),
    write("insert-select-self", "INSERT INTO w (a, b, tag) SELECT a, b, tagline(a, b, c) FROM w"),
    write(
        "insert-select-union",
        "INSERT INTO w (tag, amount) SELECT tagline(a, b, c), scaled(x, n) FROM t WHERE id < 4"
        " UNION ALL SELECT tagline(t_id, b, q), scaled(x, t_id) FROM u",
    ),
    write(
        "insert-select-on-duplicate",
        "INSERT INTO w (id, a, tag) SELECT id, a, tagline(a, b, c) FROM t WHERE id <= 3"
        " ON DUPLICATE KEY UPDATE tag = VALUES(tag)",
    ),
    ctas("ctas-tagline", "SELECT id, tagline(a, b, c) AS v FROM t"),
    ctas("ctas-scaled", "SELECT id, scaled(x, n) AS v FROM t"),
    ctas("ctas-ratio", "SELECT id, ratio(c, x) AS v FROM t"),
    ctas("ctas-bucket", "SELECT id, bucket(a, s, x) AS v FROM t", INT_RESULT_TYPE),
    ctas("ctas-unaliased", "SELECT id, tagline(a, b, c), scaled(x, n), ratio(c, x) FROM t"),
    ctas(
        "ctas-constants",
        "SELECT tagline(1, 'x', 1) AS tg, scaled(1.5, 2) AS sc, ratio(1, 3) AS ra,"
        " tagline(NULL, NULL, NULL) AS nn, scaled(NULL, 1) AS ns",
    ),
    ctas("ctas-constant-bucket", "SELECT bucket(1, 'x', 1) AS bu", INT_RESULT_TYPE),
    ctas(
        "ctas-qualified-from-other",
        "SELECT id, {db}.tagline(a, b, c) AS v, {db}.scaled(x, n) AS s FROM {db}.t",
        where="other",
    ),
    write(
        "update-qualified-from-other",
        "UPDATE {db}.w SET tag = {db}.tagline(a, b, c), amount = {db}.scaled(x, n)",
        where="other",
    ),
    write(
        "insert-qualified-from-other",
        "INSERT INTO {db}.w (a, b, tag) SELECT k, s, {db}.tagline(k, s, id) FROM o",
        where="other",
    ),
]


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
