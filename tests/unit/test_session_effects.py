"""rewriter.session_effects: only statements known to leave the session's sql_mode,
character sets and database alone keep what the proxy read of them."""

from __future__ import annotations

import pytest

from rewriter.session_effects import may_change_session

KEEPS = [
    "SELECT id FROM t WHERE id = 7",
    "select 1",
    "  SELECT 1",
    "/* app: checkout */ SELECT 1",
    "-- note\nSELECT 1",
    "(SELECT 1) UNION (SELECT 2)",
    "INSERT INTO t VALUES (1)",
    "UPDATE t SET a = 1 WHERE id = 2",  # an UPDATE's SET is not a session's
    "DELETE FROM t",
    "REPLACE INTO t VALUES (1)",
    "WITH c AS (SELECT 1) SELECT * FROM c",
    "SHOW TABLES",
    "BEGIN",
    "begin work",
    "START TRANSACTION READ ONLY",
    "COMMIT",
    "ROLLBACK",
    "CREATE TABLE t2 (a INT)",
    "CREATE PROCEDURE p() SET NAMES latin1",  # stored, not run
    "PREPARE s FROM 'SET NAMES latin1'",  # its EXECUTE counts
    "GRANT SELECT ON db.* TO u",
    "LOAD DATA LOCAL INFILE 'f' INTO TABLE t",
    "EXPLAIN SELECT 1",
]
CHANGES = [
    "SET NAMES latin1",
    "set sql_mode = 'ANSI_QUOTES'",
    "SET @@session.character_set_client = 'gbk'",
    "SET STATEMENT sql_mode = '' FOR SELECT 1",
    "USE shop",
    "CALL p()",
    "EXECUTE s",
    "EXECUTE IMMEDIATE 'SET NAMES latin1'",
    "DROP DATABASE shop",
    "BEGIN NOT ATOMIC SET NAMES latin1; END",
    "IF 1 THEN SET NAMES latin1; END IF",
    "lbl: BEGIN NOT ATOMIC SET NAMES latin1; END",
    "/*!40101 SET NAMES utf8 */",
    "/*M!100000 SET NAMES utf8 */",
    "SELECT 1; SET NAMES latin1",
    "DO 1",  # not on the list: counts, at the cost of one settings query
    "",
]


@pytest.mark.parametrize("sql", KEEPS)
def test_statements_that_keep_the_settings(sql: str) -> None:
    assert not may_change_session(sql.encode())


@pytest.mark.parametrize("sql", CHANGES)
def test_statements_that_may_change_them(sql: str) -> None:
    assert may_change_session(sql.encode())
