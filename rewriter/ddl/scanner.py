"""The cheap pre-check, and a scanner with MySQL's lexical rules (quotes, backticks, comments)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from rewriter.lexer import (
    DIGITS,
    SqlSyntax,
    UnreadableStatement,
    dash_comment_at,
    executable_opener,
)

# --- the cheap pre-check -------------------------------------------------------------

#: Whitespace and comments as the server skips them (ASCII whitespace only; ``--`` before a
#: control character or a space).
_SKIP = r"(?:[ \t\n\r\x0b\x0c]|/\*(?!!).*?\*/|(?:--(?=[\x00-\x20\x7f]|$)|\#)[^\n]*(?:\n|$))*"
#: Comments, whitespace and a ``/*!50003`` executable-comment opener.
_LEAD = r"\A" + _SKIP + r"(?:/\*M?![0-9]*" + _SKIP + r")?"
_CREATE_RE = re.compile(_LEAD + r"create\b", re.IGNORECASE | re.DOTALL)
_DROP_RE = re.compile(_LEAD + r"drop\b" + _SKIP + r"function\b", re.IGNORECASE | re.DOTALL)
_CREATE_B = re.compile(_CREATE_RE.pattern.encode(), re.IGNORECASE | re.DOTALL)
_DROP_B = re.compile(_DROP_RE.pattern.encode(), re.IGNORECASE | re.DOTALL)


def looks_like_ml_ddl(sql: str | bytes) -> bool:
    """Whether ``sql`` may be ML DDL: CREATE ... ALIAS, or DROP FUNCTION. Costs
    microseconds; false positives only send a statement to :func:`parse_ml_ddl`.

    >>> looks_like_ml_ddl(b"/* x */ create function f(a int) returns int alias ...")
    True
    >>> looks_like_ml_ddl("drop  function f"), looks_like_ml_ddl("SELECT 'alias'")
    (True, False)
    """
    if isinstance(sql, bytes):
        if _CREATE_B.match(sql):
            return b"alias" in sql.lower()
        return _DROP_B.match(sql) is not None
    if _CREATE_RE.match(sql):
        return "alias" in sql.lower()
    return _DROP_RE.match(sql) is not None


# --- scanner ---------------------------------------------------------------------------

TokKind = Literal["word", "ident", "string", "number", "punct", "end", "error"]


@dataclass(frozen=True)
class _Tok:
    """One token: ``text`` is the decoded value (quotes removed) for strings and
    identifiers; ``start`` is its offset in the statement."""

    kind: TokKind
    text: str
    start: int
    end: int


#: What the server reads as whitespace: ASCII only (U+00A0 is an identifier's character
#: to it, as every character above U+007F).
_SPACE = " \t\n\r\x0b\x0c"
_WORD_RE = re.compile(r"(?:[0-9A-Za-z_$]|[^\x00-\x7f])+")
_ESCAPES = {"0": "\0", "b": "\b", "n": "\n", "r": "\r", "t": "\t", "Z": "\x1a"}
_ESCAPES |= {"%": "\\%", "_": "\\_"}


def _quoted(sql: str, start: int, quote: str, escapes: bool = True) -> tuple[str, int] | None:
    """The value of the quoted text opening at ``start`` and the offset after it, or None
    when unterminated. Strings take backslash escapes (unless the session's sql_mode has
    NO_BACKSLASH_ESCAPES: ``escapes`` False); backticks only doubling."""
    out: list[str] = []
    i, n = start + 1, len(sql)
    while i < n:
        c = sql[i]
        if c == quote:
            if i + 1 < n and sql[i + 1] == quote:
                out.append(quote)
                i += 2
                continue
            return "".join(out), i + 1
        if c == "\\" and escapes and quote != "`" and i + 1 < n:
            out.append(_ESCAPES.get(sql[i + 1], sql[i + 1]))
            i += 2
            continue
        out.append(c)
        i += 1
    return None


def _skip_comment(sql: str, i: int) -> int | None:
    """The offset after a comment starting at ``i``, ``i`` when none starts there, or
    None for an unterminated ``/*``."""
    if sql.startswith("#", i) or dash_comment_at(sql, i):
        end = sql.find("\n", i)
        return len(sql) if end < 0 else end + 1
    if sql.startswith("/*", i) and not sql.startswith("/*!", i):
        end = sql.find("*/", i + 2)
        return None if end < 0 else end + 2
    return i


def _scan(
    sql: str, escapes: bool = True, ansi_quotes: bool = False, syntax: SqlSyntax | None = None
) -> list[_Tok]:
    """The statement's tokens, ending with an ``end`` token, or with an ``error`` token
    where a quote or comment is left open. ``/*! ... */`` executable comments count as
    their content, as in MySQL; with the session's ``syntax``, only those its server runs
    (rewriter.lexer.executable_opener: a ``/*!99999`` one is a comment), MariaDB's
    ``/*M!`` ones too. Under ANSI_QUOTES (``ansi_quotes``) double quotes delimit
    identifiers."""
    tokens: list[_Tok] = []
    i, n, in_exec = 0, len(sql), False
    while i < n:
        c = sql[i]
        if syntax is not None and not in_exec and sql.startswith(("/*!", "/*M!"), i):
            try:
                code = executable_opener(sql, i, syntax)
            except UnreadableStatement:
                tokens.append(_Tok("error", "comment", i, n))
                return tokens
            if code is not None:
                i, in_exec = code, True
                continue
            end = sql.find("*/", i + 2)
            if end < 0:
                tokens.append(_Tok("error", "comment", i, n))
                return tokens
            i = end + 2
            continue
        skipped = _skip_comment(sql, i)
        if skipped is None:
            tokens.append(_Tok("error", "comment", i, n))
            return tokens
        if c in _SPACE or skipped != i:
            i = max(skipped, i + 1)
        elif sql.startswith("/*!", i):
            i += 3
            while i < n and sql[i] in DIGITS:
                i += 1
            in_exec = True
        elif in_exec and sql.startswith("*/", i):
            i, in_exec = i + 2, False
        elif c in "'\"`":
            identifier = c == "`" or (c == '"' and ansi_quotes)
            found = _quoted(sql, i, c, escapes and not identifier)
            if found is None:
                tokens.append(_Tok("error", c, i, n))
                return tokens
            tokens.append(_Tok("ident" if identifier else "string", found[0], i, found[1]))
            i = found[1]
        elif match := _WORD_RE.match(sql, i):
            word = match.group()
            number = word.isascii() and word.isdigit()
            tokens.append(_Tok("number" if number else "word", word, i, match.end()))
            i = match.end()
        else:
            tokens.append(_Tok("punct", c, i, i + 1))
            i += 1
    end = tokens[-1].end if tokens else 0
    tokens.append(_Tok("end", "", end, end))
    return tokens
