"""A plan, a kept setting or a remembered rewrite never answers a statement whose meaning
changed (issue 15).

The proxy keeps what makes an ML statement cheap the second time: the session's settings
(proxy.ml.fastpath.known_settings), plans by shape (rewriter.shaped.plan_cache), the session's
last statements and their rewrites (proxy.ml.fastpath.memo), the callbacks' path
(proxy.ml.fastpath.quick). Each test here runs a statement until all of that is warm,
changes what the statement means (the sql_mode, the character set, the database, a
function's definition: through this proxy and behind its back), and runs it again: the
answers must be what the database gives for the same statements run directly, where
the same functions are stored functions (tests/support/oracle_backend.py), or what the
alias's model gives.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import mysql.connector
import pymysql
import pytest
from pymysql.constants import CLIENT

from proxy.ml.fastpath import planning
from proxy.ml.fastpath.lanes import ConstantLane
from proxy.ml.fastpath.point import PointStatement
from proxy.ml.fastpath.quick import PARTIAL
from proxy.ml.fastpath.single_trip import Served
from proxy.session.ml_statements import MLStatements
from proxy.wire.scanner import Shape as WireShape
from rewriter.ddl import parse_ml_ddl
from rewriter.lexer import ReadStatement, SqlSyntax, read_slots
from rewriter.registry import stub_statement
from rewriter.shaped import plan_cache
from rewriter.shaped.constant_calls import ConstantRecipe
from rewriter.shaped.plan_cache import Template
from rewriter.shaped.shapes import Shape
from tests.conftest import APP, RunningProxy, admin_connect, start_proxy, unique
from tests.oracle.test_ml_oracle import (
    COMMENTS,
    SCHEMA,
    Outcome,
    assert_same,
    run,
)
from tests.support import oracle_backend
from tests.support.backend import BackendInfo
from tests.support.fuzz_wire import LOGIN_CAPS, Wire, log_in
from tests.support.fuzz_wire import Outcome as WireOutcome

S = "aws_comprehend_detect_sentiment"
C = "aws_comprehend_detect_sentiment_confidence"
#: Two pairs of databases (one with the stored functions, one without), whose comments
#: differ: the same statement in the other database reads other rows.
DATABASES = {"a": ("cached_a_direct", "cached_a_proxy"), "b": ("cached_b_direct", "cached_b_proxy")}
MODELS = "python:tests.support.alias_test_models:"
ROUTES = (f"score-ep={MODELS}score", f"other-ep={MODELS}other_score")
#: Enough runs for every cache to be warm: the plan, the session's memo, the callbacks.
WARM = 4


def _comments(database: str) -> list[tuple[Any, ...]]:
    if database.startswith("cached_a"):
        return list(COMMENTS)
    return [(i, f"other text {t}", lang, grp, n) for i, t, lang, grp, n in COMMENTS]


@pytest.fixture(scope="module")
def databases(backend: BackendInfo) -> Iterator[None]:
    with admin_connect(backend) as admin, admin.cursor() as cur:
        for direct, proxied in DATABASES.values():
            for name, functions in ((direct, True), (proxied, False)):
                cur.execute(f"DROP DATABASE IF EXISTS {name}")
                cur.execute(f"CREATE DATABASE {name} CHARACTER SET utf8mb4")
                cur.execute(f"USE {name}")
                cur.execute(SCHEMA[0])
                if functions:
                    for function in oracle_backend.STORED_FUNCTIONS:
                        cur.execute(function)
                rows = _comments(name)
                cur.executemany("INSERT INTO comments VALUES (%s, %s, %s, %s, %s)", rows)
                cur.execute(f"GRANT ALL ON {name}.* TO '{APP.user}'@'%'")
    yield
    with admin_connect(backend) as admin, admin.cursor() as cur:
        for pair in DATABASES.values():
            for name in pair:
                cur.execute(f"DROP DATABASE IF EXISTS {name}")


@pytest.fixture(scope="module")
def cached_proxy(backend: BackendInfo, databases: None) -> Iterator[RunningProxy]:
    running = start_proxy(
        backend,
        comprehend_backend="python:tests.support.oracle_backend:crc_sentiment",
        endpoint=ROUTES,
        registry_refresh=0.2,
    )
    yield running
    running.stop()


def app_connect(backend: BackendInfo, database: str, **options: Any) -> pymysql.Connection[Any]:
    """The application's account straight to the backend (no proxy), autocommitting."""
    return pymysql.connect(
        host=backend.host,
        port=backend.port,
        user=APP.user,
        password=APP.password,
        database=database,
        autocommit=True,
        **options,
    )


def connector_through(proxy: RunningProxy) -> Any:
    """Connector/Python (server-side prepared statements) through the proxy, in the
    proxy side's database."""
    return mysql.connector.connect(
        host=proxy.host,
        port=proxy.port,
        user=APP.user,
        password=APP.password,
        database=DATABASES["a"][1],
        use_pure=True,
        ssl_disabled=True,
        autocommit=True,
    )


class Sides:
    """One connection through the proxy, one direct; each in its side's database."""

    def __init__(self, proxy: RunningProxy, backend: BackendInfo, **options: Any) -> None:
        self.proxy = proxy.connect(database=DATABASES["a"][1], **options)
        self.direct = app_connect(backend, DATABASES["a"][0], **options)

    def both(self, sql: str) -> None:
        """A statement of no result (a setting) on both sides."""
        for conn in (self.direct, self.proxy):
            with conn.cursor() as cur:
                cur.execute(sql)

    def use(self, side: str) -> None:
        direct, proxied = DATABASES[side]
        self.direct.select_db(direct)  # COM_INIT_DB
        with self.proxy.cursor() as cur:
            cur.execute(f"USE {proxied}")

    def compare(self, sql: str, times: int = WARM) -> Outcome | tuple[int, str]:
        """Run ``sql`` ``times`` through the proxy and once directly; the same outcome
        (its rows, or its error code) every time."""
        expected = _outcome(self.direct, sql)
        for _ in range(times):
            got = _outcome(self.proxy, sql)
            if isinstance(expected, Outcome) and isinstance(got, Outcome):
                assert_same(got, expected, False, sql)
            else:
                assert got == expected, sql
        return expected

    def close(self) -> None:
        self.proxy.close()
        self.direct.close()


def _outcome(conn: pymysql.Connection[Any], sql: str) -> Outcome | tuple[int, str]:
    try:
        return run(conn, sql)
    except pymysql.MySQLError as exc:
        return (exc.args[0], "")


@pytest.fixture
def sides(cached_proxy: RunningProxy, backend: BackendInfo) -> Iterator[Sides]:
    both = Sides(cached_proxy, backend)
    yield both
    both.close()


# --- the sql_mode -------------------------------------------------------------------------

MODE_CASES = {
    # A double-quoted "txt" is a string, or under ANSI_QUOTES the column.
    "ansi-quotes": (f"SELECT id, {S}(\"txt\", 'en') FROM comments WHERE id = 1", "ANSI_QUOTES"),
    "ansi-quotes-constant": (f'SELECT {S}("txt", "en")', "ANSI_QUOTES"),
    # The backslash escapes the quote, or is a character (and the statement then ends
    # elsewhere: here an error on both sides).
    "no-backslash-escapes": (
        f"SELECT {S}('it\\'s good', 'en'), {C}('it\\'s good', 'en')",
        "NO_BACKSLASH_ESCAPES",
    ),
    "no-backslash-escapes-text": (f"SELECT {S}('C:\\new', 'en')", "NO_BACKSLASH_ESCAPES"),
    # || is OR, or a concatenation: in the call's input and in the key query's WHERE.
    "pipes-as-concat-input": (
        f"SELECT id, {S}(n || 0, 'en') FROM comments WHERE id = 3",
        "PIPES_AS_CONCAT",
    ),
    "pipes-as-concat-where": (
        f"SELECT id, {S}(txt, lang) FROM comments WHERE txt || 'x' = 'Goodx'",
        "PIPES_AS_CONCAT",
    ),
    "ansi": (f"SELECT id, {S}(\"txt\", 'en') FROM comments WHERE txt || '' = 'GOOD'", "ANSI"),
}


@pytest.mark.parametrize("case", MODE_CASES.values(), ids=MODE_CASES.keys())
def test_a_statement_means_what_its_sql_mode_says_each_time(
    sides: Sides, case: tuple[str, str]
) -> None:
    sql, mode = case
    sides.compare(sql)
    sides.both(f"SET SESSION sql_mode = '{mode}'")
    sides.compare(sql)
    sides.both("SET SESSION sql_mode = DEFAULT")
    sides.compare(sql)


#: One shape, other literals: the statements read their own literals in each mode.
VARIED_MODE_CASES = {
    "ansi-quotes": ("SELECT id, {S}(\"txt\", 'en') FROM comments WHERE id = {i}", "ANSI_QUOTES"),
    "no-backslash-escapes": ("SELECT {S}('it\\'s {i}', 'en')", "NO_BACKSLASH_ESCAPES"),
    "pipes-as-concat": ("SELECT {S}('1' || '{i}', 'en')", "PIPES_AS_CONCAT"),
    # CONCAT with '' is its other argument, or NULL when '' is.
    "empty-string-is-null": ("SELECT {S}(CONCAT('x{i}', ''), 'en')", "EMPTY_STRING_IS_NULL"),
}


@pytest.mark.parametrize("case", VARIED_MODE_CASES.values(), ids=VARIED_MODE_CASES.keys())
def test_statements_of_one_shape_read_their_own_literals_in_each_mode(
    sides: Sides, case: tuple[str, str]
) -> None:
    template, mode = case
    statements = [template.format(S=S, i=i) for i in range(1, 6)]
    for setting in ("DEFAULT", f"'{mode}'", "DEFAULT"):
        sides.both(f"SET SESSION sql_mode = {setting}")
        for sql in statements:
            sides.compare(sql, times=2)


def test_a_mode_set_by_an_executed_statement_counts(sides: Sides) -> None:
    """PREPARE ... FROM 'SET ...' then EXECUTE: the EXECUTE changes the mode."""
    sql = f"SELECT id, {S}(\"txt\", 'en') FROM comments WHERE id = 2"
    sides.compare(sql)
    sides.both("PREPARE set_mode FROM 'SET SESSION sql_mode = ''ANSI_QUOTES'''")
    sides.compare(sql)
    sides.both("EXECUTE set_mode")
    sides.compare(sql)
    sides.both("DEALLOCATE PREPARE set_mode")


def test_a_mode_set_in_a_multi_statement_batch_counts(
    cached_proxy: RunningProxy, backend: BackendInfo
) -> None:
    sides = Sides(cached_proxy, backend, client_flag=CLIENT.MULTI_STATEMENTS)
    try:
        sql = f"SELECT id, {S}(\"txt\", 'en') FROM comments WHERE id = 2"
        sides.compare(sql)
        sides.both("SELECT 1; SET SESSION sql_mode = 'ANSI_QUOTES'")
        sides.compare(sql)
    finally:
        sides.close()


def test_a_mode_set_by_a_server_side_prepared_statement_counts(
    cached_proxy: RunningProxy, backend: BackendInfo, sides: Sides
) -> None:
    conn = connector_through(cached_proxy)
    try:
        sql = f"SELECT id, {S}(\"txt\", 'en') FROM comments WHERE id = 4"
        expected = {}
        for mode in ("", "ANSI_QUOTES"):
            sides.both(f"SET SESSION sql_mode = '{mode}'")
            expected[mode] = run(sides.direct, sql).rows
        prepared = conn.cursor(prepared=True)
        text = conn.cursor()
        for mode in ("", "ANSI_QUOTES", ""):
            prepared.execute("SET SESSION sql_mode = ?", (mode,))
            for _ in range(WARM):
                text.execute(sql)
                assert tuple(text.fetchall()) == expected[mode]
    finally:
        conn.close()


# --- the character set ----------------------------------------------------------------------


def test_a_statement_is_read_in_the_sessions_character_set_each_time(sides: Sides) -> None:
    sql = f"SELECT {S}('café crème', 'fr'), {S}(txt, 'fr') FROM comments WHERE id = 11"
    sides.compare(sql)
    for conn in (sides.direct, sides.proxy):
        conn.set_character_set("latin1")  # SET NAMES latin1, and the client's bytes too
    sides.compare(sql)
    sides.compare(f"SELECT {S}('naïve', 'fr')")
    for conn in (sides.direct, sides.proxy):
        conn.set_character_set("utf8mb4")
    sides.compare(sql)
    # In gbk 縗 ends in the byte of a backslash: read as UTF-8, the quote after it would
    # be escaped and the string would not end there.
    gbk = f"SELECT {S}('縗', 'zh'), {S}(txt, lang) FROM comments WHERE id = 12"
    sides.compare(gbk)
    for conn in (sides.direct, sides.proxy):
        conn.set_character_set("gbk")
    sides.compare(gbk)
    for conn in (sides.direct, sides.proxy):
        conn.set_character_set("utf8mb4")
    sides.compare(gbk)


@pytest.mark.parametrize("results", ["utf16", "ucs2", "utf32", "utf16le"])
def test_results_the_proxy_cannot_read_refuse_an_ml_statement_clearly(
    sides: Sides, results: str
) -> None:
    """The proxy's own queries read their results in the session's character_set_results:
    in one that does not write ASCII as ASCII an ML statement is refused with 1235 (it
    used to end the connection with an internal error); the session goes on, and a
    plain statement is the database's."""
    sql = f"SELECT id, {S}(txt, lang) FROM comments WHERE id = 3"
    sides.compare(sql)
    with sides.proxy.cursor() as cur:
        cur.execute(f"SET character_set_results = {results}")
        with pytest.raises(pymysql.MySQLError) as refused:
            cur.execute(sql)
        assert refused.value.args[0] == 1235
        assert "character_set_results" in refused.value.args[1]
        cur.execute("SET character_set_results = utf8mb4")
    sides.compare(sql)


#: Statements an application sends per request, with other literals each time.
PER_REQUEST = {
    "constant-calls": f"SELECT {S}('café {{0}}', 'fr') AS a, {C}('café {{0}}', 'fr')",
    "point-select": f"SELECT id, {S}(txt, 'fr'), 'é{{0}}' FROM comments WHERE id = {{0}}",
}


@pytest.mark.parametrize("template", PER_REQUEST.values(), ids=PER_REQUEST.keys())
def test_statements_of_a_recent_shape_are_recognised_without_the_lexer_and_read_anew(
    sides: Sides, cached_proxy: RunningProxy, monkeypatch: pytest.MonkeyPatch, template: str
) -> None:
    """A session recognises the next statements of a shape it sent lately
    (rewriter.shaped.matcher): no lexer pass, the answers the database gives. After SET
    NAMES the same bytes are other text, and are read as such."""
    statements = [template.format(i) for i in range(12)]
    with cached_proxy.connect(database=DATABASES["a"][1]) as other:
        for sql in statements:  # the answers cached, by another session (no memo here)
            run(other, sql)
    for sql in statements[:2]:  # the settings read (the task), then the shape (callbacks)
        sides.compare(sql, times=1)
    reads: list[str] = []

    def counted(text: str, syntax: SqlSyntax, parameters: bool = False) -> ReadStatement:
        reads.append(text)
        return read_slots(text, syntax, parameters)

    monkeypatch.setattr(planning, "read_slots", counted)
    for sql in statements[2:]:
        sides.compare(sql, times=1)
    assert reads == []
    sides.both("SET NAMES latin1")  # the clients still send UTF-8 bytes: other text now
    for sql in statements[:3]:
        sides.compare(sql, times=2)
    assert len(reads) >= 1


def _answers_cached_and_shape_warm(
    sides: Sides, proxy: RunningProxy, warm: list[str], statements: list[str]
) -> None:
    """Every statement's answers cached by another session; the ``warm`` ones through
    ``sides``: the settings read (the task), then the shape recent (the callbacks)."""
    with proxy.connect(database=DATABASES["a"][1]) as other:
        for sql in warm + statements:
            run(other, sql)
    for sql in warm:
        sides.compare(sql, times=1)


#: A shape's literals, each with whether a utf8mb4 session's splice answers it: plain text,
#: a character beyond the BMP (a '?' in the column's name), a backtick (doubled in the
#: alias), a name over 256 characters (cut), and texts the splice leaves to the recipe's
#: path (a double quote, a tab: the recipe does not take them as they are either).
SPLICED_TEXTS = {
    "café 1": True,
    "grin \U0001f600": True,
    "back`tick": True,
    "long " + "x" * 300: True,
    'say "hi"': False,
    "tab\there": False,
}


def test_a_utf8mb4_session_rewrites_a_recent_shapes_statements_on_their_bytes(
    sides: Sides, cached_proxy: RunningProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A statement of a recent shape whose calls all take literals is rewritten on its
    bytes (rewriter.shaped.constant_splice), not through its decoded text: the answers,
    the columns' names and types the database gives."""
    template = f"SELECT {S}('{{0}}', 'en'), {C}('{{0}}', 'en') AS c, {S}({{1}}, 'en')"
    warm = [template.format(f"warm {i}", i) for i in range(2)]
    statements = [template.format(text, f"00{i}") for i, text in enumerate(SPLICED_TEXTS)]
    _answers_cached_and_shape_warm(sides, cached_proxy, warm, statements)
    spliced: list[bool] = []
    recipes: list[str] = []

    def splicing(lane: ConstantLane, found: Any) -> Any:
        rewrite = original(lane, found)
        spliced.append(rewrite is not None)
        return rewrite

    def rewriting(recipe: ConstantRecipe, shape: Shape, answers: Any) -> str:
        recipes.append(shape.text)
        return recipe_rewrite(recipe, shape, answers)

    original, recipe_rewrite = ConstantLane.rewrite, ConstantRecipe.rewrite
    monkeypatch.setattr(ConstantLane, "rewrite", splicing)
    monkeypatch.setattr(ConstantRecipe, "rewrite", rewriting)
    for sql in statements:
        sides.compare(sql, times=1)
    assert spliced == [True] * sum(SPLICED_TEXTS.values())
    assert recipes == []


#: A point shape's literals: plain, a character beyond the BMP, a backtick and a name over
#: 256 characters in the column's name, an empty string.
POINT_TEXTS = ["plain", "grin \U0001f600", "back`tick", "long " + "x" * 300, ""]


def test_a_recent_point_shapes_statements_are_served_on_their_bytes(
    sides: Sides, cached_proxy: RunningProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A statement of a recent shape whose calls read rows sends its key queries and its
    rewrite made on its bytes (rewriter.shaped.point_splice), no plan filled in: the
    answers, the columns' names and types the database gives. Its two key queries'
    results, which often arrive in two reads, are gathered (proxy.transport.stream.MORE).
    A row whose answer is not cached goes to the task, which plans it then and reads the
    key queries' results."""
    template = (
        f"SELECT id, {S}(CONCAT(txt, '{{0}}'), lang) AS s, {C}(txt, 'en'), '{{0}}' "
        "FROM comments WHERE id IN ({1}, {2}) ORDER BY id"
    )
    warm = [template.format(f"warm {i}", i, i + 1) for i in range(1, 3)]
    statements = [template.format(text, i + 1, i + 3) for i, text in enumerate(POINT_TEXTS)]
    _answers_cached_and_shape_warm(sides, cached_proxy, warm, statements)
    answered: list[bool] = []
    filled: list[str] = []

    def answer(point: PointStatement, data: bytes) -> Any:
        rewrite = original(point, data)
        if rewrite is not PARTIAL:  # (the results not all in yet: offered again)
            answered.append(rewrite is not None)
        return rewrite

    def instantiated(template: Template, shape: Shape, utf8_session: bool = False) -> Any:
        filled.append(shape.text)
        return instantiate(template, shape, utf8_session)

    original, instantiate = PointStatement.answer, plan_cache.instantiate
    monkeypatch.setattr(PointStatement, "answer", answer)
    monkeypatch.setattr(plan_cache, "instantiate", instantiated)
    for sql in statements:
        sides.compare(sql, times=1)
    assert answered == [True] * len(statements)
    assert filled == []
    unseen = template.format("never asked", 2, 4)  # its answers not cached: the task's
    sides.compare(unseen, times=1)
    assert answered[-1:] == [False]
    assert filled == [unseen]
    sides.compare(unseen, times=1)  # now cached: on its bytes again
    assert answered[-1:] == [True]
    assert len(filled) == 1


#: Point shapes whose calls are whole select items (rewriter.single_trip): one round trip,
#: the answers written into the database's rows by the proxy. One call; two (aliased, a
#: literal, a column between); a star before a call, over a join. Their rows hold NULL,
#: empty and blank texts, characters beyond the BMP, other languages.
SINGLE_TRIPS = {
    "one-call": f"SELECT id, {S}(txt, lang) FROM comments WHERE id = {{0}}",
    "two-calls": (
        f"SELECT {S}(txt, 'en') AS s, n, {S}(txt, lang), 'é{{0}}' FROM comments "
        "WHERE id IN ({0}, {1})"
    ),
    "star-join": (
        f"SELECT *, {S}(c.txt, c.lang) FROM comments c JOIN comments d ON d.id = c.n "
        "WHERE c.id >= {0} AND c.id < {1} LIMIT 3"
    ),
}
#: What a session set first: nothing; latin1 results, which write a label as ASCII too (one
#: that does not, utf16, is refused by tests/unit/test_single_trip.py: the proxy's own
#: settings query cannot read its results); sql_modes that change text, CHAR values or
#: empty strings; a transaction (its status flag), a read-only one.
SESSION_SETUPS = {
    "default": (),
    "latin1-results": ("SET character_set_results = latin1",),
    "pad-char": ("SET sql_mode = CONCAT(@@sql_mode, ',PAD_CHAR_TO_FULL_LENGTH')",),
    "empty-string-null": ("SET sql_mode = CONCAT(@@sql_mode, ',EMPTY_STRING_IS_NULL')",),
    "no-backslash": ("SET sql_mode = CONCAT(@@sql_mode, ',NO_BACKSLASH_ESCAPES')",),
    "transaction": ("START TRANSACTION",),
    "read-only": ("SET SESSION TRANSACTION READ ONLY", "START TRANSACTION"),
}


def _served_spy(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Whether each single trip was answered in the callback (PointStatement.served)."""
    served: list[bool] = []
    original = PointStatement.served

    def spy(point: PointStatement, data: bytes) -> Any:
        result = original(point, data)
        if result is not PARTIAL:
            served.append(isinstance(result, Served))
        return result

    monkeypatch.setattr(PointStatement, "served", spy)
    return served


def _raw(wire: Wire, sql: str, caps: int) -> list[bytes]:
    """The payloads of the response to ``sql`` on a raw connection of capabilities
    ``caps``."""
    assert wire.send(b"\x03" + sql.encode())
    outcome = wire.read_response(WireShape.RESULT, WireOutcome(), caps)
    assert not outcome.closed and not outcome.silent, sql
    return outcome.payloads


@pytest.mark.parametrize("template", SINGLE_TRIPS.values(), ids=SINGLE_TRIPS.keys())
def test_a_point_select_whose_calls_are_whole_items_takes_one_round_trip(
    sides: Sides, cached_proxy: RunningProxy, monkeypatch: pytest.MonkeyPatch, template: str
) -> None:
    """Its answers and names are the database's with the functions stored, and it is
    answered in one trip each time (once the shape is recent and the answers cached)."""
    statements = [template.format(i, i + 3) for i in range(1, 16)]
    warm = [template.format(90 + i, 93 + i) for i in range(2)]
    _answers_cached_and_shape_warm(sides, cached_proxy, warm, statements)
    served = _served_spy(monkeypatch)
    for sql in statements:
        sides.compare(sql, times=2)
    assert served == [True] * (2 * len(statements))


@pytest.mark.parametrize("setup", SESSION_SETUPS.values(), ids=SESSION_SETUPS.keys())
@pytest.mark.parametrize("deprecate_eof", [False, True], ids=["eof", "ok"])
@pytest.mark.parametrize("template", SINGLE_TRIPS.values(), ids=SINGLE_TRIPS.keys())
def test_a_single_trip_sends_the_bytes_the_usual_two_trips_send(
    cached_proxy: RunningProxy,
    monkeypatch: pytest.MonkeyPatch,
    template: str,
    deprecate_eof: bool,
    setup: tuple[str, ...],
) -> None:
    """Byte for byte, the response the usual path gives (the key query, then the
    statement with the answers written in): every column definition, row, status flag
    and warning count, with an EOF or an OK ending the rows, after each of
    SESSION_SETUPS."""
    caps = LOGIN_CAPS | (CLIENT.DEPRECATE_EOF if deprecate_eof else 0)
    wire = log_in(cached_proxy.port, APP.user, APP.password, DATABASES["a"][1], 10.0, caps)
    try:
        for sql in setup:
            _raw(wire, sql, caps)
        statements = [template.format(i, i + 3) for i in range(1, 16)]
        for sql in [template.format(90 + i, 93 + i) for i in range(2)] + statements:
            _raw(wire, sql, caps)  # the settings read, the shape recent, every answer cached
        served = _served_spy(monkeypatch)
        single = [_raw(wire, sql, caps) for sql in statements]
        assert served == [True] * len(statements)
        monkeypatch.setattr(PointStatement, "served", lambda point, data: None)
        assert [_raw(wire, sql, caps) for sql in statements] == single
    finally:
        wire.close()


def test_a_single_trip_counts_what_the_usual_path_counts(
    sides: Sides, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Aurora_ml counters: each distinct key once per call, as the key query's
    DISTINCT gives them (rows 1 and 4 hold the same text and language)."""
    template = f"SELECT id, {S}(txt, lang) AS s, {S}(txt, 'en') FROM comments WHERE id IN ({{}})"
    for ids in ("1", "2"):  # the settings read, the shape recent, the answers cached
        sides.compare(template.format(ids), times=1)
    sides.compare(template.format("1, 4"), times=1)
    served = _served_spy(monkeypatch)
    counted = []
    for _ in range(2):
        before = session_status(sides.proxy, "Aurora_ml%")
        sides.compare(template.format("1, 4"), times=1)
        after = session_status(sides.proxy, "Aurora_ml%")
        counted.append({k: after[k] - before[k] for k in after})
        monkeypatch.setattr(PointStatement, "served", lambda point, data: None)
    assert served == [True]
    assert counted[0] == counted[1]
    assert counted[0]["Aurora_ml_cache_hit_cnt"] == 2


def test_a_point_select_not_answered_in_one_trip_is_served_the_usual_way(
    sides: Sides, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An answer not cached (asked once), a warning (SHOW WARNINGS shows the usual
    path's; the shape then takes two trips in the session), a user variable's
    assignment (nothing runs twice: no single trip)."""
    template = f"SELECT id, {S}(txt, '{{1}}'), n / {{2}} FROM comments WHERE id = {{0}}"
    for i in range(2):  # the settings read, then the shape recent
        sides.compare(template.format(i + 1, "en", 1), times=1)
    served = _served_spy(monkeypatch)
    oracle_backend.reset()
    for language in ("es", "de"):
        sides.compare(template.format(3, language, 1), times=1)  # asked, then cached
        sides.compare(template.format(3, language, 1), times=1)
    assert served == [False, True, False, True]
    assert oracle_backend.sent_inputs() == [("good", "es"), ("good", "de")]
    served.clear()
    sides.compare(template.format(3, "es", 0), times=1)  # division by zero: a warning
    assert served == [False]
    assert _outcome(sides.proxy, "SHOW WARNINGS") == _outcome(sides.direct, "SHOW WARNINGS")
    sides.compare(template.format(4, "es", 1), times=1)  # the shape's two trips from now on
    assert served == [False]
    counted = f"SELECT id, {S}(txt, '{{1}}'), @n := @n + 1 FROM comments WHERE id = {{0}}"
    sides.both("SET @n = 0")
    for i in range(2):
        sides.compare(counted.format(i + 1, "en"), times=1)
    served.clear()
    sides.compare(counted.format(4, "it"), times=1)  # not cached
    assert served == []
    assert _outcome(sides.proxy, "SELECT @n") == _outcome(sides.direct, "SELECT @n")


def test_a_point_statement_the_task_cannot_plan_is_served_from_the_start(
    sides: Sides, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The task takes a point statement over (its answer not cached) and its plan does
    not come (a bug of ours, made here): the key queries' results are read and dropped,
    and the statement is served from the start; the session goes on."""
    template = f"SELECT id, {S}(CONCAT(txt, '{{0}}'), lang) FROM comments WHERE id = {{1}}"
    for i in range(2):  # the settings read, then the shape recent
        sides.compare(template.format("warm", i + 1), times=1)
    refused: list[bytes] = []

    def unplanned(statements: MLStatements, point: PointStatement) -> None:
        refused.append(point.read.sql)
        return None

    monkeypatch.setattr(MLStatements, "_point_planned", unplanned)
    for i in range(3):
        sql = template.format(unique("unasked"), i + 1)
        sides.compare(sql, times=1)
        assert refused[-1:] == [sql.encode()]
    sides.compare("SELECT id, txt FROM comments WHERE id = 2", times=2)


def test_a_session_recognises_its_last_four_shapes_only(
    sides: Sides, cached_proxy: RunningProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Six shapes sent in turn: the last four are recognised, the first two fell out of
    the session's recent ones and are read again (planning.RECENT_SHAPES)."""
    shapes = [f"SELECT {S}('shape {k} {{0}}', 'en') AS s{k}" for k in range(6)]
    with cached_proxy.connect(database=DATABASES["a"][1]) as other:
        for template in shapes:
            for i in range(3):
                run(other, template.format(i))
    sides.compare(shapes[0].format(0), times=1)  # the settings read (the task)
    for template in shapes:
        sides.compare(template.format(1), times=1)  # each shape read once (callbacks)
    reads: list[str] = []

    def counted(text: str, syntax: SqlSyntax, parameters: bool = False) -> ReadStatement:
        reads.append(text)
        return read_slots(text, syntax, parameters)

    monkeypatch.setattr(planning, "read_slots", counted)
    for template in shapes[2:] + shapes[:2]:  # the last four first, then the two others
        sides.compare(template.format(2), times=1)
    assert [text.split("'")[1] for text in reads] == ["shape 0 2", "shape 1 2"]


#: A warm shape, then a statement whose "digits" the server does not read as digits: it
#: reads only ASCII 0-9 as digits, and U+0660-U+0669 (as every character above U+007F)
#: as an identifier's.
FOREIGN_DIGIT_CASES = {
    "constant-input": (f"SELECT {S}(12, 'en')", f"SELECT {S}(\u0661\u0662, 'en')"),
    "key-query-where": (
        f"SELECT id, {S}(txt, 'en') FROM comments WHERE id = 3",
        f"SELECT id, {S}(txt, 'en') FROM comments WHERE id = \u0663",
    ),
    "executable-comment-version": (
        f"SELECT /*!50000 {S}('good', 'en') */",
        f"SELECT /*!\u0665\u0660\u0660\u0660\u0660 {S}('good', 'en') */",
    ),
}


@pytest.mark.parametrize("case", FOREIGN_DIGIT_CASES.values(), ids=FOREIGN_DIGIT_CASES.keys())
def test_only_ascii_digits_are_numbers(sides: Sides, case: tuple[str, str]) -> None:
    warm, foreign = case
    sides.compare(warm)
    sides.compare(foreign)


# --- the database -----------------------------------------------------------------------------


def test_the_same_statement_in_another_database_reads_that_database(sides: Sides) -> None:
    sql = f"SELECT id, {S}(txt, lang), {C}(txt, lang) FROM comments WHERE id = 3"
    sides.compare(sql)
    sides.use("b")
    sides.compare(sql)
    sides.use("a")
    sides.compare(sql)


def test_a_temporary_table_shadows_the_table_it_is_named_like(sides: Sides) -> None:
    """A key query reads the session's temporary table, as the statement does; the
    table gone, the permanent one again."""
    statements = [
        f"SELECT id, {S}(txt, lang), {C}(txt, lang) FROM comments WHERE id = 3",
        f"SELECT id, {S}(txt, 'en') FROM comments WHERE id IN (1, 2, 3) ORDER BY id",
    ]
    for sql in statements:
        sides.compare(sql)
    sides.both(
        "CREATE TEMPORARY TABLE comments AS "
        "SELECT id, CONCAT('temporary ', id) AS txt, lang, grp, n FROM comments"
    )
    try:
        for sql in statements:
            sides.compare(sql)
    finally:
        sides.both("DROP TEMPORARY TABLE comments")
    for sql in statements:
        sides.compare(sql)


def alias_ddl(name: str, endpoint: str) -> str:
    return (
        f"CREATE FUNCTION {name}(a INT, b VARCHAR(20)) RETURNS INT "
        f"ALIAS AWS_SAGEMAKER_INVOKE_ENDPOINT ENDPOINT NAME '{endpoint}'"
    )


def values(conn: pymysql.Connection[Any], sql: str, times: int = WARM) -> list[Any]:
    """``sql``'s rows, the same each of ``times`` runs."""
    first = run(conn, sql).rows
    for _ in range(times - 1):
        assert run(conn, sql).rows == first, sql
    return list(first)


def test_an_unqualified_alias_is_the_current_databases(
    cached_proxy: RunningProxy, backend: BackendInfo
) -> None:
    """The same name in two databases, two models: score (a * 2 + len(b)), a * 100."""
    name = unique("f")
    conn = cached_proxy.connect(database=DATABASES["a"][1])
    try:
        run(conn, alias_ddl(name, "score-ep"))
        run(conn, f"USE {DATABASES['b'][1]}")
        run(conn, alias_ddl(name, "other-ep"))
        statement = f"SELECT {name}(3, 'ab'), {name}(id, 'x') FROM comments WHERE id = 2"
        for database, expected in (
            (DATABASES["a"][1], [(8, 5)]),
            (DATABASES["b"][1], [(300, 200)]),
        ):
            conn.select_db(database)
            assert values(conn, statement) == expected
            run(conn, f"USE {DATABASES['b' if database.startswith('cached_a') else 'a'][1]}")
            run(conn, f"USE {database}")
            assert values(conn, statement) == expected
    finally:
        conn.close()


# --- function definitions ------------------------------------------------------------------


@pytest.mark.parametrize("where", ["through the proxy", "behind its back"])
def test_a_redefined_alias_answers_at_once(
    cached_proxy: RunningProxy, backend: BackendInfo, where: str
) -> None:
    name = unique("f")
    database = DATABASES["a"][1]
    conn = cached_proxy.connect(database=database)
    direct = app_connect(backend, database)

    def define(endpoint: str) -> None:
        ddl = alias_ddl(name, endpoint)
        if where == "through the proxy":
            run(conn, ddl)
        else:  # another proxy, or mlproxy functions create: the stub, stored directly
            run(direct, stub_statement(parse_ml_ddl(ddl)))  # type: ignore[arg-type]

    try:
        run(conn, alias_ddl(name, "score-ep"))  # the name is known: watched from now on
        constant, per_row = (
            f"SELECT {name}(4, 'ab')",
            f"SELECT {name}(id, 'ab') FROM comments WHERE id = 2",
        )
        assert values(conn, constant) == [(10,)]
        assert values(conn, per_row) == [(6,)]
        run(direct if where == "behind its back" else conn, f"DROP FUNCTION {name}")
        define("other-ep")
        assert values(conn, constant) == [(400,)]
        assert values(conn, per_row) == [(200,)]
        run(direct if where == "behind its back" else conn, f"DROP FUNCTION {name}")
        for statement in (constant, per_row):
            with pytest.raises(pymysql.MySQLError) as caught:
                run(conn, statement)
            assert caught.value.args[0] == 1305  # as the database says of a dropped function
    finally:
        conn.close()
        direct.close()


@pytest.mark.parametrize("where", ["through the proxy", "behind its back"])
def test_an_alias_replaced_by_a_stored_function_is_the_stored_function(
    cached_proxy: RunningProxy, backend: BackendInfo, where: str
) -> None:
    """The same name, now an ordinary stored function: the database runs it, the model
    is not asked; an alias again, and the model answers again."""
    name = unique("f")
    database = DATABASES["a"][1]
    conn = cached_proxy.connect(database=database)
    direct = app_connect(backend, database)
    side = direct if where == "behind its back" else conn
    constant = f"SELECT {name}(4, 'ab')"
    per_row = f"SELECT {name}(id, 'ab') FROM comments WHERE id = 2"
    try:
        run(conn, alias_ddl(name, "score-ep"))
        assert values(conn, constant) == [(10,)]
        assert values(conn, per_row) == [(6,)]
        run(side, f"DROP FUNCTION {name}")
        run(
            side,
            f"CREATE FUNCTION {name}(a INT, b VARCHAR(20)) RETURNS INT DETERMINISTIC "
            "RETURN a + 1000",
        )
        assert values(conn, constant) == [(1004,)]
        assert values(conn, per_row) == [(1002,)]
        run(side, f"DROP FUNCTION {name}")
        run(conn, alias_ddl(name, "score-ep"))
        assert values(conn, constant) == [(10,)]
        assert values(conn, per_row) == [(6,)]
    finally:
        run(direct, f"DROP FUNCTION IF EXISTS {name}")
        conn.close()
        direct.close()


def test_a_prepared_statement_follows_a_redefinition(
    cached_proxy: RunningProxy, backend: BackendInfo
) -> None:
    name = unique("f")
    database = DATABASES["a"][1]
    creator = cached_proxy.connect(database=database)
    run(creator, alias_ddl(name, "score-ep"))
    conn = connector_through(cached_proxy)
    try:
        cur = conn.cursor(prepared=True)
        statement = f"SELECT id, {name}(id, %s) FROM comments WHERE id = %s"
        for i in range(1, 6):
            cur.execute(statement, ("ab", i))
            assert cur.fetchall() == [(i, i * 2 + 2)]
        admin = admin_connect(backend, database=database)
        with admin.cursor() as admin_cur:  # behind the proxy's back
            admin_cur.execute(f"DROP FUNCTION {name}")
            admin_cur.execute(stub_statement(parse_ml_ddl(alias_ddl(name, "other-ep"))))  # type: ignore[arg-type]
        admin.close()
        for i in range(1, 6):
            cur.execute(statement, ("ab", i))
            assert cur.fetchall() == [(i, i * 100)]
    finally:
        conn.close()
        creator.close()


# --- prepared statements, privileges, counters, round trips ----------------------------------


def test_a_prepared_statement_is_planned_once_for_all_its_executions(
    cached_proxy: RunningProxy, backend: BackendInfo, sides: Sides
) -> None:
    statement = f"SELECT id, {S}(txt, %s), {C}(txt, %s) FROM comments WHERE id = %s"
    conn = connector_through(cached_proxy)
    assert cached_proxy.server is not None and cached_proxy.server.ctx is not None
    plans = cached_proxy.server.ctx.ml.plans
    try:
        cur = conn.cursor(prepared=True)
        cur.execute(statement, ("en", "en", 1))
        cur.fetchall()
        planned = len(plans)
        for i, lang in [(i, lang) for i in range(1, 26) for lang in ("en", "fr")]:
            cur.execute(statement, (lang, lang, i))
            direct = run(sides.direct, statement % (f"'{lang}'", f"'{lang}'", i)).rows
            assert tuple(cur.fetchall()) == direct
        assert len(plans) == planned  # every execution: the one template
    finally:
        conn.close()


def test_revoked_privileges_apply_to_a_statement_with_cached_answers(
    cached_proxy: RunningProxy, backend: BackendInfo
) -> None:
    user, password = unique("u"), "u-pw"
    database = DATABASES["a"][1]
    direct_db = DATABASES["a"][0]
    with admin_connect(backend) as admin, admin.cursor() as cur:
        cur.execute(f"CREATE USER '{user}'@'%' IDENTIFIED BY '{password}'")
        for name in (database, direct_db):  # table privileges: they apply at once
            cur.execute(f"GRANT SELECT ON {name}.comments TO '{user}'@'%'")
        cur.execute(f"GRANT EXECUTE ON {direct_db}.* TO '{user}'@'%'")
    options: dict[str, Any] = {"user": user, "password": password, "autocommit": True}
    conn = pymysql.connect(
        host=cached_proxy.host, port=cached_proxy.port, database=database, **options
    )
    direct = pymysql.connect(host=backend.host, port=backend.port, database=direct_db, **options)
    try:
        statement = f"SELECT id, {S}(txt, 'en') FROM comments WHERE id = 1"
        constant = f"SELECT {S}('Good', 'en')"
        assert values(conn, statement) == list(run(direct, statement).rows)
        assert values(conn, constant) == list(run(direct, constant).rows)
        with admin_connect(backend) as admin, admin.cursor() as cur:
            for name in (database, direct_db):
                cur.execute(f"REVOKE SELECT ON {name}.comments FROM '{user}'@'%'")
        for side in (direct, conn):
            with pytest.raises(pymysql.MySQLError) as caught:
                run(side, statement)
            assert caught.value.args[0] == 1142
        assert values(conn, constant) == list(run(direct, constant).rows)  # reads no table
    finally:
        conn.close()
        direct.close()
        with admin_connect(backend) as admin, admin.cursor() as cur:
            cur.execute(f"DROP USER '{user}'@'%'")


def session_status(conn: pymysql.Connection[Any], like: str) -> dict[str, int]:
    with conn.cursor() as cur:
        cur.execute(f"SHOW SESSION STATUS LIKE '{like}'")
        return {name: int(value) for name, value in cur.fetchall() if value.isdigit()}


@pytest.mark.parametrize(
    ("statement", "selects"),
    [
        (f"SELECT id, {S}(txt, 'en') FROM comments WHERE id = 1", 1),  # one trip
        (f"SELECT id, {S}(TRIM(txt), 'en') FROM comments WHERE id = 1", 2),  # key query, final
        (f"SELECT {S}('Good', 'en')", 1),  # the final statement alone
    ],
)
def test_a_warm_statement_costs_its_own_queries_only(
    sides: Sides, statement: str, selects: int
) -> None:
    """No settings, registry or privilege query, no prepared statement: what the backend
    counts of the session (its Com_* status) and the Aurora_ml counters say so."""
    values(sides.proxy, statement)
    before = session_status(sides.proxy, "Com\\_%")
    ml_before = session_status(sides.proxy, "Aurora_ml%")
    runs = 10
    values(sides.proxy, statement, runs)
    after = session_status(sides.proxy, "Com\\_%")
    ml_after = session_status(sides.proxy, "Aurora_ml%")
    changed = {k: after[k] - before[k] for k in after if after[k] != before[k]}
    assert changed.pop("Com_select") == selects * runs
    assert changed.pop("Com_show_status", 0) <= 2  # the SHOW STATUS statements themselves
    assert changed == {}
    ml = {k: ml_after[k] - ml_before[k] for k in ml_after}
    assert ml["Aurora_ml_logical_request_cnt"] == runs
    assert ml["Aurora_ml_cache_hit_cnt"] == runs
    assert ml["Aurora_ml_logical_response_cnt"] == runs
    assert ml["Aurora_ml_actual_request_cnt"] == 0


def test_a_row_that_changed_gets_the_answer_of_its_new_value(
    sides: Sides, backend: BackendInfo
) -> None:
    """The session remembers the rewrite its key query's reply gave: another reply (the
    row was updated behind the proxy's back) is answered anew."""
    statement = f"SELECT id, {S}(txt, lang), {C}(txt, lang) FROM comments WHERE id = 21"
    try:
        for text in ("a", "Bad service", "a"):
            with admin_connect(backend) as admin, admin.cursor() as cur:
                for database in DATABASES["a"]:
                    cur.execute(f"UPDATE {database}.comments SET txt = %s WHERE id = 21", (text,))
            sides.compare(statement)
    finally:
        with admin_connect(backend) as admin, admin.cursor() as cur:
            for database in DATABASES["a"]:
                cur.execute(f"UPDATE {database}.comments SET txt = 'a' WHERE id = 21")


def test_with_the_plan_cache_off_every_statement_is_planned_alike(
    backend: BackendInfo, databases: None
) -> None:
    """ml_plan_cache_entries = 0: no plan kept, no memo, no callbacks' path; the same
    answers, and a template is never kept."""
    off = start_proxy(
        backend,
        comprehend_backend="python:tests.support.oracle_backend:crc_sentiment",
        ml_plan_cache_entries=0,
    )
    sides = Sides(off, backend)
    try:
        for statement in (
            f"SELECT id, {S}(txt, lang), {C}(txt, 'en') FROM comments WHERE id IN (1, 11, 12)",
            f"SELECT {S}('Good', 'en'), {S}('café', 'fr')",
        ):
            sides.compare(statement)
        assert off.server is not None and off.server.ctx is not None
        assert len(off.server.ctx.ml.plans) == 0
    finally:
        sides.close()
        off.stop()
