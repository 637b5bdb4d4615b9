"""rewriter.shaped.constant_splice against the text path it stands for.

The oracle is a shape's matcher and recipe on the decoded statement (what a statement goes
through without a splice): for statements of a shape with hostile literals (quotes of
every kind, backslashes, control characters, backticks, spaces at the ends, characters
beyond the BMP, bytes that are not UTF-8, long texts), in a utf8mb4 session and in
single-byte ones, a splice that matches must give the recipe's key rows and, for any
answers, the recipe's rewrite encoded back; and whenever the recipe would answer, the
splice must match. In a session it cannot serve, it has no pattern.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rewriter.charsets import client_charset
from rewriter.functions import BUILTINS
from rewriter.lexer import SqlSyntax, read_slots
from rewriter.shaped.plan_cache import PlanCache, Template, template_of
from rewriter.shaped.shapes import shape_of

S = "aws_comprehend_detect_sentiment"
C = "aws_comprehend_detect_sentiment_confidence"
SYNTAXES = [SqlSyntax(), SqlSyntax(backslash_escapes=False, ansi_quotes=True)]
#: Client character sets, and whether the session is a utf8mb4 one: the splice serves the
#: first four (its own text ASCII for the single-byte ones), not the last two.
SESSIONS = [
    ("utf8mb4", True),
    ("latin1", False),
    ("koi8r", False),
    ("swe7", False),
    ("utf8mb3", False),
    ("ujis", False),
]
#: Statements in plain code (the matcher's shapes) with holes: {s} a string's bytes between
#: single quotes, {n} an integer's digits.
FORMS = [
    f"SELECT {S}('{{s}}', '{{s}}')",
    f"SELECT {S}('{{s}}', 'en'), {C}('{{s}}', 'en') AS conf, {{n}} + 1",
    f"SELECT CONCAT({S}('{{s}}', 'en'), '{{s}}', {C}('{{s}}', '{{s}}')) FROM t WHERE id = {{n}}",
    f"SELECT {S}('{{s}}', 'en', {{n}}) FROM dual WHERE {{n}} > 0",
    f"INSERT INTO t (a, b) VALUES ({{n}}, {S}('{{s}}', 'en'))",
    f"SELECT UPPER({S}('{{s}}', 'en')), {S}('{{s}}', 'en') AS x, '{{s}}'",
    f"SELECT LENGTH({S}('{{s}}', 'en')) + {{n}} AS n, {S}('{{s}}', 'en') FROM tablé",
    f"SELECT {S}('{{s}}','{{s}}')+{S}('{{s}}','{{s}}')",
    f"SELECT {S}({{n}}, 'en'), {C}({{n}}, 'en')",
    f"SELECT {S}({{n}}, '{{s}}')",
    # Unaliased items after whitespace (the alias strips what the column's name does)
    f"SELECT {{n}},\n\t{S}('{{s}}', 'en') ,\r{S}('{{s}}', 'en')\x0c",
]
#: A string's bytes: plain text, and what each rule is about.
PIECES = st.sampled_from(
    [
        b"a",
        b"I love it",
        b" ",
        b"\t",
        b'"',
        b"`",
        b"``",
        b"\\",
        b"''",
        b"\x00",
        b"\x1f",
        b"\x7f",
        "é".encode(),
        "\u2028".encode(),
        "\U0001f600".encode(),
        b"\xff",
        b"\xc3",
        b"\xed\xa0\x80",  # an encoded surrogate
        b"x" * 120,
    ]
)
STRINGS = st.lists(PIECES, max_size=6).map(b"".join)
NUMBERS = st.one_of(
    st.from_regex(rb"[0-9]{1,3}", fullmatch=True),
    st.from_regex(rb"0[0-9]{0,3}", fullmatch=True),
    st.from_regex(rb"[0-9]{17,20}", fullmatch=True),
    st.sampled_from([b"-1", b"1.5", b"\xd9\xa1"]),  # a sign, a decimal, Arabic-Indic one
)


@st.composite
def statement(draw: st.DrawFn, form: str, strings: st.SearchStrategy[bytes] = STRINGS) -> bytes:
    """``form`` with each hole filled with drawn bytes (a string's from ``strings``)."""
    parts = form.encode().split(b"{")
    out = [parts[0]]
    for part in parts[1:]:
        hole, rest = part[:1], part[2:]
        out += [draw(strings) if hole == b"s" else draw(NUMBERS), rest]
    return b"".join(out)


def template(form: str, syntax: SqlSyntax) -> Template:
    sql = form.replace("{s}", "a").replace("{n}", "1")
    shape = shape_of(read_slots(sql, syntax))
    assert shape is not None
    entry = template_of(shape, BUILTINS, syntax, PlanCache(), ())
    assert isinstance(entry, Template)
    return entry


@pytest.mark.parametrize("session", SESSIONS, ids=[name for name, _ in SESSIONS])
@pytest.mark.parametrize("syntax", SYNTAXES, ids=str)
@pytest.mark.parametrize("form", FORMS)
@given(data=st.data())
@settings(max_examples=40, deadline=None)
def test_a_splice_gives_what_the_matcher_and_the_recipe_give(
    form: str, syntax: SqlSyntax, session: tuple[str, bool], data: st.DataObject
) -> None:
    entry = template(form, syntax)
    splice, matcher, recipe = entry.splice, entry.matcher, entry.constant
    assert splice is not None and matcher is not None and recipe is not None
    charset, utf8 = client_charset(session[0]), session[1]
    pattern = splice.pattern(charset, utf8)
    if not utf8 and (not charset.single_byte or not form.isascii()):
        assert pattern is None
        return
    assert pattern is not None
    sql = data.draw(statement(form))
    text = sql.decode(charset.codec, "surrogateescape")
    shape = matcher.shape(text)
    rows = None if shape is None else recipe.rows(shape, utf8)
    found = pattern.fullmatch(sql)
    if found is None:
        assert rows is None, f"the recipe answers {sql!r}, the splice does not match it"
        return
    assert shape is not None, f"the splice matches {sql!r}, the matcher does not"
    assert splice.rows(found) == rows
    answers = [f"'answer {i}'" for i in range(len(recipe.sites))]
    expected = recipe.rewrite(shape, answers).encode(charset.codec, "surrogateescape")
    written = splice.write(found, [a.encode() for a in answers], charset.codec)
    assert written == expected


def test_plain_statements_are_spliced() -> None:
    """The property above holds trivially if nothing matches: plain ones must."""
    entry = template(FORMS[5], SqlSyntax())
    assert entry.splice is not None
    sql = f"SELECT UPPER({S}('I love it', 'en')), {S}('é', 'en') AS x, 'z'".encode()
    pattern = entry.splice.pattern(client_charset("utf8mb4"), True)
    assert pattern is not None
    found = pattern.fullmatch(sql)
    assert found is not None
    assert entry.splice.rows(found) == [(b"I love it", b"en"), ("é".encode(), b"en")]
