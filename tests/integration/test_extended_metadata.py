"""MariaDB's extended capabilities through the proxy (issue 11, item 3).

A client that asks for CLIENT_DEPRECATE_EOF, MARIADB_CLIENT_EXTENDED_METADATA and
MARIADB_CLIENT_CACHE_METADATA gets them when the backend has them, and every response
is the backend's: the oracle is the same raw client (tests/support/raw_client.py, which decides
where responses end from the protocol's rules, not with the proxy's scanner) sending the
same commands straight to the backend, compared byte for byte. Each test runs with the
capabilities off, each one alone, and all on, over every path of the proxy that reads
or writes a result: plain statements, multi-result CALLs and stored-program cursors,
server-side prepared statements with and without a cursor, COM_FIELD_LIST, ML
statements and ML prepared statements, EXPLAIN, SHOW STATUS and SHOW CREATE FUNCTION.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pymysql
import pytest

from tests.conftest import APP, TEST_DB, RunningProxy, admin_connect
from tests.support.backend import BackendInfo
from tests.support.raw_client import (
    ALL_SHAPING,
    CLIENT_DEPRECATE_EOF,
    MARIADB_CLIENT_CACHE_METADATA,
    MARIADB_CLIENT_EXTENDED_METADATA,
    RawClient,
    column_definitions,
    extended_type_info,
)

CAPABILITY_SETS = {
    "none": 0,
    "deprecate_eof": CLIENT_DEPRECATE_EOF,
    "extended_metadata": MARIADB_CLIENT_EXTENDED_METADATA,
    "cache_metadata": MARIADB_CLIENT_CACHE_METADATA,
    "all": ALL_SHAPING,
}

TABLE = "ext_meta"
PROCEDURE = "ext_meta_cursor_loop"


@pytest.fixture(scope="module")
def typed_table(backend: BackendInfo) -> Iterator[None]:
    with admin_connect(backend, database=TEST_DB) as conn, conn.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS {TABLE}")
        cur.execute(f"CREATE TABLE {TABLE} (n INT PRIMARY KEY, j JSON, u UUID, i INET6, txt TEXT)")
        cur.execute(
            f"INSERT INTO {TABLE} VALUES"
            " (1, '{\"a\": 1}', 'e4a5b2a0-0000-11ee-8000-000000000001', '::1', 'I love it'),"
            " (2, '[1, 2]', 'e4a5b2a0-0000-11ee-8000-000000000002', '2001:db8::7', 'awful'),"
            " (3, NULL, NULL, NULL, NULL)"
        )
        cur.execute(f"DROP PROCEDURE IF EXISTS {PROCEDURE}")
        cur.execute(
            f"CREATE PROCEDURE {PROCEDURE}() BEGIN"
            " DECLARE done INT DEFAULT 0; DECLARE v INT;"
            f" DECLARE c CURSOR FOR SELECT n FROM {TABLE} ORDER BY n;"
            " DECLARE CONTINUE HANDLER FOR NOT FOUND SET done = TRUE;"
            " OPEN c; l: LOOP FETCH c INTO v; IF done THEN LEAVE l; END IF;"
            f" SELECT v, j FROM {TABLE} WHERE n = v; END LOOP; CLOSE c; END"
        )
    yield
    with admin_connect(backend, database=TEST_DB) as conn, conn.cursor() as cur:
        cur.execute(f"DROP PROCEDURE IF EXISTS {PROCEDURE}")
        cur.execute(f"DROP TABLE IF EXISTS {TABLE}")


def _pair(
    proxy: RunningProxy, backend: BackendInfo, capabilities: int
) -> tuple[RawClient, RawClient]:
    """The same client through the proxy and straight to the backend."""
    through = RawClient.connect(proxy.port, APP.user, APP.password, TEST_DB, capabilities)
    direct = RawClient.connect(backend.port, APP.user, APP.password, TEST_DB, capabilities)
    return through, direct


@pytest.fixture(params=list(CAPABILITY_SETS), ids=list(CAPABILITY_SETS))
def clients(
    request: pytest.FixtureRequest, proxy: RunningProxy, backend: BackendInfo, typed_table: None
) -> Iterator[tuple[RawClient, RawClient]]:
    through, direct = _pair(proxy, backend, CAPABILITY_SETS[request.param])
    yield through, direct
    through.close()
    direct.close()


def _masked_prepare(payloads: list[bytes]) -> list[bytes]:
    """A PREPARE response without its statement id (each connection numbers its own)."""
    first = payloads[0]
    return [first[:1] + b"\0\0\0\0" + first[5:], *payloads[1:]] if first[:1] == b"\0" else payloads


def test_the_capabilities_are_negotiated_as_directly(clients: tuple[RawClient, RawClient]) -> None:
    through, direct = clients
    assert through.capabilities & ALL_SHAPING == direct.capabilities & ALL_SHAPING


def test_json_uuid_inet6_columns_carry_their_extended_type_as_directly(
    clients: tuple[RawClient, RawClient],
) -> None:
    through, direct = clients
    sql = f"SELECT n, j, u, i FROM {TABLE} ORDER BY n"
    got, expected = through.query(sql), direct.query(sql)
    assert got == expected
    if through.capabilities & MARIADB_CLIENT_EXTENDED_METADATA:
        infos = [extended_type_info(d) for d in column_definitions(got)]
        assert infos == [b"", b"\x01\x04json", b"\x00\x04uuid", b"\x00\x05inet6"]


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 1 AS a; SELECT j FROM {t} WHERE n = 1; DO 1",
        "CALL {p}()",
        "BEGIN NOT ATOMIC FOR r IN (SELECT n, j FROM {t} ORDER BY n) DO SELECT r.n; END FOR; END",
        "SELECT n FROM {t} WHERE n > 100",
        "SELECT * FROM {t}_missing",
        "SHOW STATUS LIKE 'Com_stmt_prep%'",
    ],
    ids=["multi-statement", "call-cursor-loop", "for-loop-block", "empty", "error", "show-status"],
)
def test_text_results_are_relayed_as_they_are(
    clients: tuple[RawClient, RawClient], sql: str
) -> None:
    through, direct = clients
    statement = sql.format(t=TABLE, p=PROCEDURE)
    assert through.query(statement) == direct.query(statement)
    assert through.query("SELECT 2") == direct.query("SELECT 2")  # still in step


def test_prepared_statements_cached_metadata_and_cursors_as_directly(
    clients: tuple[RawClient, RawClient],
) -> None:
    through, direct = clients
    sql = f"SELECT n, j, u, i FROM {TABLE} WHERE n > ? ORDER BY n"
    (sid_p, prepared_p), (sid_d, prepared_d) = through.prepare(sql), direct.prepare(sql)
    assert _masked_prepare(prepared_p) == _masked_prepare(prepared_d)
    for _ in range(2):  # the second execution: the definitions left out when cached
        assert through.execute(sid_p, [0]) == direct.execute(sid_d, [0])
    assert through.execute(sid_p, [1], cursor=True) == direct.execute(sid_d, [1], cursor=True)
    assert through.fetch(sid_p, 1) == direct.fetch(sid_d, 1)
    assert through.fetch(sid_p, 5) == direct.fetch(sid_d, 5)
    (call_p, _), (call_d, _) = (
        through.prepare(f"CALL {PROCEDURE}()"),
        direct.prepare(f"CALL {PROCEDURE}()"),
    )
    for _ in range(2):
        assert through.execute(call_p) == direct.execute(call_d)
    assert through.query("SELECT 2") == direct.query("SELECT 2")


def test_field_list_as_directly(clients: tuple[RawClient, RawClient]) -> None:
    through, direct = clients
    got = through.field_list(TABLE)
    assert got == direct.field_list(TABLE)
    assert len(got) == 6  # five definitions, then the end packet
    assert through.query("SELECT 2") == direct.query("SELECT 2")


def test_ml_statements_keep_the_other_columns_metadata(
    clients: tuple[RawClient, RawClient],
) -> None:
    """An ML statement's result is the rewritten statement's: its plain columns carry
    the same definitions (extended type included) as the same columns directly, and
    every internal statement the proxy ran on the way read the negotiated shapes."""
    through, direct = clients
    got = through.query(
        f"SELECT n, j, u, aws_comprehend_detect_sentiment(txt, 'en') AS s FROM {TABLE} ORDER BY n"
    )
    expected = direct.query(f"SELECT n, j, u FROM {TABLE} ORDER BY n")
    assert column_definitions(got)[:3] == column_definitions(expected)
    assert len(got) == len(expected) + 1  # one more definition, the same number of rows
    assert through.query("SELECT 2") == direct.query("SELECT 2")


def test_ml_prepared_statements_always_give_their_definitions(
    clients: tuple[RawClient, RawClient],
) -> None:
    """The client holds the metadata twin's definitions; each execution runs another
    statement, so a client caching metadata gets the definitions every time, with the
    sequence ids following on (the raw client checks every one)."""
    through, direct = clients
    sid, prepared = through.prepare(
        f"SELECT n, u, aws_comprehend_detect_sentiment(txt, 'en') AS s FROM {TABLE}"
        " WHERE n > ? ORDER BY n"
    )
    assert prepared[0][:1] == b"\x00", prepared
    plain_sid, _ = direct.prepare(f"SELECT n, u FROM {TABLE} WHERE n > ? ORDER BY n")
    for bound in (0, 0, 1):
        got = through.execute(sid, [bound])
        expected = direct.execute(plain_sid, [bound])
        if through.cache_metadata:
            assert got[0] == b"\x03\x01"  # three columns, their definitions follow
        assert column_definitions(got)[:2] == column_definitions(direct_definitions(direct, bound))
        rows = len(got) - len(column_definitions(got))
        assert rows == len(expected) - len(column_definitions(expected))
    assert through.query("SELECT 2") == direct.query("SELECT 2")


def direct_definitions(direct: RawClient, bound: int) -> list[bytes]:
    """The definitions of the plain columns, from a text query (always sent in full)."""
    return direct.query(f"SELECT n, u FROM {TABLE} WHERE n > {bound} ORDER BY n")


def test_explain_show_status_and_show_create_function_read_the_negotiated_shape(
    clients: tuple[RawClient, RawClient],
) -> None:
    through, direct = clients
    explained = through.query(
        f"EXPLAIN SELECT aws_comprehend_detect_sentiment(txt, 'en') FROM {TABLE}"
    )
    assert explained[0][:1] not in (b"\x00", b"\xff"), explained
    status_p = through.query("SHOW STATUS LIKE 'Aurora_ml%'")
    status_d = direct.query("SHOW STATUS LIKE 'Aurora_ml%'")
    assert column_definitions(status_p) == column_definitions(status_d)
    assert status_p[-1] == status_d[-1]  # the same end packet (EOF, or OK-as-EOF)
    rows = status_p[len(status_d) - 1 : -1]
    assert len(rows) == 7 and all(row[1:].startswith(b"Aurora_ml_") for row in rows), rows
    assert through.query("SELECT 2") == direct.query("SELECT 2")


def test_show_create_function_of_an_alias_in_each_shape(
    clients: tuple[RawClient, RawClient], proxy: RunningProxy
) -> None:
    through, _ = clients
    with proxy.connect() as conn, conn.cursor() as cur:
        cur.execute("DROP FUNCTION IF EXISTS ext_meta_alias")
        cur.execute(
            "CREATE FUNCTION ext_meta_alias (x VARCHAR(100)) RETURNS VARCHAR(100)"
            " ALIAS AWS_SAGEMAKER_INVOKE_ENDPOINT ENDPOINT NAME 'ext-meta'"
        )
        cur.execute("SHOW CREATE FUNCTION ext_meta_alias")
        expected = cur.fetchall()
    response = through.query("SHOW CREATE FUNCTION ext_meta_alias")
    assert b"ALIAS AWS_SAGEMAKER_INVOKE_ENDPOINT" in b"".join(response)
    assert any(str(expected[0][2]).encode() in p for p in response)
    assert through.query("SELECT 2")[0][:1] != b"\xff"


def test_pymysql_still_reads_everything(proxy: RunningProxy, typed_table: None) -> None:
    """A MySQL client (CLIENT_MYSQL set, no extended capabilities) sees no change."""
    conn: pymysql.Connection[Any] = proxy.connect()
    with conn, conn.cursor() as cur:
        cur.execute(f"SELECT n, j FROM {TABLE} ORDER BY n")
        assert [row[0] for row in cur.fetchall()] == [1, 2, 3]


def test_mariadb_connector_sees_json_uuid_inet6_as_directly(
    proxy: RunningProxy, backend: BackendInfo, typed_table: None
) -> None:
    """MariaDB's own connector (Connector/C underneath) asks for extended metadata and
    caches prepared statements' metadata: its cursors' metadata through the proxy is
    the server's, for text and binary (prepared) results, ML statements included."""
    mariadb = pytest.importorskip("mariadb")

    def metadata(port: int, sql: str, params: tuple[Any, ...] | None) -> tuple[Any, ...]:
        conn = mariadb.connect(
            host="127.0.0.1", port=port, user=APP.user, password=APP.password, database=TEST_DB
        )
        try:
            cur = conn.cursor(binary=params is not None)
            for _ in range(2):  # the second execution: metadata cached
                cur.execute(sql, params)
                rows = cur.fetchall()
            return rows, cur.metadata["ext_type_or_format"], cur.metadata["type"]
        finally:
            conn.close()

    for params in (None, (0,)):
        sql = f"SELECT n, j, u, i FROM {TABLE} WHERE n > {'?' if params else 0} ORDER BY n"
        assert metadata(proxy.port, sql, params) == metadata(backend.port, sql, params)
    ml = (
        f"SELECT n, j, aws_comprehend_detect_sentiment(txt, 'en') AS s FROM {TABLE}"
        " WHERE n > ? ORDER BY n"
    )
    rows, formats, _ = metadata(proxy.port, ml, (0,))
    assert [row[2] for row in rows] == ["POSITIVE", "NEGATIVE", None]
    assert formats[:2] == metadata(backend.port, sql, (0,))[1][:2]
