"""rewriter/shaped/matcher.py against the lexer: a statement a shape's matcher accepts
has, as the lexer reads it in the session's sql_mode, that shape's key and its slots
where the matcher puts them; and a statement of the shape with other plain literals is
accepted."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rewriter.lexer import SqlSyntax, UnreadableStatement, _Canonicalizer
from rewriter.shaped.matcher import matcher_of
from rewriter.shaped.shapes import Shape, shape_of

SYNTAXES = [
    SqlSyntax(),
    SqlSyntax(backslash_escapes=False),
    SqlSyntax(ansi_quotes=True),
    SqlSyntax(backslash_escapes=False, ansi_quotes=True),
]
#: Pieces of statement text: code, introducers, number look-alikes, every quote and
#: comment opener, and characters the server reads as an identifier's.
PIECES = st.sampled_from(
    [
        "SELECT ",
        "f(",
        ", ",
        ")",
        " FROM t WHERE id = ",
        "-",
        ".",
        "x",
        "_utf8mb4",
        "N",
        "X",
        "1e",
        "$",
        "@",
        "é",
        "\u0661",
        " ",
        "\n",
        "'",
        '"',
        "`",
        "\\",
        "#",
        "--",
        "-- ",
        "/*",
        "*/",
        "?",
        ";",
        "\x00",
    ]
)
#: Literals: plain ones, and hostile texts for a slot's place.
LITERALS = st.one_of(
    st.from_regex(r"'[a-z é\"`#*/-]{0,6}'", fullmatch=True),
    st.from_regex(r"[0-9]{1,4}", fullmatch=True),
    st.from_regex("[0-9\u0661\u0662]{1,3}", fullmatch=True),  # digits the server's or not
    st.from_regex(r"'[a\\' ,]{0,5}'", fullmatch=True),  # escapes and doubled quotes
    st.text(alphabet=st.sampled_from(list("'\"`\\\x00 a1\u0661.e-#/*")), max_size=6),
)
TEXTS = st.lists(st.one_of(PIECES, LITERALS), min_size=1, max_size=12).map("".join)
#: Statements the matcher is made for (code and plain literals): the shapes to test it on.
CODE = st.sampled_from(["SELECT ", "f(", ", ", ")", " FROM t WHERE id = ", "-", ".", "x", "é"])
PLAIN = st.one_of(
    st.from_regex(r"'[a-z é]{0,4}'", fullmatch=True), st.from_regex(r"[0-9]{1,3}", fullmatch=True)
)
PLAIN_TEXTS = st.lists(st.tuples(CODE, PLAIN), min_size=1, max_size=5).map(
    lambda pairs: "".join(code + literal for code, literal in pairs) + ")"
)


def lexer_shape(text: str, syntax: SqlSyntax) -> Shape | None:
    """The shape the lexer's states give (not read_slots' one scan); None: refused."""
    try:
        read = _Canonicalizer(text, syntax, canonical=False).run()
    except UnreadableStatement:
        return None
    return shape_of(read)


@pytest.mark.parametrize("syntax", SYNTAXES, ids=str)
@given(
    first=st.one_of(PLAIN_TEXTS, TEXTS),
    replacements=st.lists(LITERALS, max_size=8),
    other=TEXTS,
)
@settings(max_examples=400, deadline=None)
def test_what_a_matcher_accepts_the_lexer_reads_as_its_shape(
    syntax: SqlSyntax, first: str, replacements: list[str], other: str
) -> None:
    shape = lexer_shape(first, syntax)
    matcher = None if shape is None else matcher_of(shape)
    if shape is None or matcher is None:
        return
    # The same shape with other slot texts (any text), and an unrelated statement.
    parts, pos = [], 0
    for index, (start, end, _) in enumerate(shape.slots):
        parts += [
            shape.text[pos:start],
            replacements[index % len(replacements)] if replacements else shape.text[start:end],
        ]
        pos = end
    parts.append(shape.text[pos:])
    for text in ("".join(parts), other, first):
        matched = matcher.shape(text)
        if matched is None:
            continue
        read = lexer_shape(text, syntax)
        assert read is not None, text
        assert (matched.key, matched.slots, matched.growth) == (read.key, read.slots, read.growth)
        assert matched.marker_ends == read.marker_ends
    plain = all(
        re.fullmatch(r"'[^'\\\x00]*'|[0-9]+", shape.slot_text(i)) for i in range(len(shape.slots))
    )
    assert (matcher.shape(first) is not None) == plain  # its own statement, if plain


@pytest.mark.parametrize("syntax", SYNTAXES, ids=str)
@given(
    strings=st.lists(st.from_regex(r"[^'\\\x00]{0,8}", fullmatch=True), min_size=2, max_size=2),
    numbers=st.lists(st.from_regex(r"[0-9]{1,6}", fullmatch=True), min_size=2, max_size=2),
)
@settings(max_examples=150, deadline=None)
def test_a_statement_of_the_shape_with_other_plain_literals_is_accepted(
    syntax: SqlSyntax, strings: list[str], numbers: list[str]
) -> None:
    def statement(s: list[str], n: list[str]) -> str:
        return f"SELECT f('{s[0]}', 'en', {n[0]}) AS x, g('{s[1]}') FROM t WHERE id = {n[1]}"

    shape = lexer_shape(statement(["a", "b"], ["1", "2"]), syntax)
    assert shape is not None
    matcher = matcher_of(shape)
    assert matcher is not None
    text = statement(strings, numbers)
    assert matcher.shape(text) == lexer_shape(text, syntax)


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT f('a') -- c",  # a comment: sql_mode-free, but the lexer's
        'SELECT f("a")',  # a string or an identifier, by sql_mode
        "SELECT f('a') /* c */",
        "SELECT f(_utf8mb4'a', 'b')",  # a quote in the shape's own text
        "'a'",  # a slot first
    ],
)
def test_shapes_the_matcher_is_not_sure_of_have_none(sql: str) -> None:
    shape = lexer_shape(sql, SqlSyntax())
    assert shape is not None and shape.slots
    assert matcher_of(shape) is None
