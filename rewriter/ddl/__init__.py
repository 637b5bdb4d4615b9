"""Aurora MySQL's ML DDL: ``CREATE FUNCTION ... ALIAS ...`` and ``DROP FUNCTION``.

sqlglot does not know the ALIAS clause, and the backend server would reject it, so the
proxy parses these statements itself: a small scanner (MySQL's lexical rules: quotes,
backticks, comments) and a recursive-descent parser for exactly this grammar. Pure
functions, no I/O.

A ``CREATE FUNCTION`` without an ALIAS clause is an ordinary stored function: the parser
answers None and the proxy forwards it untouched. Once a statement is known to be ML DDL,
mistakes raise :class:`PlanError` with MySQL's own codes and wording (1064 and the
``near '...' at line N`` fragment), so clients see the errors they expect.

>>> f = parse_ml_ddl("create function f(x double) returns int "
...                  "alias aws_sagemaker_invoke_endpoint endpoint name 'ep'")
>>> (f.name, f.kind, f.endpoint, f.max_batch_size, f.args[0].sql_type)
('f', 'sagemaker', 'ep', 10000, 'DOUBLE')
>>> parse_ml_ddl("DROP FUNCTION IF EXISTS db.f;")
DropFunction(schema='db', name='f', if_exists=True)
>>> parse_ml_ddl("CREATE FUNCTION f() RETURNS INT RETURN 1") is None
True
"""

from __future__ import annotations

from rewriter.ddl.model import AliasFunction, Argument, DropFunction
from rewriter.ddl.parser import parse_ml_ddl
from rewriter.ddl.render import render_create
from rewriter.ddl.scanner import looks_like_ml_ddl

# What the rest of the project uses; the grammar's tables stay in model and types.
__all__ = [
    "AliasFunction",
    "Argument",
    "DropFunction",
    "looks_like_ml_ddl",
    "parse_ml_ddl",
    "render_create",
]
