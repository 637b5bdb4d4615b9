"""Server-side prepared statements that call ML functions (COM_STMT_PREPARE/EXECUTE).

The oracle suite validates the text path against stored functions; here the same
statement prepared with mysql-connector (binary protocol, bound parameters) must give
exactly what its text form gives through the proxy.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import mysql.connector
import pytest

from tests.conftest import APP, TEST_DB, RunningProxy, admin_connect, start_proxy
from tests.support.backend import BackendInfo

S = "aws_comprehend_detect_sentiment"
C = "aws_comprehend_detect_sentiment_confidence"
TEXTS = [
    "I love it",
    "I hate it",
    "It's fine, I guess",
    "Quote ' and back\\slash",
    "emoji 😀 great",
    None,
]


@pytest.fixture(scope="module")
def ml_proxy(backend: BackendInfo) -> Iterator[RunningProxy]:
    with admin_connect(backend, database=TEST_DB) as admin, admin.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS prep_texts")
        cur.execute(
            "CREATE TABLE prep_texts (id INT PRIMARY KEY, txt VARCHAR(100)) CHARSET utf8mb4"
        )
        cur.executemany("INSERT INTO prep_texts VALUES (%s, %s)", list(enumerate(TEXTS, 1)))
    proxy = start_proxy(backend)
    yield proxy
    proxy.stop()


def connector(proxy: RunningProxy) -> Any:
    return mysql.connector.connect(
        host=proxy.host,
        port=proxy.port,
        user=APP.user,
        password=APP.password,
        database=TEST_DB,
        use_pure=True,
        ssl_disabled=True,
        autocommit=True,
    )


def text_rows(proxy: RunningProxy, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    with proxy.connect() as conn, conn.cursor() as cur:
        cur.execute(sql.replace("?", "%s"), params)
        return [tuple(row) for row in cur.fetchall()]


def prepared_rows(proxy: RunningProxy, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    conn = connector(proxy)
    try:
        cur = conn.cursor(prepared=True)
        cur.execute(sql, params)
        rows = [tuple(row) for row in cur.fetchall()]
        cur.close()
        return rows
    finally:
        conn.close()


@pytest.mark.parametrize(
    ("sql", "params"),
    [
        (
            f"SELECT id, {S}(txt, ?), {C}(txt, ?) FROM prep_texts WHERE id <= ? ORDER BY id",
            ("en", "en", 10),
        ),
        (f"SELECT {S}(?, 'en'), {C}(?, 'en')", ("What a wonderful day", "What a wonderful day")),
        (f"SELECT {S}(?, ?)", ("Quote ' and back\\slash and NUL \x00", "en")),
        (f"SELECT {S}(?, 'en')", (None,)),
        (f"SELECT id FROM prep_texts WHERE {S}(txt, 'en') = ? ORDER BY id", ("POSITIVE",)),
        (f"SELECT COUNT(*), AVG({C}(txt, 'en')) FROM prep_texts WHERE id BETWEEN ? AND ?", (2, 5)),
    ],
)
def test_prepared_equals_text(ml_proxy: RunningProxy, sql: str, params: tuple[Any, ...]) -> None:
    expected = text_rows(ml_proxy, sql, params)
    assert expected  # the statement answers something
    assert prepared_rows(ml_proxy, sql, params) == expected


def test_one_statement_executed_with_different_parameters(ml_proxy: RunningProxy) -> None:
    sql = f"SELECT {S}(txt, 'en') FROM prep_texts WHERE id = ?"
    conn = connector(ml_proxy)
    try:
        cur = conn.cursor(prepared=True)
        answers = []
        for row_id in (1, 2, 1, 6):
            cur.execute(sql, (row_id,))
            answers.append(cur.fetchall()[0][0])
        cur.close()
    finally:
        conn.close()
    assert answers == [text_rows(ml_proxy, sql, (i,))[0][0] for i in (1, 2, 1, 6)]
    assert answers[3] is None  # the NULL text


def test_prepared_insert_with_a_call_on_a_parameter(ml_proxy: RunningProxy) -> None:
    with ml_proxy.connect() as conn, conn.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS prep_out")
        cur.execute("CREATE TABLE prep_out (id INT PRIMARY KEY, lab VARCHAR(8), conf DOUBLE)")
    conn2 = connector(ml_proxy)
    try:
        cur2 = conn2.cursor(prepared=True)
        for row_id, text in ((1, "I love it"), (2, "I hate it")):
            cur2.execute(
                f"INSERT INTO prep_out VALUES (?, {S}(?, 'en'), {C}(?, 'en'))", (row_id, text, text)
            )
            assert cur2.rowcount == 1
        cur2.close()
    finally:
        conn2.close()
    expected = text_rows(
        ml_proxy,
        f"SELECT {S}(txt, 'en'), {C}(txt, 'en') FROM prep_texts WHERE id IN (1, 2) ORDER BY id",
        (),
    )
    assert text_rows(ml_proxy, "SELECT lab, conf FROM prep_out ORDER BY id", ()) == expected


def test_long_data_parameter_reaches_the_call(ml_proxy: RunningProxy) -> None:
    text = "I love it " * 300
    conn = connector(ml_proxy)
    try:
        cur = conn.cursor(prepared=True)
        cur.execute(f"SELECT {S}(?, 'en'), LENGTH(?)", (io.BytesIO(text.encode()), text))
        rows = cur.fetchall()
        cur.close()
    finally:
        conn.close()
    assert rows[0][1] == len(text)
    assert rows[0][0] == text_rows(ml_proxy, f"SELECT {S}(?, 'en')", (text,))[0][0]


def test_prepare_with_a_bad_argument_count_is_refused(ml_proxy: RunningProxy) -> None:
    conn = connector(ml_proxy)
    try:
        cur = conn.cursor(prepared=True)
        with pytest.raises(mysql.connector.Error) as caught:
            cur.execute(f"SELECT {S}(?) FROM prep_texts", ("x",))
        assert caught.value.errno == 1582
    finally:
        conn.close()


def open_statements(backend: BackendInfo) -> int:
    with admin_connect(backend) as admin, admin.cursor() as cur:
        cur.execute("SHOW GLOBAL STATUS LIKE 'Prepared_stmt_count'")
        return int(cur.fetchone()[1])


def test_closing_ml_statements_leaves_no_backend_statements(
    ml_proxy: RunningProxy, backend: BackendInfo
) -> None:
    before = open_statements(backend)
    conn = connector(ml_proxy)
    try:
        cur = conn.cursor(prepared=True)
        cur.execute(f"SELECT {S}(txt, 'en') FROM prep_texts WHERE id = ?", (1,))
        cur.fetchall()
        assert open_statements(backend) == before + 1  # the twin; the internal one is closed
        cur.close()
        for _ in range(5):
            cur = conn.cursor(prepared=True)
            cur.execute(f"SELECT {S}(txt, 'en') FROM prep_texts WHERE id = ?", (2,))
            cur.fetchall()
            cur.close()
    finally:
        conn.close()
    assert open_statements(backend) == before
