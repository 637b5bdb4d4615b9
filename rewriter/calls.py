"""Making sqlglot read every ML function name as a plain function call.

sqlglot parses unknown calls as ``exp.Anonymous`` but maps some names to built-ins
(``translate`` becomes ``Translate``); registering the ML names in the MySQL parser's
FUNCTIONS table as Anonymous builders keeps every registered name an Anonymous call.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlglot import exp
from sqlglot.dialects.mysql import MySQL


def register_function_names(names: Iterable[str]) -> None:
    """Make the MySQL parser read each name as a plain (Anonymous) function call."""
    for name in names:
        MySQL.Parser.FUNCTIONS[name.upper()] = _anonymous_builder(name.lower())


def _anonymous_builder(name: str):  # type: ignore[no-untyped-def]
    def build(args: list[exp.Expr]) -> exp.Anonymous:
        return exp.Anonymous(this=name, expressions=args)

    return build
