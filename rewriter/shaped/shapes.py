"""A statement's shape: its text with every literal and comment replaced by a marker.

An application that calls a model per request sends the same statement over and over
with other values (``... WHERE id = 7``, ``... WHERE id = 8``). Those statements have one
shape, and one plan fits them all once it is made from the shape: the plan is made once
per shape (rewriter.shaped.plan_cache) and filled in with each statement's own literals.

The slots come from the pass that reads the statement as the server does
(rewriter.lexer): string literals (not introduced ones such as ``_utf8mb4'x'`` or
``X'41'``), standalone integers, comments that are not executable, and for a prepared
statement's text its ``?`` parameters. In the shape each becomes a marker of its kind that
sqlglot reads as a literal and writes back as it is, so every text a plan holds (its key
queries) comes with markers that each statement's own text replaces:

- a string: ``'`` + U+DC00 + its number + U+DC01 + ``'`` (lone low surrogates below
  U+DC80, which decoded statement text never holds: surrogateescape gives U+DC80-U+DCFF);
- an integer or a parameter: the 27-digit number ``10**26 + its number``;
- a comment: one space.

The key of the plan cache is the shape's text: the client's own characters around the
markers, so two statements with one key are read alike in one sql_mode.

>>> from rewriter.lexer import SqlSyntax, read_statement
>>> sql = "SELECT f(txt, 'en') FROM t WHERE id = 7 /* req 12 */"
>>> shape = shape_of(read_statement(sql, SqlSyntax()))
>>> shape.key.replace(STRING_OPEN, "<").replace(STRING_CLOSE, ">")
"SELECT f(txt, '<0>') FROM t WHERE id = 100000000000000000000000001  "
>>> [shape.slot_text(k) for k in range(3)]
["'en'", '7', '/* req 12 */']
>>> shape.client_offset(shape.key.index(" FROM")), sql.index(" FROM")
(19, 19)
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass

from rewriter.lexer import ReadStatement, Slot, SlotKind

#: Around a string marker's number.
STRING_OPEN = "\udc00"
STRING_CLOSE = "\udc01"
#: An integer (or parameter) marker is this plus its slot's number.
NUMBER_BASE = 10**26
#: The most slots a shape may have (a statement with more is planned as it is).
MAX_SLOTS = 100_000
#: Every marker in text a plan holds; group 1 a string's slot, group 2 a number's value.
MARKERS = re.compile(
    f"'{STRING_OPEN}([0-9]+){STRING_CLOSE}'|(?<![\\w.])(1000000000000000000000[0-9]{{5}})(?![\\w.])"
)
#: What is left of a marker that is not whole (sqlglot wrote it otherwise).
MARKER_RESIDUE = re.compile(f"[{STRING_OPEN}{STRING_CLOSE}]|100000000000000000000")


def marker(index: int, kind: SlotKind) -> str:
    """The text standing for slot ``index`` in a shape."""
    if kind == SlotKind.STRING:
        return f"'{STRING_OPEN}{index}{STRING_CLOSE}'"
    if kind == SlotKind.COMMENT:
        return " "
    return str(NUMBER_BASE + index)


def number_slot(value: int) -> int | None:
    """The slot a number marker's value stands for; None for any other number."""
    index = value - NUMBER_BASE
    return index if 0 <= index < MAX_SLOTS else None


@dataclass(frozen=True)
class Shape:
    """A statement (``text``), its shape (``key``) and where each slot stands in both."""

    text: str
    key: str
    slots: tuple[Slot, ...]
    #: Per slot: the end of its marker in ``key``.
    marker_ends: tuple[int, ...]
    #: Per slot: how much longer the text is than the key up to the end of that slot.
    growth: tuple[int, ...]

    def slot_text(self, index: int) -> str:
        start, end, _ = self.slots[index]
        return self.text[start:end]

    def slot_kind(self, index: int) -> SlotKind:
        return self.slots[index][2]

    def client_offset(self, key_offset: int) -> int:
        """The offset in ``text`` of an offset of ``key`` that is not inside a marker."""
        before = bisect.bisect_right(self.marker_ends, key_offset)
        return key_offset + (self.growth[before - 1] if before else 0)

    def with_slot_texts(self, texts: dict[int, str]) -> Shape:
        """The statement of this shape whose slots ``texts`` has are those texts (a
        prepared statement's parameters bound to their literals)."""
        if not texts:
            return self
        parts, slots, growth = [], [], []
        pos = shift = 0
        for index, (start, end, kind) in enumerate(self.slots):
            value = texts.get(index, self.text[start:end])
            parts += [self.text[pos:start], value]
            slots.append((start + shift, start + shift + len(value), kind))
            shift += len(value) - (end - start)
            growth.append(self.growth[index] + shift)
            pos = end
        parts.append(self.text[pos:])
        return Shape("".join(parts), self.key, tuple(slots), self.marker_ends, tuple(growth))


def shape_of(read: ReadStatement) -> Shape | None:
    """The shape of a statement read by rewriter.lexer.read_statement; None for one with
    more than MAX_SLOTS slots."""
    if len(read.slots) > MAX_SLOTS:
        return None
    text = read.text
    parts: list[str] = []
    ends: list[int] = []
    growth: list[int] = []
    pos = length = grown = 0
    for index, (start, end, kind) in enumerate(read.slots):
        mark = marker(index, kind)
        parts += [text[pos:start], mark]
        length += start - pos + len(mark)
        grown += end - start - len(mark)
        ends.append(length)
        growth.append(grown)
        pos = end
    parts.append(text[pos:])
    return Shape(text, "".join(parts), tuple(read.slots), tuple(ends), tuple(growth))
