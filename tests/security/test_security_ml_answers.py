"""Hostile model answers (issue 10, item 5): a model that answers what no function returns
fails the statement with a clear error, or answers NULL under @mlproxy_on_error = 'null';
the session survives, nothing is logged as a traceback, and no answer changes a statement.

The models (tests/support/hostile_models.py) answer normally except for texts starting with
``bad``. Every case runs on the three ways answers reach SQL: a constant call (a typed
literal), a few distinct inputs (written into the statement) and more than 256 (a session
temporary table).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from typing import Any

import pymysql
import pytest

from proxy.ml import answers as ml_answers
from tests.conftest import TEST_DB, RunningProxy, admin_connect, start_proxy
from tests.support import hostile_models, switchable_backend
from tests.support.backend import BackendInfo

MODELS = "python:tests.support.hostile_models:"
LARGE = ml_answers.INLINE_MAX_ANSWERS + 44  # past the inline limit: a temporary table
BAD_ID = 2

SENTIMENT_CASES: dict[str, object] = {
    "lone surrogate label": ("\ud800", 0.5),
    "injected confidence": ("POSITIVE", "0.5) OR (1=1"),
    "confidence 10**400": ("POSITIVE", 10**400),
    "dict": {"label": "POSITIVE", "confidence": 0.5},
    "1-tuple": ("POSITIVE",),
    "3-tuple": ("POSITIVE", 0.5, "x"),
    "NaN confidence": ("POSITIVE", float("nan")),
    "infinite confidence": ("POSITIVE", float("inf")),
    "confidence above 1": ("POSITIVE", 1.5),
    "bool confidence": ("POSITIVE", True),
    "bytes label": (b"POSITIVE", 0.5),
    "None": None,
    "label longer than the domain's": ("POSITIVELY", 0.5),
    "label outside the domain": ("HAPPY", 0.5),
    "bare string": "POSITIVE",
}

#: (function, answer): the functions are created by the ``functions`` fixture.
ALIAS_CASES: dict[str, tuple[str, object]] = {
    "lone surrogate": ("hostile_v10", "\udc80abc"),
    "dict": ("hostile_v10", {"a": 1}),
    "1-tuple": ("hostile_v10", ("x",)),
    "list": ("hostile_text", ["a"]),
    "bytes": ("hostile_v10", b"\xff\xfe"),
    "object": ("hostile_v10", object()),
    "longer than VARCHAR(10)": ("hostile_v10", "x" * 11),
    "longer than TEXT": ("hostile_text", "y" * 70_000),
    "surrogate in TEXT": ("hostile_text", "ok \ud800"),
    "10**400 for INT": ("hostile_int", 10**400),
    "out of INT's range": ("hostile_int", 2**40),
    "300 digits for INT": ("hostile_int", "1" * 300),
    "NaN for DOUBLE": ("hostile_double", float("nan")),
    "infinity for DOUBLE": ("hostile_double", float("-inf")),
    "10**400 for DOUBLE": ("hostile_double", 10**400),
}

FUNCTIONS = {
    "hostile_v10": "(t VARCHAR(50)) RETURNS VARCHAR(10) "
    "ALIAS AWS_SAGEMAKER_INVOKE_ENDPOINT ENDPOINT NAME 'hostile-ep'",
    "hostile_int": "(t VARCHAR(50)) RETURNS INT "
    "ALIAS AWS_SAGEMAKER_INVOKE_ENDPOINT ENDPOINT NAME 'hostile-ep'",
    "hostile_double": "(t VARCHAR(50)) RETURNS DOUBLE "
    "ALIAS AWS_SAGEMAKER_INVOKE_ENDPOINT ENDPOINT NAME 'hostile-ep'",
    "hostile_text": "(t TEXT) RETURNS TEXT ALIAS AWS_BEDROCK_INVOKE_MODEL MODEL ID 'hostile-model'",
}


def texts(count: int) -> list[tuple[int, str]]:
    return [(i, "bad one" if i == BAD_ID else f"good {i}") for i in range(1, count + 1)]


@pytest.fixture(scope="module")
def hostile_tables(backend: BackendInfo) -> None:
    with admin_connect(backend, database=TEST_DB) as admin, admin.cursor() as cur:
        for name, count in (("hostile_small", 3), ("hostile_large", LARGE)):
            cur.execute(f"DROP TABLE IF EXISTS {name}")
            cur.execute(f"CREATE TABLE {name} (id INT PRIMARY KEY, txt VARCHAR(50))")
            cur.executemany(f"INSERT INTO {name} VALUES (%s, %s)", texts(count))


@pytest.fixture(scope="module")
def hostile_proxy(backend: BackendInfo, hostile_tables: None) -> Iterator[RunningProxy]:
    running = start_proxy(
        backend,
        comprehend_backend=f"{MODELS}sentiment",
        endpoint=(f"hostile-ep={MODELS}text", f"hostile-model={MODELS}text"),
        ml_cache_entries=0,  # every statement asks the model again
        ml_max_attempts=1,
    )
    with running.connect() as conn, conn.cursor() as cur:
        for name, definition in FUNCTIONS.items():
            cur.execute(f"DROP FUNCTION IF EXISTS {name}")
            cur.execute(f"CREATE FUNCTION {name}{definition}")
    yield running
    running.stop()


@pytest.fixture
def conn(
    hostile_proxy: RunningProxy, caplog: pytest.LogCaptureFixture
) -> Iterator[pymysql.Connection[Any]]:
    caplog.set_level(logging.WARNING)
    connection = hostile_proxy.connect()
    yield connection
    connection.close()
    hostile_models.HOSTILE.update(sentiment=None, text=None)
    tracebacks = [r.getMessage() for r in caplog.records if r.exc_info]
    assert not tracebacks, tracebacks


def rows(conn: pymysql.Connection[Any], sql: str) -> list[tuple[Any, ...]]:
    with conn.cursor() as cur:
        cur.execute(sql)
        return list(cur.fetchall())


def statement(call: str, path: str) -> str:
    """The statement reaching ``call`` (with ``{}`` for its text) by ``path``."""
    if path == "constant":
        return f"SELECT {BAD_ID}, {call.format(repr('bad one'))}"
    table = "hostile_small" if path == "inline" else "hostile_large"
    return f"SELECT id, {call.format('txt')} FROM {table} ORDER BY id"


def assert_refused_then_null(
    conn: pymysql.Connection[Any], call: str, name: str, path: str, expected: int = 1105
) -> list[tuple[Any, ...]]:
    """The statement fails naming ``name``; the session goes on; under
    @mlproxy_on_error = 'null' the bad row answers NULL. Returns those rows."""
    sql = statement(call, path)
    with pytest.raises(pymysql.MySQLError) as caught:
        rows(conn, sql)
    code, message = caught.value.args
    assert code == expected and name in message, (code, message)
    assert "Traceback" not in message and "mlproxy internal error" not in message
    assert rows(conn, "SELECT 1") == [(1,)]
    rows(conn, "SET @mlproxy_on_error = 'null'")
    got = rows(conn, sql)
    rows(conn, "SET @mlproxy_on_error = NULL")
    assert dict(got)[BAD_ID] is None
    assert len(got) == {"constant": 1, "inline": 3, "table": LARGE}[path]
    return got


PATHS = ("constant", "inline", "table")


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("case", SENTIMENT_CASES)
def test_hostile_sentiment_answer_fails_the_statement_only(
    conn: pymysql.Connection[Any], case: str, path: str
) -> None:
    hostile_models.HOSTILE["sentiment"] = SENTIMENT_CASES[case]
    name = "aws_comprehend_detect_sentiment"
    got = assert_refused_then_null(conn, name + "({}, 'en')", name, path)
    good = {i: switchable_backend.answer(text)[0] for i, text in texts(LARGE)}
    assert all(label == good[i] for i, label in got if i != BAD_ID)
    confidence = "aws_comprehend_detect_sentiment_confidence({}, 'en')"
    assert_refused_then_null(conn, confidence, "aws_comprehend_detect_sentiment", path)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("case", ALIAS_CASES)
def test_hostile_alias_answer_fails_the_statement_only(
    conn: pymysql.Connection[Any], case: str, path: str
) -> None:
    function, answer = ALIAS_CASES[case]
    hostile_models.HOSTILE["text"] = answer
    # A stored function returning NaN or an infinity fails with 1690; so does the alias.
    infinite = isinstance(answer, float) and not math.isfinite(answer)
    got = assert_refused_then_null(
        conn, function + "({})", function, path, 1690 if infinite else 1105
    )
    assert all(value is not None for i, value in got if i != BAD_ID)
    if function in ("hostile_v10", "hostile_text"):
        assert all(value == f"GOOD {i}" for i, value in got if i != BAD_ID)


@pytest.mark.parametrize("path", PATHS)
def test_answer_that_looks_like_sql_is_kept_as_text(
    conn: pymysql.Connection[Any], path: str
) -> None:
    hostile = "x'); DROP TABLE hostile_small; -- \\' \" `"
    hostile_models.HOSTILE["text"] = hostile
    got = rows(conn, statement("hostile_text({})", path))
    assert dict(got)[BAD_ID] == hostile
    assert rows(conn, "SELECT COUNT(*) FROM hostile_small") == [(3,)]
