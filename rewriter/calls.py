"""Finding ML function calls in a statement with sqlglot.

sqlglot parses unknown calls as ``exp.Anonymous`` but maps some names to built-ins
(``translate`` becomes ``Translate``); registering the ML names in the MySQL parser's
FUNCTIONS table as Anonymous builders keeps every registered name an Anonymous call.
"""

from __future__ import annotations

from collections.abc import Iterable

import sqlglot
from sqlglot import exp
from sqlglot.dialects.mysql import MySQL
from sqlglot.errors import SqlglotError


def register_function_names(names: Iterable[str]) -> None:
    """Make the MySQL parser read each name as a plain (Anonymous) function call."""
    for name in names:
        MySQL.Parser.FUNCTIONS[name.upper()] = _anonymous_builder(name.lower())


def _anonymous_builder(name: str):  # type: ignore[no-untyped-def]
    def build(args: list[exp.Expr]) -> exp.Anonymous:
        return exp.Anonymous(this=name, expressions=args)

    return build


def find_calls(sql: str, names: Iterable[str]) -> list[exp.Anonymous] | None:
    """The calls to ``names`` in ``sql``, or None when sqlglot cannot parse it.

    >>> register_function_names(["will_churn"])
    >>> sql = "SELECT will_churn(a) FROM t WHERE b = 'will_churn(1)'"
    >>> [call.name for call in find_calls(sql, ["will_churn"])]
    ['will_churn']
    """
    wanted = {name.lower() for name in names}
    try:
        statements = sqlglot.parse(sql, read="mysql")
    except SqlglotError:
        return None
    return [
        node
        for statement in statements
        if statement is not None
        for node in statement.find_all(exp.Anonymous)
        if node.name.lower() in wanted
    ]
