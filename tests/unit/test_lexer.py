"""rewriter.lexer: the canonical twin sqlglot reads agrees with the server's reading.

Properties over generated values, in each sql_mode: a value quoted the way the session
quotes it is one string token for sqlglot, spanning exactly the literal; what sqlglot
writes back for it, restored, is the client's literal; and nothing inside it is ever a
call. Plus the comment rules the server applies (``--`` needs a space, ``#``, executable
comments by version).
"""

from __future__ import annotations

import pytest
import sqlglot
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlglot import exp
from sqlglot.tokenizer_core import TokenType

from rewriter.lexer import (
    SqlSyntax,
    UnreadableStatement,
    _Canonicalizer,
    _plain_slots,
    read_slots,
    read_statement,
    version_number,
)
from rewriter.spans import tokenize

SYNTAXES = [
    SqlSyntax(),
    SqlSyntax(backslash_escapes=False),
    SqlSyntax(ansi_quotes=True),
    SqlSyntax(backslash_escapes=False, ansi_quotes=True),
]
#: Characters that make quoting hard, plus ordinary ones.
HARD = st.text(alphabet=st.sampled_from(list("'\"`\\\n\r\t\x00\x1a%_-#/*?;( )ab縗é")), max_size=12)


def quote(value: str, syntax: SqlSyntax, delimiter: str = "'") -> str:
    """How a client library quotes ``value`` for the session."""
    if not syntax.backslash_escapes:
        return delimiter + value.replace(delimiter, delimiter * 2) + delimiter
    escapes = {"\\": "\\\\", "'": "\\'", '"': '\\"', "\0": "\\0", "\n": "\\n", "\r": "\\r"}
    return delimiter + "".join(escapes.get(c, c) for c in value) + delimiter


@pytest.mark.parametrize("syntax", SYNTAXES, ids=str)
@given(value=HARD)
@settings(max_examples=150, deadline=None)
def test_a_quoted_value_is_one_string_and_comes_back_as_written(
    syntax: SqlSyntax, value: str
) -> None:
    literal = quote(value, syntax)
    sql = f"SELECT f(a) FROM t WHERE b = {literal} AND c = 1"
    read = read_statement(sql, syntax)
    assert len(read.canonical) == len(sql)
    start = sql.index(literal)
    strings = [t for t in tokenize(read.canonical) if t.token_type == TokenType.STRING]
    assert [(t.start, t.end + 1) for t in strings] == [(start, start + len(literal))]
    condition = sqlglot.parse_one(read.canonical, read="mysql").find(exp.EQ)
    assert condition is not None
    written = read.restore(condition.sql(dialect="mysql"))
    assert written == f"b = {literal}"


@pytest.mark.parametrize("syntax", SYNTAXES, ids=str)
@given(value=HARD)
@settings(max_examples=100, deadline=None)
def test_double_quotes_follow_ansi_quotes(syntax: SqlSyntax, value: str) -> None:
    """Without ANSI_QUOTES "..." is a string, with it an identifier; sqlglot sees the same
    boundaries either way."""
    if syntax.ansi_quotes:
        literal = '"' + value.replace('"', '""') + '"'
        kind = TokenType.IDENTIFIER
    else:
        literal = quote(value, syntax, '"')
        kind = TokenType.STRING
    sql = f"SELECT {literal} FROM t"
    read = read_statement(sql, syntax)
    tokens = tokenize(read.canonical)
    assert [t.token_type for t in tokens] == [TokenType.SELECT, kind, TokenType.FROM, TokenType.VAR]
    assert (tokens[1].start, tokens[1].end + 1) == (7, 7 + len(literal))


@pytest.mark.parametrize(
    ("sql", "code"),
    [
        ("SELECT 1--1", "SELECT 1--1"),
        ("SELECT 1 -- f(x)", "SELECT 1"),
        ("SELECT 1 --\tf(x)\n, 2", "SELECT 1 , 2"),
        ("SELECT 1 # f(x)\n, 2", "SELECT 1 , 2"),
        ("SELECT 1 /* f(x) */", "SELECT 1"),
        ("SELECT 1 /*+ f(x) */", "SELECT 1"),
        ("SELECT 1 /*!50000 + f(x) */", "SELECT 1 + f(x)"),
        ("SELECT 1 /*! + f(x) */", "SELECT 1 + f(x)"),
        ("SELECT 1 /*!999999 + f(x) */", "SELECT 1"),
        ("SELECT 1 /*M!100000 + f(x) */", "SELECT 1 + f(x)"),
        ("SELECT 1 /*!50000 + '*/' */", "SELECT 1 + '*/'"),
        # MariaDB skips MySQL 5.7+'s comments, not its own (tests/integration/
        # test_plan_on_mariadb.py checks these against the server).
        ("SELECT 1 /*!50699 + f(x) */", "SELECT 1 + f(x)"),
        ("SELECT 1 /*!50700 + f(x) */", "SELECT 1"),
        ("SELECT 1 /*!99999 + f(x) */", "SELECT 1"),
        ("SELECT 1 /*M!50700 + f(x) */", "SELECT 1 + f(x)"),
        # Only ASCII digits date a comment: this one runs, its "digits" an identifier.
        (
            "SELECT 1 /*!\u0665\u0660\u0660\u0660\u0660 + f(x) */",
            "SELECT 1 \u0665\u0660\u0660\u0660\u0660 + f(x)",
        ),
    ],
)
def test_comments_as_the_server_reads_them(sql: str, code: str) -> None:
    """Comments are blanked (same length), executable comments the server runs keep
    their code."""
    canonical = read_statement(sql, SqlSyntax(server_version=101109, mariadb=True)).canonical
    assert len(canonical) == len(sql)
    assert canonical.split() == code.split()


def test_mysql_reads_mariadb_only_comments_as_comments() -> None:
    mysql = SqlSyntax(server_version=80036, mariadb=False)
    assert read_statement("SELECT 1 /*M! + f(x) */", mysql).canonical.strip() == "SELECT 1"


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 'open",
        "SELECT `open",
        "SELECT 1 /* open",
        "SELECT 1 /*!50000 + 1",
        "SELECT 1 \x00 + f(x)",
        "SELECT 1 # \x00\n + f(x)",
        "SELECT 1 /*!123 + 1 */",
        "SELECT 1 /*!50000 /* nested */ + 1 */",
    ],
)
def test_what_cannot_be_read_exactly_is_refused(sql: str) -> None:
    with pytest.raises(UnreadableStatement):
        read_statement(sql, SqlSyntax(server_version=101109))


def test_executable_comment_with_a_version_needs_the_servers_version() -> None:
    with pytest.raises(UnreadableStatement):
        read_statement("SELECT 1 /*!50000 + 1 */", SqlSyntax(server_version=None))


def test_session_syntax() -> None:
    syntax = SqlSyntax.from_session("ANSI,NO_BACKSLASH_ESCAPES", "10.11.9-MariaDB-log")
    assert syntax == SqlSyntax(False, True, 101109, True, pipes_as_concat=True)  # ANSI has it
    assert SqlSyntax.from_session("", "8.0.36") == SqlSyntax(True, False, 80036, False)
    assert version_number("11.4.2-MariaDB") == 110402


#: Text around literals: quotes, digits, what may sit next to an integer or introduce a
#: string, comment openers and the characters only the lexer's states read right.
SLOTTY = st.text(alphabet=st.sampled_from(list("'' 1234x_.@$-/*#\"`\\\x00é縗N(),=")), max_size=30)


@pytest.mark.parametrize("syntax", SYNTAXES, ids=str)
@given(text=SLOTTY)
@settings(max_examples=400, deadline=None)
def test_the_one_scan_finds_the_slots_the_lexer_finds(syntax: SqlSyntax, text: str) -> None:
    """read_slots' one-scan path for text without double quotes, backticks, backslashes
    or comments gives the slots the lexer's states give, and refuses what they refuse."""
    sql = f"SELECT f({text}) FROM t WHERE a = {text}"
    try:
        expected = _Canonicalizer(sql, syntax, canonical=False).run().slots
    except UnreadableStatement:
        expected = None
    one_scan = _plain_slots(sql)
    if one_scan is not None:
        assert one_scan == expected
    if expected is None:
        with pytest.raises(UnreadableStatement):
            read_slots(sql, syntax)
    else:
        assert read_slots(sql, syntax).slots == expected


def test_the_one_scan_serves_plain_statements() -> None:
    sql = "SELECT f('it''s', 'en', 12), _utf8mb4'x', N'y', 1.5, t1.c FROM t WHERE id = -7"
    slots = _plain_slots(sql)
    assert slots is not None
    assert [sql[a:b] for a, b, _ in slots] == ["'it''s'", "'en'", "12", "7"]
    assert _plain_slots("SELECT 'a' -- b") is None  # a comment: the lexer's states
    assert _plain_slots("SELECT 'a") is None  # a string without its end
