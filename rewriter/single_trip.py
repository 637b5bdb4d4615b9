"""Which point selects can fetch their calls' inputs with their rows: one round trip.

A point select with an ML call (``SELECT id, aws_comprehend_detect_sentiment(txt, 'en')
FROM t WHERE id = 7``) takes two round trips to the database: the key query reads the
call's inputs, then the statement runs with the answers written into it. When every
call is a whole item of the select list, the statement can instead run once with each
call's item replaced by a typed NULL of the call's result type and each call's inputs'
keys added after its last item (``SELECT id, CAST(NULL AS ...) AS `...`,
CAST(CONVERT((txt) USING utf8mb4) AS BINARY), ... FROM t WHERE id = 7``): the proxy
then reads each row's inputs from its last columns, and writes each row's cached
answer in place of the NULL, the key columns dropped (proxy.ml.fastpath.single_trip).

That is the same result only for a statement whose rows and other items do not depend
on the calls' answers and whose text may run a second time: when an answer is not
cached, the statement is served again the usual way. So it is made only for one SELECT
(no UNION, CTE, subquery, DISTINCT, GROUP BY, HAVING, ORDER BY, window, INTO, locking
read or modifier such as SQL_CALC_FOUND_ROWS) whose every node is a column, a literal,
an operator or comparison of them, a table or a join: no function but the ML calls, so
nothing with a side effect (a stored function, a user variable's assignment, GET_LOCK,
NEXTVAL) runs twice. No star may follow a call's item: the proxy finds a call's column
by counting from the end.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sqlglot import exp
from sqlglot.errors import SqlglotError
from sqlglot.tokenizer_core import Token, TokenType

from rewriter.dialect import dialect_of
from rewriter.functions import MLFunction
from rewriter.lexer import SqlSyntax, UnreadableStatement, read_statement
from rewriter.plan import MLPlan, lookup

#: What a statement's nodes may be (besides the ML calls themselves).
_PLAIN_NODES: tuple[type[exp.Expr], ...] = (
    exp.Select,
    exp.From,
    exp.Join,
    exp.Where,
    exp.Limit,
    exp.Offset,
    exp.Table,
    exp.TableAlias,
    exp.Alias,
    exp.Column,
    exp.Identifier,
    exp.Star,
    exp.Literal,
    exp.Null,
    exp.Boolean,
    exp.Paren,
    exp.Neg,
    exp.Not,
    exp.And,
    exp.Or,
    exp.EQ,
    exp.NEQ,
    exp.NullSafeEQ,
    exp.GT,
    exp.GTE,
    exp.LT,
    exp.LTE,
    exp.Is,
    exp.In,
    exp.Between,
    exp.Add,
    exp.Sub,
    exp.Mul,
    exp.Div,
    exp.Mod,
    exp.Tuple,
)
#: The SELECT's parts it may have.
_PLAIN_PARTS = frozenset({"expressions", "from_", "joins", "where", "limit", "offset"})


@dataclass(frozen=True)
class SingleTrip:
    """Where a statement's key columns go, and where its calls' columns are."""

    #: The offset in the statement's text where its select list ends.
    insert_at: int
    #: Per call (MLPlan.calls' order): how many select items follow the call's item.
    items_after: tuple[int, ...]


def single_trip(
    plan: MLPlan, functions: Mapping[str, MLFunction], syntax: SqlSyntax
) -> SingleTrip | None:
    """The single trip of ``plan``'s statement (its text: ``plan.sql``), or None when the
    statement is not one it is made for (module docstring)."""
    if plan.state_calls or plan.hidden or not plan.calls:
        return None
    dialect = dialect_of(syntax)
    try:  # (the canonical twin, as rewriter.plan.plan_statement reads it: the same offsets)
        canonical = read_statement(plan.sql, syntax).canonical
        tokens = dialect.tokenize(canonical)
        parsed = dialect.parser().parse(tokens, canonical)
    except (SqlglotError, UnreadableStatement):
        return None
    if len(parsed) != 1 or not isinstance(parsed[0], exp.Select):
        return None
    select = parsed[0]
    if any(value for key, value in select.args.items() if key not in _PLAIN_PARTS and value):
        return None
    items = list(select.expressions)
    starts = {call.span.name_start: number for number, call in enumerate(plan.calls)}
    items_after: dict[int, int] = {}
    for node in select.walk():
        if isinstance(node, exp.Anonymous) and lookup(node, functions) is not None:
            number = starts.get(node.meta.get("start", -1))
            place = _item_place(node, select, items)
            if number is None or place is None:  # (its arguments are walked next)
                return None
            items_after[number] = len(items) - 1 - place
        elif not isinstance(node, _PLAIN_NODES) or _subquery(node, select):
            return None
    if len(items_after) != len(plan.calls):
        return None
    first_call = len(items) - 1 - max(items_after.values())
    if any(_is_star(item) for item in items[first_call + 1 :]):
        return None
    insert_at = _select_list_end(tokens)
    if insert_at is None:
        return None
    return SingleTrip(insert_at, tuple(items_after[n] for n in range(len(plan.calls))))


def _subquery(node: exp.Expr, select: exp.Select) -> bool:
    return isinstance(node, exp.Select) and node is not select


def _item_place(node: exp.Expr, select: exp.Select, items: list[exp.Expr]) -> int | None:
    """The place among the select list's items of the call ``node`` when the call is a
    whole item (aliased or not); None otherwise."""
    item = node.parent if isinstance(node.parent, exp.Alias) else node
    if item.parent is not select:
        return None
    for place, candidate in enumerate(items):
        if candidate is item:
            return place
    return None


def _is_star(item: exp.Expr) -> bool:
    return isinstance(item, exp.Star) or (isinstance(item, exp.Column) and item.is_star)


def _select_list_end(tokens: list[Token]) -> int | None:
    """The offset just past the select list's last token: before the FROM at the outer
    level (the statement's first token is its SELECT: a parenthesised one is refused)."""
    if not tokens or tokens[0].token_type != TokenType.SELECT:
        return None
    depth = 0
    for i, token in enumerate(tokens):
        if token.token_type == TokenType.L_PAREN:
            depth += 1
        elif token.token_type == TokenType.R_PAREN:
            depth -= 1
        elif depth == 0 and token.token_type == TokenType.FROM and i > 1:
            return tokens[i - 1].end + 1
    return None
