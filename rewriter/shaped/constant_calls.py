"""Statements whose ML calls all take literals: their rewrite, made from the literals alone.

``SELECT aws_comprehend_detect_sentiment('I love it', 'en')``, sent with another text on
each request, has one shape (rewriter.shaped.shapes) and one plan per shape
(rewriter.shaped.plan_cache).
When every call of that plan takes plain literals, the proxy knows each call's inputs from
the statement's text, and once the answers are found (in the result cache) the statement
sent to the backend is the client's text with each call replaced by its answer and an
alias where a select item's name must be kept. A ConstantRecipe, compiled once per
template, makes exactly that text from a statement of its shape, without filling in a
plan (rewriter.shaped.plan_cache.instantiate): the statements an application sends per request
cost the proxy little more than their plain twins (proxy.ml.fastpath.constants).

What it writes is what ``MLPlan.rewrite`` writes for the plan ``instantiate`` gives
(``tests/unit/test_constant_calls.py`` compares the two over many statements); anything it
cannot know from the text alone (an input that is not a plain literal, a bad
max_batch_size) leaves the statement to that path.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from rewriter.functions import MLFunction
from rewriter.lexer import SlotKind
from rewriter.plan import Edits, add_aliases, splice
from rewriter.shaped.shapes import Shape

#: Text of a string literal the proxy may take as it is (single-quoted, or double-quoted
#: where the lexer found a string: not under ANSI_QUOTES): no quote, backslash or control
#: character (so no escape and no sql_mode changes it), in ASCII without the characters
#: swe7 reads otherwise.
#: The rules as character classes and a digit count (rewriter.shaped.constant_splice writes
#: them into its byte patterns): the ASCII a string may hold, what any string may not hold
#: (besides lone surrogates, which bytes cannot be), an integer's most digits.
PLAIN_ASCII_CHARACTERS = r"A-Za-z0-9 !#$%&()*+,\-./:;<=>?_"
NOT_PLAIN_CHARACTERS = r"'\"\\\x00-\x1f\x7f"
INTEGER_DIGITS = 18
_PLAIN_ASCII = re.compile(rf"(['\"])([{PLAIN_ASCII_CHARACTERS}]+)\1\Z")
_PLAIN_TEXT = re.compile(rf"(['\"])([^{NOT_PLAIN_CHARACTERS}\ud800-\udfff]+)\1\Z")
_BOUND_UTF8 = re.compile(r"_utf8(?:mb4|mb3)? X'((?:[0-9a-f]{2})+)'\Z")
_INTEGER = re.compile(rf"-?[0-9]{{1,{INTEGER_DIGITS}}}\Z")

#: An offset of a shape's key and the number of markers that end at or before it: in a
#: statement of the shape it is at ``offset + growth[before]`` (rewriter.shaped.shapes).
Point = tuple[int, int]
#: A key row: each input's utf8mb4 bytes (None: SQL NULL).
KnownRow = tuple[bytes | None, ...]


@dataclass(frozen=True)
class ConstantSite:
    """One call of a recipe: its function, where it stands, its inputs' slots."""

    function: MLFunction
    #: The call's start and end (its replacement's stretch).
    span: tuple[Point, Point]
    #: The select items around it whose names the rewrite keeps: the pieces of text each
    #: name is made of (rewriter.plan.CallSite).
    aliases: tuple[tuple[Point, ...], ...]
    #: Per input, the slot of the literal it is.
    input_slots: tuple[int, ...]
    #: The slot of its max_batch_size argument, if a literal.
    batch_slot: int | None


@dataclass(frozen=True)
class ConstantRecipe:
    """The rewrite of a shape's statements whose calls all take literals (module
    docstring); its sites are in the plan's order."""

    sites: tuple[ConstantSite, ...]

    def rows(self, shape: Shape, utf8_session: bool) -> list[KnownRow] | None:
        """Each call's key row, as the server would make it of the statement's literals;
        None when one is not certain from the text alone (or a max_batch_size is not a
        positive integer: the planner's path reports it)."""
        rows = []
        for site in self.sites:
            if site.batch_slot is not None and not _positive(shape.slot_text(site.batch_slot)):
                return None
            row = known_row(site.input_slots, shape, utf8_session)
            if row is None:
                return None
            rows.append(row)
        return rows

    def rewrite(self, shape: Shape, answers: Sequence[str]) -> str:
        """The statement of ``shape`` with each call replaced by its answer's SQL text
        (``answers``, in the sites' order)."""
        growth = (0, *shape.growth)
        text = shape.text
        edits: Edits = {}
        for site, answer in zip(self.sites, answers, strict=True):
            (start, before_start), (end, before_end) = site.span
            edits[(start + growth[before_start], 0, end + growth[before_end])] = answer
            add_aliases(
                edits,
                text,
                [tuple(at + growth[before] for at, before in alias) for alias in site.aliases],
            )
        return splice(text, edits)


def _positive(text: str) -> bool:
    return text.isascii() and text.isdigit() and int(text) > 0


def known_row(slots: Sequence[int | None], shape: Shape, utf8_session: bool) -> KnownRow | None:
    """A constant call's key row when the proxy knows each input's exact utf8mb4 bytes
    from its text alone, so no query needs to read them; None otherwise."""
    row = []
    for slot in slots:
        if slot is None:
            return None
        value = literal_value(shape.slot_text(slot), shape.slot_kind(slot), utf8_session)
        if value is None:
            return None
        row.append(value)
    return tuple(row)


def literal_value(text: str, kind: SlotKind, utf8_session: bool) -> bytes | None:
    """The utf8mb4 bytes the server makes of a literal, when they are certain.
    ``utf8_session``: the session's client and connection character sets are both UTF-8,
    so any plain string literal's value is its text (else only plain ASCII ones)."""
    if kind == SlotKind.STRING:
        found = (_PLAIN_TEXT if utf8_session else _PLAIN_ASCII).match(text)
        return None if found is None else found.group(2).encode("utf-8")
    if _INTEGER.match(text):  # an integer, or a parameter bound to one
        return str(int(text)).encode("ascii")
    if kind == SlotKind.PARAMETER:
        found = _BOUND_UTF8.match(text)
        if found is not None:
            value = bytes.fromhex(found.group(1))
            try:
                value.decode("utf-8")
            except UnicodeDecodeError:
                return None
            utf8mb4 = text.startswith("_utf8mb4 ")
            return value if utf8mb4 or max(value) < 0xF0 else None
    return None
