"""Server-side prepared statements through the proxy, with mysql-connector-python.

Both implementations of mysql-connector run every script that both support: the pure-Python
one (in this process) and the C extension (libmysqlclient; in a child process, see
tests/support/prepared_worker.py for why). Cursors are created with ``prepared=True``, so the
traffic is COM_STMT_PREPARE / EXECUTE / RESET / CLOSE with binary-protocol rows. Every
script runs once through the proxy and once directly against the backend, and the two
outcomes (rows, ``cursor.description``, rowcounts, errors) must be equal; on top of that the
stored values are checked against the inputs through the server's own text rendering (HEX,
CAST AS CHAR), which does not depend on the client library's binary-protocol codecs.

The C extension has client-side defects, identical direct and through the proxy, that these
tests work around rather than mistake for proxy bugs: it cannot bind ints of 2**63 and more
(OverflowError), binds Python floats as 4-byte FLOAT, binds every ``timedelta`` as
00:00:00, corrupts its heap when binding ``Decimal`` parameters (valgrind: invalid write in
MySQLPrepStmt_execute, mysql_capi.c:3438; it segfaults a few statements later, also with no
proxy involved), decodes BIGINT UNSIGNED above 2**63 - 1 as negative numbers, cuts strings at the
first NUL byte when decoding, and reports ``rowcount`` -1 per execution in ``executemany``.
The pure implementation's binary TIME codec gets negative values wrong both ways (it uses
``timedelta.days`` as the sign and keeps the positive ``seconds``: -12:34:56 is sent as
-35:25:04, and a stored -12:34:56 is read back as +12:34:56). Parameters these codecs get
wrong are sent as strings (the server converts them), and decoded values are compared with
the inputs only where the implementation's codecs are faithful.

The pure implementation also reads only the first 16 MiB packet of a binary-protocol row,
so only the C extension reads a blob of more than 16 MiB back through a prepared statement.

COM_STMT_SEND_LONG_DATA and COM_STMT_FETCH are only reachable with the pure implementation
(the C extension has no long-data or cursor-type API), and a prepared CALL with several
result sets is beyond both cursors, so those tests use the pure connection's lower layers.

Last, a KILL QUERY of a proxy connection id (the id from the greeting, which drivers expose
as the connection's thread id) sent as a server-side prepared statement: the proxy only
translates its ids in COM_QUERY, so this is an expected failure for now.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import io
import os
import pickle
import select
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import mysql.connector
import pytest
from mysql.connector.constants import FieldFlag, FieldType

from tests.conftest import RunningProxy
from tests.support.backend import BackendInfo
from tests.support.prepared_worker import (
    Failure,
    Outcome,
    Result,
    Step,
    Target,
    connect,
    run,
)

REPO = Path(__file__).resolve().parents[2]
WORKER_REPLY_TIMEOUT = 120

INT64_MAX = 2**63 - 1
UINT64_MAX = 2**64 - 1


# -- running scripts with either implementation --------------------------------------------


class PureRunner:
    """mysql-connector's pure-Python implementation, in this process."""

    name = "pure"
    pure = True

    def run(self, script: str, target: Target, *args: Any) -> Any:
        return run(script, target, True, *args)


class CextRunner:
    """mysql-connector's C extension, in a child that loaded it before Python's ssl.

    A child that dies (the C extension can crash) is replaced before the next script, so
    one crash fails one test, not every test after it.
    """

    name = "cext"
    pure = False

    def __init__(self) -> None:
        self.process = self._start()

    def _start(self) -> subprocess.Popen[bytes]:
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-X",
                "faulthandler",
                "-c",
                "import _mysql_connector; from tests.support.prepared_worker import serve; serve()",
            ],
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        hello = self._receive()
        if hello[0] != "hello" or hello[1] is not True:
            self.close()
            pytest.fail(
                "mysql-connector's C extension is installed but did not load "
                f"(mysql.connector.HAVE_CEXT is {hello[1]!r} in the worker): {hello}"
            )
        return self.process

    def _receive(self) -> tuple[Any, ...]:
        assert self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], WORKER_REPLY_TIMEOUT)
        if not ready:
            self.close()
            pytest.fail(f"the C-extension worker did not answer in {WORKER_REPLY_TIMEOUT} s")
        try:
            message: tuple[Any, ...] = pickle.load(self.process.stdout)
        except EOFError:
            status = self.process.wait(10)
            self.close()
            pytest.fail(f"the C-extension worker died (exit status {status}); see its stderr")
        return message

    def run(self, script: str, target: Target, *args: Any) -> Any:
        if self.process.poll() is not None:
            self._start()
        assert self.process.stdin is not None
        pickle.dump(("run", script, target, args), self.process.stdin)
        self.process.stdin.flush()
        reply = self._receive()
        if reply[0] != "ok":
            pytest.fail(f"the C-extension worker raised:\n{reply[1]}")
        return reply[1]

    def close(self) -> None:
        if self.process.stdin is not None:
            with contextlib.suppress(OSError):
                self.process.stdin.close()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
        if self.process.stdout is not None:
            self.process.stdout.close()


Runner = PureRunner | CextRunner


@pytest.fixture(scope="module")
def cext_runner() -> Iterator[CextRunner]:
    runner = CextRunner()
    yield runner
    runner.close()


@pytest.fixture(params=["pure", "cext"])
def runner(request: pytest.FixtureRequest) -> Runner:
    if request.param == "pure":
        return PureRunner()
    cext: CextRunner = request.getfixturevalue("cext_runner")
    return cext


@pytest.fixture
def through(proxy: RunningProxy) -> Target:
    return Target(proxy.host, proxy.port)


@pytest.fixture
def straight(backend: BackendInfo) -> Target:
    return Target(backend.host, backend.port)


def compare(
    runner: Runner,
    through: Target,
    straight: Target,
    steps: Sequence[Step],
    cleanup: Sequence[str] = (),
) -> list[Outcome]:
    """Run a script through the proxy and directly; they must agree. Returns the former."""
    via_proxy: list[Outcome] = runner.run("run_script", through, steps, cleanup)
    direct: list[Outcome] = runner.run("run_script", straight, steps, cleanup)
    assert via_proxy == direct
    return via_proxy


def result(outcome: Outcome) -> Result:
    assert isinstance(outcome, Result), f"statement failed: {outcome}"
    return outcome


def bindable(value: Any, runner: Runner) -> Any:
    """The value as a parameter the implementation binds faithfully (see the docstring)."""
    if isinstance(value, datetime.timedelta) and value < datetime.timedelta(0):
        return time_text(value)
    if runner.pure:
        return value
    if isinstance(value, int) and not isinstance(value, bool) and value > INT64_MAX:
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime.timedelta):
        return time_text(value)
    return value


def bind_rows(rows: Sequence[Sequence[Any]], runner: Runner) -> list[tuple[Any, ...]]:
    return [tuple(bindable(value, runner) for value in row) for row in rows]


def time_text(value: datetime.timedelta) -> str:
    """A timedelta as MariaDB prints a TIME(6): [-]HH:MM:SS.ffffff."""
    sign = "-" if value < datetime.timedelta(0) else ""
    micros = abs(value) // datetime.timedelta(microseconds=1)
    seconds, micro = divmod(micros, 1_000_000)
    minutes, second = divmod(seconds, 60)
    hour, minute = divmod(minutes, 60)
    return f"{sign}{hour:02d}:{minute:02d}:{second:02d}.{micro:06d}"


def ddl(sql: str) -> Step:
    return Step(sql, prepared=False)


def text(sql: str) -> Step:
    """A statement over the text protocol (COM_QUERY)."""
    return Step(sql, prepared=False)


def counters(outcome: Outcome) -> dict[str, int]:
    return {str(name): int(value) for name, value in result(outcome).rows}


STMT_COUNTERS = "SHOW SESSION STATUS LIKE 'Com\\_stmt\\_%'"


# -- values of every common type ------------------------------------------------------------

INTEGER_COLUMNS = (
    "ti TINYINT, tu TINYINT UNSIGNED, si SMALLINT, su SMALLINT UNSIGNED, "
    "mi MEDIUMINT, mu MEDIUMINT UNSIGNED, ii INT, iu INT UNSIGNED, "
    "bi BIGINT, bu BIGINT UNSIGNED"
)
INTEGER_NAMES = "ti, tu, si, su, mi, mu, ii, iu, bi, bu"
INTEGER_ROWS = [
    (1, -128, 0, -32768, 0, -8388608, 0, -(2**31), 0, -(2**63), 0),
    (2, 127, 255, 32767, 65535, 8388607, 16777215, 2**31 - 1, 2**32 - 1, INT64_MAX, UINT64_MAX),
    (3, -1, 1, -1, 1, -1, 1, -1, 1, -1, 2**63),
    (4, 0, 128, 0, 32768, 0, 8388608, 0, 2**31, 0, 2**63 + 12345),
]


def test_integer_extremes_round_trip(runner: Runner, through: Target, straight: Target) -> None:
    table = "ps_integers"
    select = f"SELECT * FROM {table} WHERE id = ?"
    steps = [
        ddl(f"CREATE TABLE {table} (id INT PRIMARY KEY, {INTEGER_COLUMNS})"),
        Step(
            f"INSERT INTO {table} VALUES ({', '.join('?' * 11)})",
            many=bind_rows(INTEGER_ROWS, runner),
        ),
        *[Step(select, (row[0],)) for row in INTEGER_ROWS],
        text(f"SELECT CONCAT_WS(',', {INTEGER_NAMES}) FROM {table} ORDER BY id"),
        Step(
            f"SELECT id FROM {table} WHERE bu = ? OR bi = ?",
            (bindable(UINT64_MAX, runner), -(2**63)),
        ),
        Step("SELECT ? AS echoed_min, ? AS echoed_max", (-(2**63), INT64_MAX)),
    ]
    outcomes = compare(runner, through, straight, steps, [f"DROP TABLE IF EXISTS {table}"])
    stored = [row[0] for row in result(outcomes[6]).rows]
    assert stored == [",".join(str(value) for value in row[1:]) for row in INTEGER_ROWS]
    assert result(outcomes[7]).rows == [(1,), (2,)]
    assert result(outcomes[8]).rows == [(-(2**63), INT64_MAX)]
    if runner.pure:
        assert [result(outcome).rows[0] for outcome in outcomes[2:6]] == INTEGER_ROWS


def test_unsigned_bigint_above_int64_decodes_exactly_with_pure(
    through: Target, straight: Target
) -> None:
    steps = [Step("SELECT CAST(? AS UNSIGNED) AS big, ? AS raw", (UINT64_MAX, 2**63 + 1))]
    outcomes = compare(PureRunner(), through, straight, steps)
    assert result(outcomes[0]).rows == [(UINT64_MAX, 2**63 + 1)]
    big, raw = result(outcomes[0]).description or []
    assert big[1] == FieldType.LONGLONG and big[7] & FieldFlag.UNSIGNED
    assert raw[1] == FieldType.LONGLONG and raw[7] & FieldFlag.UNSIGNED


FLOAT_ROWS = [
    (1, 1.5e300, 3.25, Decimal("12345678901234567890.0123456789")),
    (2, -2.2250738585072014e-308, -0.5, Decimal("-0.0000000001")),
    (3, 0.1, 16777216.0, Decimal("99999999999999999999.9999999999")),
    (4, 0.0, -1e10, Decimal("0E-10")),
]


def test_double_float_and_decimal_round_trip(
    runner: Runner, through: Target, straight: Target
) -> None:
    table = "ps_floats"
    exact = " OR ".join(
        f"(id = {i} AND d = {d!r} AND f = {f!r} AND num = {dec})" for i, d, f, dec in FLOAT_ROWS
    )
    steps = [
        ddl(f"CREATE TABLE {table} (id INT PRIMARY KEY, d DOUBLE, f FLOAT, num DECIMAL(30,10))"),
        Step(f"INSERT INTO {table} VALUES (?, ?, ?, ?)", many=bind_rows(FLOAT_ROWS, runner)),
        Step(f"SELECT * FROM {table} WHERE id > ? ORDER BY id", (0,)),
        text(f"SELECT COUNT(*) FROM {table} WHERE {exact}"),
        text(f"SELECT CAST(num AS CHAR) FROM {table} ORDER BY id"),
    ]
    outcomes = compare(runner, through, straight, steps, [f"DROP TABLE IF EXISTS {table}"])
    assert result(outcomes[3]).rows == [(len(FLOAT_ROWS),)]
    assert [row[0] for row in result(outcomes[4]).rows] == [f"{dec:.10f}" for *_, dec in FLOAT_ROWS]
    assert result(outcomes[2]).rows == FLOAT_ROWS


STRINGS = [
    "O'Brien",
    "back\\slash \\1 \\' \\\\",
    "nul\x00byte\x00",
    "x' OR '1'='1",
    "emoji 😀🚀 and ünïcödé",
    "",
    '"double" `back` ; -- comment',
    "%s ? :1 %(name)s",
]


def test_strings_are_stored_literally(runner: Runner, through: Target, straight: Target) -> None:
    table = "ps_strings"
    rows = [(n, value, value * 3) for n, value in enumerate(STRINGS, 1)]
    steps = [
        ddl(
            f"CREATE TABLE {table} (id INT PRIMARY KEY, s VARCHAR(255), t TEXT)"
            " CHARACTER SET utf8mb4"
        ),
        Step(f"INSERT INTO {table} VALUES (?, ?, ?)", many=rows),
        Step(f"SELECT id, s, t FROM {table} WHERE id >= ? ORDER BY id", (1,)),
        text(f"SELECT HEX(s), HEX(t) FROM {table} ORDER BY id"),
        Step(f"SELECT COUNT(*) FROM {table} WHERE s = ?", ("x' OR '1'='1",)),
        Step(f"SELECT id FROM {table} WHERE s = ? AND t = ?", ("O'Brien", "O'Brien" * 3)),
        Step("SELECT ? AS echoed", ("x' OR '1'='1",)),
    ]
    outcomes = compare(runner, through, straight, steps, [f"DROP TABLE IF EXISTS {table}"])
    assert result(outcomes[3]).rows == [
        (s.encode().hex().upper(), t.encode().hex().upper()) for _, s, t in rows
    ]
    assert result(outcomes[4]).rows == [(1,)]
    assert result(outcomes[5]).rows == [(1,)]
    decoded = result(outcomes[2]).rows
    if runner.pure:
        assert decoded == rows
    else:  # it cuts strings at the first NUL byte when decoding (see the module docstring)
        assert [got for got, sent in zip(decoded, rows, strict=True) if "\x00" not in sent[1]] == [
            sent for sent in rows if "\x00" not in sent[1]
        ]
    assert result(outcomes[6]).rows == [("x' OR '1'='1",)]


ALL_BYTES = bytes(range(256))


def test_all_byte_values_round_trip_in_varbinary_and_blob(
    runner: Runner, through: Target, straight: Target
) -> None:
    table = "ps_bytes"
    rows = [
        (1, ALL_BYTES, ALL_BYTES * 4),
        (2, ALL_BYTES[::-1], b"\x00"),
        (3, b"", b"\\'\"\x00\x1a\r\n"),
    ]
    steps = [
        ddl(f"CREATE TABLE {table} (id INT PRIMARY KEY, vb VARBINARY(256), bl BLOB)"),
        Step(f"INSERT INTO {table} VALUES (?, ?, ?)", many=rows),
        Step(f"SELECT id, vb, bl FROM {table} WHERE id >= ? ORDER BY id", (1,)),
        text(f"SELECT HEX(vb), HEX(bl) FROM {table} ORDER BY id"),
        Step(f"SELECT id FROM {table} WHERE vb = ?", (ALL_BYTES,)),
    ]
    outcomes = compare(runner, through, straight, steps, [f"DROP TABLE IF EXISTS {table}"])
    assert result(outcomes[3]).rows == [(vb.hex().upper(), bl.hex().upper()) for _, vb, bl in rows]
    assert result(outcomes[4]).rows == [(1,)]
    assert result(outcomes[2]).rows == rows


ZERO = datetime.timedelta(0)
TEMPORAL_ROWS = [
    (
        1,
        datetime.date(2024, 2, 29),
        datetime.datetime(2024, 2, 29, 23, 59, 58, 123456),
        -datetime.timedelta(hours=12, minutes=34, seconds=56, microseconds=789),
    ),
    (
        2,
        datetime.date(1000, 1, 1),
        datetime.datetime(9999, 12, 31, 23, 59, 59, 999999),
        datetime.timedelta(hours=838, minutes=59, seconds=59),
    ),
    (
        3,
        datetime.date(9999, 12, 31),
        datetime.datetime(1970, 1, 1, 0, 0, 0, 1),
        -datetime.timedelta(hours=838, minutes=59, seconds=59),
    ),
    (4, datetime.date(1970, 1, 1), datetime.datetime(2000, 1, 1), datetime.timedelta(0)),
]


def test_date_datetime_and_time_round_trip(
    runner: Runner, through: Target, straight: Target
) -> None:
    table = "ps_temporal"
    steps = [
        ddl(f"CREATE TABLE {table} (id INT PRIMARY KEY, d DATE, dt DATETIME(6), t TIME(6))"),
        Step(f"INSERT INTO {table} VALUES (?, ?, ?, ?)", many=bind_rows(TEMPORAL_ROWS, runner)),
        Step(f"SELECT id, d, dt, t FROM {table} WHERE id >= ? ORDER BY id", (1,)),
        text(f"SELECT CAST(d AS CHAR), CAST(dt AS CHAR), CAST(t AS CHAR) FROM {table} ORDER BY id"),
        Step(f"SELECT id FROM {table} WHERE dt = ?", (TEMPORAL_ROWS[0][2],)),
    ]
    outcomes = compare(runner, through, straight, steps, [f"DROP TABLE IF EXISTS {table}"])
    assert result(outcomes[3]).rows == [
        (d.isoformat(), dt.isoformat(sep=" ", timespec="microseconds"), time_text(t))
        for _, d, dt, t in TEMPORAL_ROWS
    ]
    assert result(outcomes[4]).rows == [(1,)]
    decoded = result(outcomes[2]).rows
    if runner.pure:  # it decodes negative TIME values wrongly (see the module docstring)
        assert [row[:3] for row in decoded] == [row[:3] for row in TEMPORAL_ROWS]
        assert [
            got[3] for got, sent in zip(decoded, TEMPORAL_ROWS, strict=True) if sent[3] >= ZERO
        ] == [t for *_, t in TEMPORAL_ROWS if t >= ZERO]
    else:
        assert decoded == TEMPORAL_ROWS


def test_null_parameters_store_and_return_null(
    runner: Runner, through: Target, straight: Target
) -> None:
    table = "ps_nulls"
    steps = [
        ddl(
            f"CREATE TABLE {table} (id INT PRIMARY KEY, i BIGINT UNSIGNED, s VARCHAR(10),"
            " b BLOB, dt DATETIME(6), num DECIMAL(30,10), d DOUBLE)"
        ),
        Step(f"INSERT INTO {table} VALUES (?, ?, ?, ?, ?, ?, ?)", (1, *[None] * 6)),
        Step(
            f"INSERT INTO {table} VALUES (?, ?, ?, ?, ?, ?, ?)",
            (2, 7, None, b"x", None, None, None),
        ),
        Step(f"SELECT * FROM {table} WHERE id >= ? ORDER BY id", (1,)),
        text(
            f"SELECT id FROM {table} WHERE i IS NULL AND s IS NULL AND b IS NULL"
            " AND dt IS NULL AND num IS NULL AND d IS NULL"
        ),
        Step("SELECT ? IS NULL AS is_null, COALESCE(?, 'fallback') AS fallback", (None, None)),
    ]
    outcomes = compare(runner, through, straight, steps, [f"DROP TABLE IF EXISTS {table}"])
    assert result(outcomes[3]).rows == [(1, *[None] * 6), (2, 7, None, b"x", None, None, None)]
    assert result(outcomes[4]).rows == [(1,)]
    assert result(outcomes[5]).rows == [(1, "fallback")]


def test_result_metadata_matches_direct(runner: Runner, through: Target, straight: Target) -> None:
    table = "ps_metadata"
    steps = [
        ddl(
            f"CREATE TABLE {table} (id INT UNSIGNED NOT NULL PRIMARY KEY,"
            " big BIGINT UNSIGNED NOT NULL, small TINYINT NULL,"
            " name VARCHAR(40) CHARACTER SET utf8mb4 NOT NULL, bin VARBINARY(16),"
            " body TEXT, data BLOB NOT NULL, price DECIMAL(30,10), at DATETIME(6) NOT NULL,"
            " ratio DOUBLE)"
        ),
        Step(f"SELECT * FROM {table} WHERE id = ?", (1,)),
        Step(f"SELECT id + ? AS computed, UPPER(name) AS shouted FROM {table}", (1,)),
    ]
    outcomes = compare(runner, through, straight, steps, [f"DROP TABLE IF EXISTS {table}"])
    described = {column[0]: column for column in result(outcomes[1]).description or []}
    assert list(described) == [
        "id",
        "big",
        "small",
        "name",
        "bin",
        "body",
        "data",
        "price",
        "at",
        "ratio",
    ]

    def flags(name: str) -> int:
        return int(described[name][7])

    assert described["big"][1] == FieldType.LONGLONG
    assert flags("big") & FieldFlag.UNSIGNED and flags("big") & FieldFlag.NOT_NULL
    assert flags("id") & FieldFlag.PRI_KEY and flags("id") & FieldFlag.UNSIGNED
    assert not flags("small") & (FieldFlag.UNSIGNED | FieldFlag.NOT_NULL)
    assert flags("bin") & FieldFlag.BINARY and not flags("name") & FieldFlag.BINARY
    assert flags("data") & FieldFlag.BLOB and flags("data") & FieldFlag.NOT_NULL
    assert described["price"][1] == FieldType.NEWDECIMAL
    assert described["at"][1] == FieldType.DATETIME
    assert described["ratio"][1] == FieldType.DOUBLE
    assert [column[0] for column in result(outcomes[2]).description or []] == [
        "computed",
        "shouted",
    ]


def test_one_statement_reexecuted_with_many_parameter_sets(
    runner: Runner, through: Target, straight: Target
) -> None:
    sql = "SELECT ? * 2 AS twice, CONCAT('v', ?) AS label"
    runs = 120
    steps = [
        text(STMT_COUNTERS),
        *[Step(sql, (n, f"#{n}'")) for n in range(runs)],
        text(STMT_COUNTERS),
    ]
    outcomes = compare(runner, through, straight, steps)
    assert [result(outcome).rows for outcome in outcomes[1:-1]] == [
        [(2 * n, f"v#{n}'")] for n in range(runs)
    ]
    before, after = counters(outcomes[0]), counters(outcomes[-1])
    assert after["Com_stmt_prepare"] - before["Com_stmt_prepare"] == 1
    assert after["Com_stmt_execute"] - before["Com_stmt_execute"] == runs


def test_executemany_inserts_every_row(runner: Runner, through: Target, straight: Target) -> None:
    table = "ps_many"
    rows = [(n, f"name-{n}'", n * 1.5 if n % 7 else None) for n in range(1, 301)]
    steps = [
        ddl(f"CREATE TABLE {table} (id INT PRIMARY KEY, name VARCHAR(20), score DOUBLE)"),
        Step(
            f"INSERT INTO {table} (id, name, score) VALUES (?, ?, ?)", many=bind_rows(rows, runner)
        ),
        Step(f"SELECT * FROM {table} WHERE id > ? ORDER BY id", (0,)),
        text(f"SELECT COUNT(*), SUM(id), COUNT(score), SUM(score) FROM {table}"),
    ]
    outcomes = compare(runner, through, straight, steps, [f"DROP TABLE IF EXISTS {table}"])
    if runner.pure:  # the C extension sums -1 per execution here
        assert result(outcomes[1]).rowcount == len(rows)
    assert result(outcomes[2]).rows == rows
    scores = [score for *_, score in rows if score is not None]
    assert result(outcomes[3]).rows == [
        (300, Decimal(sum(range(1, 301))), len(scores), sum(scores))
    ]


def test_errors_carry_the_backends_error_numbers(
    runner: Runner, through: Target, straight: Target
) -> None:
    table = "ps_errors"
    steps = [
        ddl(f"CREATE TABLE {table} (id INT PRIMARY KEY)"),
        Step("SELEC ? FROM nowhere", (1,)),
        Step("SELECT ? AS still_in_sync", (1,)),
        Step("SELECT * FROM ps_no_such_table WHERE id = ?", (1,)),
        Step(f"INSERT INTO {table} VALUES (?)", (5,)),
        Step(f"INSERT INTO {table} VALUES (?)", (5,)),
        Step(f"SELECT id FROM {table} WHERE id = ?", (5,)),
    ]
    outcomes = compare(runner, through, straight, steps, [f"DROP TABLE IF EXISTS {table}"])
    syntax, in_sync, no_table, _, duplicate, after = outcomes[1:]
    assert isinstance(syntax, Failure) and (syntax.errno, syntax.sqlstate) == (1064, "42000")
    assert isinstance(no_table, Failure) and no_table.errno == 1146
    assert isinstance(duplicate, Failure) and (duplicate.errno, duplicate.sqlstate) == (
        1062,
        "23000",
    )
    assert result(in_sync).rows == [(1,)]
    assert result(after).rows == [(5,)]


def test_closed_statements_reach_the_backend(
    runner: Runner, through: Target, straight: Target
) -> None:
    count = 25
    via_proxy = runner.run("open_and_close", through, count)
    direct = runner.run("open_and_close", straight, count)
    assert via_proxy == direct
    assert via_proxy["Com_stmt_prepare"] == count
    assert via_proxy["Com_stmt_close"] == count


def test_sql_prepare_and_execute_using_user_variables(
    runner: Runner, through: Target, straight: Target
) -> None:
    steps = [
        text("PREPARE ps_sql FROM 'SELECT ? * 2 AS twice, CONCAT(?, ''!'') AS shout'"),
        text("SET @a = 21, @b = 'O''Brien'"),
        text("EXECUTE ps_sql USING @a, @b"),
        text("SET @a = -4, @b = NULL"),
        text("EXECUTE ps_sql USING @a, @b"),
        text("DEALLOCATE PREPARE ps_sql"),
        text("EXECUTE ps_sql USING @a, @b"),
    ]
    outcomes = compare(runner, through, straight, steps)
    assert result(outcomes[2]).rows == [(42, "O'Brien!")]
    assert result(outcomes[4]).rows == [(-8, None)]
    gone = outcomes[6]
    assert isinstance(gone, Failure) and gone.errno == 1243  # ER_UNKNOWN_STMT_HANDLER


def test_prepared_ml_call_is_answered_and_the_session_goes_on(
    runner: Runner, through: Target, proxy: RunningProxy
) -> None:
    steps = [
        Step("SELECT aws_comprehend_detect_sentiment(?, 'en')", ("great",)),
        Step("SELECT ? AS next_one", (7,)),
    ]
    answered, after = runner.run("run_script", through, steps)
    with proxy.connect() as conn, conn.cursor() as cur:  # the text form, through the proxy
        cur.execute("SELECT aws_comprehend_detect_sentiment('great', 'en')")
        expected = [tuple(row) for row in cur.fetchall()]
    assert expected[0][0] in ("POSITIVE", "NEGATIVE", "NEUTRAL", "MIXED")
    assert result(answered).rows == expected
    assert result(after).rows == [(7,)]


# -- pure implementation only: long data, cursors, raw multi-result CALL ---------------------


def _pure(target: Target) -> Any:
    return connect(target, use_pure=True)


def _send_long_blob(target: Target, blob: bytes) -> tuple[dict[str, int], list[Any]]:
    table = "ps_long_data"
    cnx = _pure(target)
    try:
        plain = cnx.cursor()
        plain.execute(f"CREATE TABLE {table} (id INT PRIMARY KEY, bl MEDIUMBLOB)")
        try:
            plain.execute(STMT_COUNTERS)
            before = dict(plain.fetchall())
            cursor = cnx.cursor(prepared=True)
            cursor.execute(f"INSERT INTO {table} VALUES (?, ?)", (1, io.BytesIO(blob)))
            plain.execute(STMT_COUNTERS)
            after = dict(plain.fetchall())
            cursor.execute(f"SELECT bl FROM {table} WHERE id = ?", (1,))
            ((stored,),) = cursor.fetchall()
            plain.execute(f"SELECT LENGTH(bl), SHA2(bl, 256) FROM {table}")
            server_view = plain.fetchall()
            cursor.close()
        finally:
            plain.execute(f"DROP TABLE IF EXISTS {table}")
        deltas = {name: int(after[name]) - int(before[name]) for name in after}
        return deltas, [bytes(stored), server_view]
    finally:
        cnx.close()


def test_send_long_data_round_trips_a_1mb_blob(through: Target, straight: Target) -> None:
    blob = os.urandom(1 << 20)
    via_proxy = _send_long_blob(through, blob)
    direct = _send_long_blob(straight, blob)
    assert via_proxy == direct
    deltas, (stored, server_view) = via_proxy
    assert deltas["Com_stmt_send_long_data"] >= 1
    assert stored == blob
    assert server_view == [(len(blob), hashlib.sha256(blob).hexdigest())]


CURSOR_TYPE_READ_ONLY = 1
SERVER_STATUS_CURSOR_EXISTS = 0x40
SERVER_STATUS_LAST_ROW_SENT = 0x80


def _fetch_in_batches(target: Target, batch: int) -> list[Any]:
    cnx = _pure(target)
    try:
        stmt = cnx.cmd_stmt_prepare(
            b"WITH RECURSIVE numbers (seq) AS (SELECT 1 UNION ALL SELECT seq + 1 FROM numbers"
            b" WHERE seq < 20) SELECT seq, CONCAT('row ', seq), seq * 1.5 FROM numbers"
            b" WHERE seq > ?"
        )
        first = cnx.cmd_stmt_execute(
            stmt["statement_id"],
            data=(3,),
            parameters=stmt["parameters"],
            flags=CURSOR_TYPE_READ_ONLY,
        )
        _, columns, eof = first
        batches: list[Any] = [(columns, eof["status_flag"] & SERVER_STATUS_CURSOR_EXISTS)]
        while True:
            cnx.cmd_stmt_fetch(stmt["statement_id"], batch)
            rows, eof = cnx.get_rows(binary=True, columns=columns)
            batches.append((rows, eof["status_flag"] & SERVER_STATUS_LAST_ROW_SENT))
            if eof["status_flag"] & SERVER_STATUS_LAST_ROW_SENT or len(batches) > 50:
                break
        cnx.cmd_stmt_close(stmt["statement_id"])
        cursor = cnx.cursor()
        cursor.execute("SHOW SESSION STATUS LIKE 'Com\\_stmt\\_fetch'")
        batches.append(cursor.fetchall())
        cursor.close()
        return batches
    finally:
        cnx.close()


def test_cursor_fetch_returns_rows_in_batches(through: Target, straight: Target) -> None:
    via_proxy = _fetch_in_batches(through, 5)
    direct = _fetch_in_batches(straight, 5)
    assert via_proxy == direct
    (_, cursor_exists), *batches, status = via_proxy
    assert cursor_exists
    rows = [row for chunk, _ in batches for row in chunk]
    assert rows == [(n, f"row {n}", Decimal(n) * Decimal("1.5")) for n in range(4, 21)]
    assert [len(chunk) for chunk, _ in batches] == [5, 5, 5, 2]
    assert [bool(last) for _, last in batches] == [False, False, False, True]
    assert status == [("Com_stmt_fetch", "4")]


def _read_packet(cnx: Any) -> bytes:
    return bytes(cnx._socket.recv())[4:]


def _lenenc(data: bytes, pos: int) -> tuple[int, int]:
    first = data[pos]
    if first < 0xFB:
        return first, pos + 1
    width = {0xFC: 2, 0xFD: 3, 0xFE: 8}[first]
    return int.from_bytes(data[pos + 1 : pos + 1 + width], "little"), pos + 1 + width


def _read_results(cnx: Any) -> list[bytes]:
    """Every packet of a (multi-)result response, by the protocol, until the last one."""
    more_results = 0x08
    packets: list[bytes] = []
    while True:
        head = _read_packet(cnx)
        packets.append(head)
        if head[0] == 0xFF:
            return packets
        if head[0] == 0x00:
            _, pos = _lenenc(head, 1)
            _, pos = _lenenc(head, pos)
            status = int.from_bytes(head[pos : pos + 2], "little")
        else:
            count, _ = _lenenc(head, 0)
            packets.extend(_read_packet(cnx) for _ in range(count + 1))
            while True:
                packet = _read_packet(cnx)
                packets.append(packet)
                if packet[0] == 0xFE and len(packet) < 9:
                    status = int.from_bytes(packet[3:5], "little")
                    break
        if not status & more_results:
            return packets


def _call_two_result_sets(target: Target) -> tuple[list[bytes], list[Any]]:
    cnx = _pure(target)
    try:
        cursor = cnx.cursor()
        cursor.execute("DROP PROCEDURE IF EXISTS ps_two_results")
        cursor.execute(
            "CREATE PROCEDURE ps_two_results(IN n INT) BEGIN "
            "SELECT n AS a; SELECT n * 2 AS b, 'x' AS c UNION ALL SELECT n * 3, 'y'; END"
        )
        try:
            stmt = cnx.cmd_stmt_prepare(b"CALL ps_two_results(?)")
            # COM_STMT_EXECUTE: id, no cursor, 1 iteration, null bitmap, types bound, LONGLONG 21
            execute = (
                b"\x17"
                + stmt["statement_id"].to_bytes(4, "little")
                + b"\x00\x01\x00\x00\x00\x00\x01\x08\x00"
                + (21).to_bytes(8, "little")
            )
            cnx._socket.send(execute, 0)
            packets = _read_results(cnx)
            cnx.cmd_stmt_close(stmt["statement_id"])
            cursor.execute("SELECT 'in sync'")
            after = cursor.fetchall()
        finally:
            cursor.execute("DROP PROCEDURE IF EXISTS ps_two_results")
        return packets, after
    finally:
        cnx.close()


def test_prepared_call_with_two_result_sets_is_relayed_whole(
    through: Target, straight: Target
) -> None:
    via_proxy = _call_two_result_sets(through)
    direct = _call_two_result_sets(straight)
    assert via_proxy == direct
    packets, after = via_proxy
    assert after == [("in sync",)]
    # Result (a): count, definition, EOF, row, EOF; result (b, c): count, 2 definitions,
    # EOF, 2 rows, EOF; then the CALL's own OK.
    assert len(packets) == 5 + 7 + 1
    assert packets[0] == b"\x01" and packets[5] == b"\x02"
    assert packets[3] == b"\x00\x00" + (21).to_bytes(4, "little")
    assert packets[9] == b"\x00\x00" + (42).to_bytes(8, "little") + b"\x01x"
    assert packets[10] == b"\x00\x00" + (63).to_bytes(8, "little") + b"\x01y"
    assert packets[12][0] == 0x00


@pytest.mark.slow
def test_blob_over_16_mib_as_parameter_and_binary_row(
    runner: Runner, through: Target, straight: Target
) -> None:
    table = "ps_big_blob"
    blob = os.urandom(17_000_000)
    steps = [
        ddl(f"CREATE TABLE {table} (id INT PRIMARY KEY, b LONGBLOB)"),
        Step(f"INSERT INTO {table} VALUES (?, ?)", (1, blob)),  # COM_STMT_EXECUTE > 16 MiB
        text(f"SELECT LENGTH(b), SHA2(b, 256) FROM {table}"),
    ]
    if not runner.pure:  # the pure implementation reads only the first packet of a binary row
        steps.append(Step(f"SELECT LENGTH(b), b FROM {table} WHERE id = ?", (1,)))
    outcomes = compare(runner, through, straight, steps, [f"DROP TABLE IF EXISTS {table}"])
    assert result(outcomes[2]).rows == [(len(blob), hashlib.sha256(blob).hexdigest())]
    if not runner.pure:
        assert result(outcomes[3]).rows == [(len(blob), blob)]


# -- KILL of a proxy connection id as a server-side prepared statement -----------------------


def _sleep_on(cnx: Any, outcome: dict[str, Any]) -> None:
    cursor = cnx.cursor()
    try:
        cursor.execute("SELECT SLEEP(20) AS ps_kill_victim")
        outcome["rows"] = cursor.fetchall()
    except mysql.connector.Error as exc:
        outcome["errno"] = exc.errno
    finally:
        cursor.close()


def _kill_while_sleeping(target: Target, *, prepared: bool, with_param: bool) -> dict[str, Any]:
    """KILL QUERY the victim's connection id (from its greeting) while it sleeps, through a
    prepared cursor or a plain one; return the KILL's and the victim's outcomes."""
    victim = _pure(target)
    killer = _pure(target)
    outcome: dict[str, Any] = {}
    sleeper = threading.Thread(target=_sleep_on, args=(victim, outcome))
    try:
        sleeper.start()
        plain = killer.cursor()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            plain.execute(
                "SELECT COUNT(*) FROM information_schema.PROCESSLIST"
                " WHERE INFO LIKE 'SELECT SLEEP(20) AS ps_kill_victim'"
            )
            if plain.fetchall() == [(1,)]:
                break
            time.sleep(0.05)
        cursor = killer.cursor(prepared=prepared)
        try:
            if with_param:
                cursor.execute("KILL QUERY %s", (victim.connection_id,))
            else:
                cursor.execute(f"KILL QUERY {victim.connection_id}")
            outcome["kill"] = "ok"
            sleeper.join(5)
        except mysql.connector.Error as exc:
            outcome["kill"] = exc.errno
        outcome["interrupted_by_the_kill"] = not sleeper.is_alive()
    finally:
        if sleeper.is_alive():  # stop the victim with the text form, which the proxy translates
            killer.cursor().execute(f"KILL QUERY {victim.connection_id}")
            sleeper.join(15)
        killer.close()
        victim.close()
    return outcome


@pytest.mark.parametrize("with_param", [False, True], ids=["literal-id", "parameter-id"])
def test_prepared_kill_query_of_a_proxy_connection_id(through: Target, with_param: bool) -> None:
    outcome = _kill_while_sleeping(through, prepared=True, with_param=with_param)
    assert outcome["kill"] == "ok"
    assert outcome["interrupted_by_the_kill"]
    assert outcome["errno"] == 1317  # ER_QUERY_INTERRUPTED


def test_text_kill_query_of_a_proxy_connection_id_for_comparison(through: Target) -> None:
    """The same harness with the text protocol, which the proxy translates."""
    outcome = _kill_while_sleeping(through, prepared=False, with_param=False)
    assert outcome["kill"] == "ok"
    assert outcome["interrupted_by_the_kill"]
    assert outcome["errno"] == 1317
