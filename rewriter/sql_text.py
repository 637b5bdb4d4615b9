"""SQL text the rewriter writes: keys, literals, identifiers, and select-item names.

Values never become SQL through quoting: strings are hex literals with a charset
introducer, numbers are written as DOUBLE literals, so no value changes a statement's
structure whatever its bytes or the session's sql_mode.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence

from sqlglot import exp
from sqlglot.tokenizer_core import Token, TokenType

from rewriter.lexer import SqlSyntax, read_statement
from rewriter.spans import CallSpan, tokenize

#: MySQL's limit on the length of a column alias.
MAX_ALIAS = 256
#: Characters outside the Basic Multilingual Plane.
_ASTRAL = re.compile("[\U00010000-\U0010ffff]")

_ITEM_START = {
    TokenType.SELECT,
    TokenType.DISTINCT,
    TokenType.COMMA,
    TokenType.ALL,
    TokenType.STRAIGHT_JOIN,
}
_SELECT_MODIFIERS = {
    "DISTINCTROW",
    "HIGH_PRIORITY",
    "SQL_SMALL_RESULT",
    "SQL_BIG_RESULT",
    "SQL_BUFFER_RESULT",
    "SQL_CACHE",
    "SQL_NO_CACHE",
    "SQL_CALC_FOUND_ROWS",
}
_ITEM_END = {
    TokenType.COMMA,
    TokenType.FROM,
    TokenType.INTO,
    TokenType.WHERE,
    TokenType.GROUP_BY,
    TokenType.ORDER_BY,
    TokenType.HAVING,
    TokenType.LIMIT,
    TokenType.UNION,
    TokenType.EXCEPT,
    TokenType.INTERSECT,
    TokenType.SEMICOLON,
    TokenType.WINDOW,
    TokenType.FOR,
}


#: input_key's text before and after the input.
INPUT_KEY = ("CAST(CONVERT((", ") USING utf8mb4) AS BINARY)")


def input_key(text: str) -> str:
    """An input as exact utf8mb4 bytes: equal keys mean equal inputs, whatever the
    collation (a case-insensitive one would merge 'Good' and 'GOOD')."""
    return INPUT_KEY[0] + text + INPUT_KEY[1]


def string_literal(value: str | None) -> str:
    if value is None:
        return "NULL"
    return "_utf8mb4 X'" + value.encode("utf-8").hex() + "'" if value else "_utf8mb4''"


def bytes_literal(value: bytes) -> str:
    return "X'" + value.hex() + "'" if value else "''"


def double_literal(value: float | None) -> str:
    """A DOUBLE literal (exponent form: a plain decimal literal would be DECIMAL)."""
    if value is None or not math.isfinite(value):
        return "NULL"
    text = repr(float(value))
    return text if "e" in text else text + "e0"


def quote_identifier(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def item_aliases(
    node: exp.Expr,
    span: CallSpan,
    sql: str,
    tokens: list[Token] | None = None,
    hidden: Sequence[tuple[int, int]] = (),
) -> list[tuple[int, ...]]:
    """For each select-list item around the call that has no alias, from the innermost
    out: the start and end offsets of the pieces of text the server names its column by
    (see ``item_alias``): the item's text, less the executable comments' openers and
    ends in it (``hidden``: ReadStatement.hidden), which the server drops; the rewrite
    must not change the name. ``sql`` is what sqlglot read (rewriter.lexer's canonical
    twin, whose offsets are the client's text's), ``tokens`` its tokens when they are at
    hand."""
    tokens = tokenize(sql) if tokens is None else tokens
    depths = _depths(tokens)
    anchor = next(i for i, t in enumerate(tokens) if t.start == span.name_start)
    strict = False
    aliases: list[tuple[int, ...]] = []
    item: exp.Expr = node
    while True:
        while item.parent is not None and not isinstance(item.parent, exp.Select):
            item = item.parent
        parent = item.parent
        select = _owning_select(tokens, depths, anchor, strict)
        if parent is None or select is None:
            return aliases
        if item in parent.expressions and not isinstance(item, exp.Alias):
            start, end = _item_bounds(tokens, depths, anchor, select)
            aliases.append(pieces_between(start, end, hidden))
        item, anchor, strict = parent, select, True


def _depths(tokens: list[Token]) -> list[int]:
    """Each token's parenthesis depth (a paren itself counts as outside)."""
    depths, depth = [], 0
    for token in tokens:
        if token.token_type == TokenType.R_PAREN:
            depth -= 1
        depths.append(depth)
        if token.token_type == TokenType.L_PAREN:
            depth += 1
    return depths


def item_alias(item_text: str) -> str:
    """The alias that keeps an unaliased select item's column named as the client wrote
    it (``item_text``: the client's text of the item)."""
    return quote_identifier(column_name(item_text))


def column_name(item_text: str) -> str:
    """The name MySQL gives an unaliased item: its text, at most 256 characters, with
    characters outside the Basic Multilingual Plane as '?' (identifiers are utf8mb3)."""
    return _ASTRAL.sub("?", item_text.strip()[:MAX_ALIAS])


def _owning_select(tokens: list[Token], depths: list[int], anchor: int, strict: bool) -> int | None:
    """The SELECT keyword whose list holds the token at ``anchor`` (for a subquery's own
    SELECT, ``strict``: the one around its parentheses)."""
    limit = depths[anchor] - 1 if strict else depths[anchor]
    for i in range(anchor - 1 if strict else anchor, -1, -1):
        if tokens[i].token_type == TokenType.SELECT and depths[i] <= limit:
            return i
    return None


def pieces_between(start: int, end: int, hidden: Iterable[tuple[int, int]]) -> tuple[int, ...]:
    """The pieces of ``start``..``end`` outside the ``hidden`` stretches (executable
    comments' openers and ends: ReadStatement.hidden), as their offsets in turn: start and
    end of the first, of the second..."""
    bounds = [start]
    for a, b in hidden:
        if start <= a and b <= end:
            bounds += [a, b]
    bounds.append(end)
    return tuple(bounds)


def text_of(sql: str, bounds: tuple[int, ...]) -> str:
    """The text of the pieces ``bounds`` gives (``pieces_between``)."""
    if len(bounds) == 2:
        return sql[bounds[0] : bounds[1]]
    return "".join(sql[a:b] for a, b in zip(bounds[::2], bounds[1::2], strict=True))


def code_between(sql: str, start: int, end: int, hidden: Sequence[tuple[int, int]]) -> str:
    """``sql[start:end]`` less the executable comments' openers and ends in it: an
    argument's text written elsewhere (a key query) must not carry an opener without
    its end."""
    if not hidden:
        return sql[start:end]
    return text_of(sql, pieces_between(start, end, hidden))


def _item_bounds(
    tokens: list[Token], depths: list[int], anchor: int, select: int
) -> tuple[int, int]:
    """Offsets of the select item holding ``anchor`` as the server names it: between the
    separators at the depth of its SELECT. The server notes where a name starts once it
    has read the item's first token after SELECT or a modifier (so comments and hints
    before it are not part of the name), but right after a comma (so they are)."""
    level = depths[select]
    separator = select
    for i in range(anchor - 1, select, -1):
        if depths[i] == level and _starts_items(tokens[i]):
            separator = i
            break
    last = anchor
    for i in range(anchor + 1, len(tokens)):
        if depths[i] < level or (depths[i] == level and tokens[i].token_type in _ITEM_END):
            break
        last = i
    end = tokens[last].end + 1
    if tokens[separator].token_type != TokenType.COMMA:
        return tokens[separator + 1].start, end
    return tokens[separator].end + 1, end


def _starts_items(token: Token) -> bool:
    return token.token_type in _ITEM_START or token.text.upper() in _SELECT_MODIFIERS


def bind_placeholders(sql: str, literals: list[str], syntax: SqlSyntax | None = None) -> str:
    """``sql`` with its ``?`` placeholders (tokens, not text inside strings or comments,
    as the server reads them in ``syntax``) replaced, in order, by ``literals``."""
    marks = _placeholders(sql, syntax)
    if len(marks) != len(literals):
        raise ValueError(f"{len(marks)} placeholders for {len(literals)} parameters")
    out, pos = [], 0
    for token, literal in zip(marks, literals, strict=True):
        out += [sql[pos : token.start], literal]
        pos = token.end + 1
    out.append(sql[pos:])
    return "".join(out)


def placeholder_count(sql: str, syntax: SqlSyntax | None = None) -> int:
    return len(_placeholders(sql, syntax))


def _placeholders(sql: str, syntax: SqlSyntax | None) -> list[Token]:
    canonical = read_statement(sql, syntax or SqlSyntax()).canonical
    return [t for t in tokenize(canonical) if t.token_type == TokenType.PLACEHOLDER]
