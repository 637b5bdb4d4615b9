"""Stored procedures and blocks that loop over a cursor, through the proxy and directly.

While a stored program holds an open cursor, MariaDB sets SERVER_STATUS_CURSOR_EXISTS in
the status flags of every result it sends, also of an ordinary text-protocol result. The
flag means "rows follow only on COM_STMT_FETCH" in one context alone: the EOF after the
column definitions of a COM_STMT_EXECUTE that asked for a cursor (tests/unit/test_scanner.py
has the binary-protocol cases, a prepared CALL asking for a cursor among them). Every case
here is compared with the same statements run directly: the result sets, their rows, the
error that ends them, and the connection serving the next statement.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pymysql
import pytest

from tests.conftest import APP, TEST_DB, RunningProxy, unique
from tests.support.backend import BackendInfo

PROCEDURES = {
    "loop": """
        CREATE PROCEDURE {name}() BEGIN
          DECLARE done INT DEFAULT 0; DECLARE v INT;
          DECLARE c CURSOR FOR SELECT a FROM {table} ORDER BY a;
          DECLARE CONTINUE HANDLER FOR NOT FOUND SET done = TRUE;
          OPEN c;
          l: LOOP FETCH c INTO v; IF done THEN LEAVE l; END IF; SELECT v; END LOOP;
          CLOSE c;
        END""",
    "resignal": """
        CREATE PROCEDURE {name}() BEGIN
          DECLARE v INT;
          DECLARE c CURSOR FOR SELECT a FROM {table} ORDER BY a;
          DECLARE CONTINUE HANDLER FOR NOT FOUND BEGIN SELECT 'no more' AS m; RESIGNAL; END;
          OPEN c;
          FETCH c INTO v; FETCH c INTO v; FETCH c INTO v; FETCH c INTO v;
          CLOSE c;
        END""",
    "select-while-open": """
        CREATE PROCEDURE {name}() BEGIN
          DECLARE v INT;
          DECLARE c CURSOR FOR SELECT a FROM {table} ORDER BY a;
          OPEN c; FETCH c INTO v;
          SELECT a, v FROM {table} ORDER BY a;
          SELECT COUNT(*) FROM {table};
          CLOSE c;
        END""",
}


@pytest.fixture(scope="module")
def table(backend: BackendInfo) -> Iterator[str]:
    name = unique("cur")
    with connect(backend.host, backend.port) as conn, conn.cursor() as cur:
        cur.execute(f"CREATE TABLE {name} (a INT)")
        cur.execute(f"INSERT INTO {name} VALUES (10), (20), (30)")
    yield name
    with connect(backend.host, backend.port) as conn, conn.cursor() as cur:
        cur.execute(f"DROP TABLE {name}")


def connect(host: str, port: int) -> pymysql.Connection[Any]:
    return pymysql.connect(
        host=host,
        port=port,
        user=APP.user,
        password=APP.password,
        database=TEST_DB,
        autocommit=True,
        client_flag=pymysql.constants.CLIENT.MULTI_STATEMENTS,
    )


def all_results(conn: pymysql.Connection[Any], sql: str) -> list[Any]:
    """Every result set of ``sql`` (rows, or the row count), then the error ending them."""
    results: list[Any] = []
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            results.append(list(cur.fetchall()) if cur.description else cur.rowcount)
            while cur.nextset():
                results.append(list(cur.fetchall()) if cur.description else cur.rowcount)
    except pymysql.err.MySQLError as exc:
        results.append(("error", exc.args[0]))
    # The connection must still serve the next statement.
    with conn.cursor() as cur:
        cur.execute("SELECT 'still here'")
        results.append(cur.fetchone())
    return results


@pytest.mark.parametrize("kind", sorted(PROCEDURES))
def test_call_of_a_procedure_with_a_cursor(
    backend: BackendInfo, proxy: RunningProxy, table: str, kind: str
) -> None:
    name = unique("p")
    with connect(backend.host, backend.port) as conn, conn.cursor() as cur:
        cur.execute(PROCEDURES[kind].format(name=name, table=table))
    try:
        with (
            connect(backend.host, backend.port) as direct,
            connect("127.0.0.1", proxy.port) as proxied,
        ):
            expected = all_results(direct, f"CALL {name}()")
            assert all_results(proxied, f"CALL {name}()") == expected
    finally:
        with connect(backend.host, backend.port) as conn, conn.cursor() as cur:
            cur.execute(f"DROP PROCEDURE {name}")


def test_anonymous_block_looping_over_a_cursor(
    backend: BackendInfo, proxy: RunningProxy, table: str
) -> None:
    block = (
        f"BEGIN NOT ATOMIC FOR r IN (SELECT a FROM {table} ORDER BY a) DO SELECT r.a; END FOR; END"
    )
    with (
        connect(backend.host, backend.port) as direct,
        connect("127.0.0.1", proxy.port) as proxied,
    ):
        expected = all_results(direct, block)
        assert len(expected) == 5  # three result sets, the CALL's OK, 'still here'
        assert all_results(proxied, block) == expected
