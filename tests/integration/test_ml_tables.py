"""A call site with many distinct inputs: its lookup table is filled while the model is
still answering (proxy.ml.tables), and a failure part-way leaves nothing behind.

A switchable python: backend (tests.support.switchable_backend) answers deterministically and can
fail after a number of batches, after part of the answers have been stored.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pymysql
import pytest

from proxy.ml.tables import INSERT_BYTES
from tests.conftest import TEST_DB, RunningProxy, admin_connect, start_proxy
from tests.integration.test_ml_features import rows
from tests.support import switchable_backend
from tests.support.backend import BackendInfo

S = "aws_comprehend_detect_sentiment"
ROWS = 3000
TEXT_BYTES = 120  # 3,000 keys of 120 bytes: several INSERTs of INSERT_BYTES


@pytest.fixture(scope="module")
def many_texts(backend: BackendInfo) -> None:
    with admin_connect(backend, database=TEST_DB) as admin, admin.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS table_path_texts")
        cur.execute("CREATE TABLE table_path_texts (id INT PRIMARY KEY, txt TEXT)")
        cur.executemany(
            "INSERT INTO table_path_texts VALUES (%s, %s)",
            [
                (i, f"{i:05d} " + "y" * (i % 97) + "z" * (TEXT_BYTES - 6 - i % 97))
                for i in range(ROWS)
            ],
        )


@pytest.fixture(scope="module")
def ml_proxy(backend: BackendInfo, many_texts: None) -> Iterator[RunningProxy]:
    proxy = start_proxy(
        backend,
        comprehend_backend=switchable_backend.SETTING,
        ml_max_backend_calls=0,
        ml_cache_entries=0,
        ml_max_attempts=1,
    )
    yield proxy
    proxy.stop()


@pytest.fixture
def conn(ml_proxy: RunningProxy) -> Iterator[pymysql.Connection[Any]]:
    switchable_backend.reset()
    connection = ml_proxy.connect()
    yield connection
    connection.close()
    switchable_backend.reset()


def inserts_so_far(backend: BackendInfo) -> int:
    with admin_connect(backend) as admin, admin.cursor() as cur:
        cur.execute("SHOW GLOBAL STATUS LIKE 'Com_insert'")
        ((_, value),) = cur.fetchall()
        return int(value)


SELECT_ALL = f"SELECT id, txt, {S}(txt, 'en') FROM table_path_texts ORDER BY id"


def test_the_answers_are_stored_in_several_inserts_and_are_right(
    conn: pymysql.Connection[Any], backend: BackendInfo
) -> None:
    before = inserts_so_far(backend)
    got = rows(conn, SELECT_ALL)
    inserts = inserts_so_far(backend) - before
    assert [label for _, _, label in got] == [switchable_backend.answer(t)[0] for _, t, _ in got]
    assert len(got) == ROWS and len(switchable_backend.batches) == ROWS // 25
    # Each row's VALUES are over 2 x TEXT_BYTES of hex: the table took several INSERTs.
    assert inserts >= ROWS * 2 * TEXT_BYTES // INSERT_BYTES


def test_a_failure_part_way_fails_the_statement_and_the_session_goes_on(
    conn: pymysql.Connection[Any],
) -> None:
    switchable_backend.fail_after = 40  # 40 of 120 batches answered and partly stored
    with pytest.raises(pymysql.err.OperationalError) as caught:
        rows(conn, SELECT_ALL)
    code, message = caught.value.args
    assert code == 1105 and "model crashed" in message
    assert rows(conn, "SELECT 1") == [(1,)]  # every pipelined reply was read
    switchable_backend.fail_after = None
    got = rows(conn, SELECT_ALL)
    assert [label for _, _, label in got] == [switchable_backend.answer(t)[0] for _, t, _ in got]


def test_a_failure_part_way_under_on_error_null_answers_every_row_null(
    conn: pymysql.Connection[Any],
) -> None:
    """As the inline path does: answers stored before the failure are not kept."""
    rows(conn, "SET @mlproxy_on_error = 'null'")
    switchable_backend.fail_after = 40
    got = rows(conn, SELECT_ALL)
    assert len(got) == ROWS and {label for _, _, label in got} == {None}


def test_a_failed_write_through_the_table_path_writes_nothing(
    conn: pymysql.Connection[Any],
) -> None:
    rows(conn, "CREATE TEMPORARY TABLE written (id INT, lab VARCHAR(8))")
    switchable_backend.fail_after = 40
    with pytest.raises(pymysql.err.OperationalError):
        rows(conn, f"INSERT INTO written SELECT id, {S}(txt, 'en') FROM table_path_texts")
    assert rows(conn, "SELECT COUNT(*) FROM written") == [(0,)]
