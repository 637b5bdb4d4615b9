"""Which statements may change how the server reads a session's next statements.

The proxy keeps what it read of a session (sql_mode, character sets, current database:
proxy.ml.known_settings) until the client sends something that may have changed it. A
statement that may not is known by its first word: a SELECT, an INSERT, a COMMIT... runs
no SET and no USE. Stored routines and triggers run by such a statement may set variables,
but the server gives the caller back its sql_mode, character sets and database when
they return. Anything else counts as a change: SET (in all its forms), USE, CALL,
EXECUTE, DROP (of the current database), compound statements (BEGIN NOT ATOMIC, IF,
WHILE, a label), a statement behind an executable comment, and any statement with a
semicolon (one of a multi-statement batch). A word missing from the list only costs the
next ML statement one settings query.

>>> may_change_session(b"SELECT id FROM t WHERE id = 7")
False
>>> may_change_session(b"SET NAMES latin1"), may_change_session(b"use shop")
(True, True)
>>> may_change_session(b"/* app */ select 1"), may_change_session(b"/*!40101 SET NAMES utf8 */")
(False, True)
>>> may_change_session(b"begin"), may_change_session(b"BEGIN NOT ATOMIC SET @a = 1; END")
(False, True)
>>> may_change_session(b"SELECT 1; SET sql_mode = 'ANSI_QUOTES'")
True
"""

from __future__ import annotations

import re

#: The first four letters (lower case) of the statements that change none of it.
_KEEPS = frozenset(
    {
        b"sele",  # SELECT
        b"inse",  # INSERT
        b"upda",  # UPDATE
        b"dele",  # DELETE
        b"repl",  # REPLACE
        b"with",  # WITH ... SELECT / UPDATE / DELETE
        b"valu",  # VALUES
        b"tabl",  # TABLE
        b"show",
        b"desc",  # DESC, DESCRIBE
        b"expl",  # EXPLAIN
        b"star",  # START TRANSACTION
        b"comm",  # COMMIT
        b"roll",  # ROLLBACK
        b"save",  # SAVEPOINT
        b"rele",  # RELEASE SAVEPOINT
        b"lock",
        b"unlo",  # UNLOCK
        b"crea",  # CREATE (a routine is only stored)
        b"alte",  # ALTER
        b"trun",  # TRUNCATE
        b"rena",  # RENAME
        b"anal",  # ANALYZE
        b"opti",  # OPTIMIZE
        b"chec",  # CHECK, CHECKSUM
        b"repa",  # REPAIR
        b"gran",  # GRANT
        b"revo",  # REVOKE
        b"flus",  # FLUSH
        b"kill",
        b"load",  # LOAD DATA
        b"hand",  # HANDLER
        b"prep",  # PREPARE (its EXECUTE counts)
        b"deal",  # DEALLOCATE
        b"help",
    }
)
#: BEGIN as the start of a transaction (BEGIN NOT ATOMIC is a compound statement).
_BEGIN = re.compile(rb"\s*begin(\s+work)?\s*;?\s*\Z", re.IGNORECASE)
#: Blanks and ordinary comments before a statement's first word (not /*! ... */).
_LEADING = re.compile(rb"(?:\s+|\(|/\*(?!!|M!).*?\*/|(?:#|--\s)[^\n]*(?:\n|\Z))*", re.DOTALL)


def may_change_session(sql: bytes) -> bool:
    """Whether running ``sql`` (a COM_QUERY's, or a prepared statement's text) may change
    the session's sql_mode, character sets or current database."""
    head = sql[:4].lower()
    if not head[:1].isalpha():
        start = _LEADING.match(sql)
        head = sql[start.end() if start else 0 :][:4].lower()
    if head in _KEEPS:
        return b";" in sql
    if head == b"begi":
        return _BEGIN.match(sql) is None
    return True
