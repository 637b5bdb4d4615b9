"""The function registry's SQL: endpoint aliases stored as stored-function stubs.

An alias lives in the backend as a real stored function of the same schema, name,
parameters and return type, whose COMMENT holds the alias definition and whose body
refuses to run::

    CREATE FUNCTION `shop`.`will_churn`(`state` VARCHAR(2048), ...) RETURNS VARCHAR(2048)
      NOT DETERMINISTIC NO SQL COMMENT 'mlproxy: CREATE FUNCTION ... ALIAS ...'
      BEGIN SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = '...'; RETURN NULL; END

So MySQL itself keeps the registry: it survives restarts, every proxy in front of the
database reads it (information_schema.ROUTINES), creating and dropping need the routine
privileges they need for any function, ``DROP FUNCTION [IF EXISTS]`` and ``SHOW FUNCTION
STATUS`` work natively, and a call that bypasses the proxy fails loudly (1644) instead of
answering something wrong. ``NO SQL`` keeps creation legal with binary logging on.

Pure functions: statement text in, statement text or definitions out.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from rewriter.ddl import AliasFunction, parse_ml_ddl, render_create
from rewriter.ddl.types import _ident
from rewriter.errors import PlanError
from rewriter.sql_text import string_literal

#: Starts the COMMENT of every stub; what the registry queries look for.
MARKER = "mlproxy:"
#: SIGNAL's MESSAGE_TEXT holds at most 128 characters.
_MAX_MESSAGE = 128

_ROUTINES = (
    "SELECT ROUTINE_SCHEMA, ROUTINE_NAME, ROUTINE_COMMENT, SECURITY_TYPE, DEFINER "
    "FROM information_schema.ROUTINES "
    f"WHERE ROUTINE_TYPE = 'FUNCTION' AND ROUTINE_COMMENT LIKE '{MARKER}%'"
)
#: Every alias name the account can see: what the proxy's detector watches for.
NAMES_QUERY = (
    "SELECT DISTINCT LOWER(ROUTINE_NAME) FROM information_schema.ROUTINES "
    f"WHERE ROUTINE_TYPE = 'FUNCTION' AND ROUTINE_COMMENT LIKE '{MARKER}%'"
)
#: Succeeds for an account that sees every routine in information_schema.ROUTINES: the
#: server shows all of them to one that may read mysql.proc (MariaDB, MySQL 5.7; MySQL 8
#: has no such table, and the query fails).
FULL_VIEW_QUERY = "SELECT 1 FROM mysql.proc LIMIT 0"


def names_query(mariadb: bool) -> str:
    """NAMES_QUERY as the proxy runs it, leaving no trace in the status counters a client
    reads (issue 11, MariaDB's empty_table and grant_cache tests): a NULL row more, since
    an empty result counts in Empty_queries; on MariaDB, SQL_NO_CACHE, since a query the
    cache refuses (information_schema's) counts in Qcache_not_cached (MySQL 8 has no
    query cache and deprecates the word).

    >>> names_query(True).startswith("SELECT SQL_NO_CACHE DISTINCT")
    True
    >>> names_query(False).endswith("UNION ALL SELECT NULL")
    True
    """
    query = NAMES_QUERY + " UNION ALL SELECT NULL"
    return query.replace("SELECT DISTINCT", "SELECT SQL_NO_CACHE DISTINCT") if mariadb else query


@dataclass(frozen=True)
class Routine:
    """One row of the registry query: where a stub lives and what it says."""

    schema: str
    name: str
    comment: str
    security: str
    definer: str


def definitions_query(names: list[str] | None = None, schema: str | None = None) -> str:
    """The registry rows for ``names`` (all when None), optionally in one schema. Values
    are hex literals: no name changes the query's structure, whatever the sql_mode."""
    query = _ROUTINES
    if names is not None:
        query += " AND ROUTINE_NAME IN (" + ", ".join(map(string_literal, names)) + ")"
    if schema is not None:
        query += " AND ROUTINE_SCHEMA = " + string_literal(schema)
    return query + " ORDER BY ROUTINE_SCHEMA, ROUTINE_NAME"


def stub_statement(fn: AliasFunction, *, backslash_escapes: bool = True) -> str:
    """The CREATE FUNCTION that stores ``fn``. String literals in it are quoted for the
    session's sql_mode (``backslash_escapes`` False under NO_BACKSLASH_ESCAPES)."""
    name = (_ident(fn.schema) + "." if fn.schema else "") + _ident(fn.name)
    args = ", ".join(f"{_ident(a.name)} {a.sql_type}" for a in fn.args)
    definer = f"DEFINER={fn.definer} " if fn.definer else ""
    security = f" SQL SECURITY {fn.security}" if fn.security else ""
    comment = MARKER + " " + render_create(replace(fn, schema=None, definer=None, security=None))
    message = f"{fn.name}() is an mlproxy ML function: call it through mlproxy"[:_MAX_MESSAGE]
    quote = _quoter(backslash_escapes)
    return (
        f"CREATE {definer}FUNCTION {name}({args}) RETURNS {fn.returns}{security} "
        f"NOT DETERMINISTIC NO SQL COMMENT {quote(comment)} "
        f"BEGIN SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = {quote(message)}; RETURN NULL; END"
    )


def _quoter(backslash_escapes: bool):  # type: ignore[no-untyped-def]
    """COMMENT takes only a plain string literal (no hex, no introducer)."""

    def quote(text: str) -> str:
        if backslash_escapes:
            text = text.replace("\\", "\\\\")
        return "'" + text.replace("'", "''") + "'"

    return quote


def definition_of(routine: Routine) -> AliasFunction | None:
    """The alias a stub holds, named and owned as the backend has it (its schema, name,
    definer and SQL SECURITY are the routine's own); None for a comment that is not a
    definition this version can read (then the function is not an alias to this proxy)."""
    if not routine.comment.startswith(MARKER):
        return None
    try:
        parsed = parse_ml_ddl(routine.comment[len(MARKER) :])
    except PlanError:
        return None
    if not isinstance(parsed, AliasFunction):
        return None
    user, _, host = routine.definer.rpartition("@")
    fn = replace(
        parsed,
        schema=routine.schema,
        name=routine.name,
        definer=f"{_ident(user)}@{_ident(host)}" if user else None,
        security="INVOKER" if routine.security.upper() == "INVOKER" else "DEFINER",
    )
    return replace(fn, sql=render_create(fn))


def show_create_text(fn: AliasFunction) -> str:
    """What SHOW CREATE FUNCTION shows for an alias: the Aurora DDL, without the schema
    (as MySQL shows any function)."""
    return render_create(replace(fn, schema=None))
