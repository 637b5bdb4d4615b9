"""The sqlglot dialect the planner reads and writes a session's statements in.

sqlglot's MySQL reads ``a || b`` as ``a OR b`` and writes it back as ``OR``: right in the
default sql_mode, wrong under PIPES_AS_CONCAT (and the modes that include it: ANSI,
ORACLE, ...), where the server reads it as a concatenation. A key query written from such
a statement would then select other rows than the statement (and a call's answers would
be missing). Under PIPES_AS_CONCAT the planner reads ``||`` as a concatenation as tightly
as the server does (between ``^`` and the unary operators) and writes it back as ``||``,
which the same session reads the same way.

>>> from sqlglot import exp
>>> tree = PIPES_AS_CONCAT.parse("SELECT a FROM t WHERE b || 'x' = 'yx' OR c")[0]
>>> isinstance(tree.find(exp.DPipe), exp.DPipe), tree.sql(dialect=PIPES_AS_CONCAT)
(True, "SELECT a FROM t WHERE b || 'x' = 'yx' OR c")
>>> MYSQL.parse("SELECT a || b")[0].sql(dialect=MYSQL)
'SELECT a OR b'
"""

from __future__ import annotations

from sqlglot import exp
from sqlglot.dialects.mysql import MySQL
from sqlglot.generators.mysql import MySQLGenerator
from sqlglot.parsers.mysql import MySQLParser
from sqlglot.tokenizer_core import TokenType

from rewriter.lexer import SqlSyntax


class _PipesAsConcat(MySQL):
    """MySQL under sql_mode PIPES_AS_CONCAT."""

    DPIPE_IS_STRING_CONCAT = True

    class Parser(MySQLParser):
        DISJUNCTION = {k: v for k, v in MySQLParser.DISJUNCTION.items() if k != TokenType.DPIPE}
        EXPONENT = {**MySQLParser.EXPONENT, TokenType.DPIPE: exp.DPipe}

    class Generator(MySQLGenerator):
        def dpipe_sql(self, expression: exp.DPipe) -> str:
            return str(self.binary(expression, "||"))


MYSQL = MySQL()
PIPES_AS_CONCAT = _PipesAsConcat()


def dialect_of(syntax: SqlSyntax) -> MySQL:
    """The dialect a statement read in ``syntax`` is parsed and written in."""
    return PIPES_AS_CONCAT if syntax.pipes_as_concat else MYSQL
