"""Exact text spans of function calls and their arguments, from sqlglot's tokens.

Rewrites splice text into the client's statement at these offsets instead of
regenerating it, so everything around a call stays exactly as the client wrote it.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlglot.dialects.mysql import MySQL
from sqlglot.tokenizer_core import Token, TokenType

_OPEN = {TokenType.L_PAREN}
_CLOSE = {TokenType.R_PAREN}


@dataclass(frozen=True)
class CallSpan:
    """Where one call stands: [start, end) of the whole call (with its ``db.`` prefix),
    and [start, end) of each argument."""

    name_start: int
    start: int
    end: int
    args: tuple[tuple[int, int], ...]


def tokenize(sql: str) -> list[Token]:
    return list(MySQL().tokenize(sql))


def call_spans(sql: str, names: frozenset[str]) -> dict[int, CallSpan]:
    """Every call of one of ``names``, keyed by the offset of the function name."""
    return token_call_spans(tokenize(sql), names)


def token_call_spans(tokens: list[Token], names: frozenset[str]) -> dict[int, CallSpan]:
    """``call_spans`` of a statement already tokenized."""
    spans = {}
    for i, token in enumerate(tokens[:-1]):
        if token.text.lower() in names and tokens[i + 1].token_type in _OPEN:
            spans[token.start] = _span(tokens, i)
    return spans


def _span(tokens: list[Token], name_index: int) -> CallSpan:
    start = tokens[name_index].start
    if name_index >= 2 and tokens[name_index - 1].token_type == TokenType.DOT:
        start = tokens[name_index - 2].start
    depth = 0
    args: list[tuple[int, int]] = []
    arg_start = tokens[name_index + 1].end + 1
    for token in tokens[name_index + 1 :]:
        if token.token_type in _OPEN:
            depth += 1
        elif token.token_type in _CLOSE:
            depth -= 1
            if depth == 0:
                if token.start > arg_start or args:
                    args.append((arg_start, token.start))
                return CallSpan(tokens[name_index].start, start, token.end + 1, tuple(args))
        elif token.token_type == TokenType.COMMA and depth == 1:
            args.append((arg_start, token.start))
            arg_start = token.end + 1
    raise ValueError("unbalanced parentheses in a call")
