"""A shape's statements recognised by one regular expression, without the lexer.

An application that calls a model per request sends one statement over and over with
another literal each time (``SELECT aws_comprehend_detect_sentiment('...', 'en')``).
Reading each for its shape (rewriter.lexer, rewriter.shaped.shapes) is most of what such a
statement costs the proxy once its answer is cached. A ShapeMatcher, compiled once per
template, recognises the statements of one shape in one ``fullmatch``: the shape's own
text between its slots, verbatim, and at each slot a literal of the slot's kind.

It is made only for shapes whose text between slots is plain code: no quote of any kind,
no backslash, no comment (no ``#``, ``--``, ``/*``), no NUL, no text before the first
slot, no two slots side by side. Then what a slot's pattern takes is exactly what the
lexer reads there, in every sql_mode:

- a string slot is ``'`` + anything but a quote, a backslash or a NUL + ``'``. Within
  single quotes only those three mean something to the server's lexer (a doubled quote
  or an escape, which sql_mode decides: those statements are left to the lexer), and the
  text after the closing quote is the shape's, which never starts with a quote;
- an integer slot is ASCII digits. Whether the lexer reads digits as an integer depends
  on the characters around them only, and those are the shape's own.

So a statement the matcher accepts has the shape's key and slots, which
``tests/unit/test_shape_matcher.py`` checks against the lexer over hostile text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rewriter.lexer import SlotKind
from rewriter.shaped.shapes import Shape, marker

#: The longest statement text a matcher is made for: statements sent per request are short,
#: and the ``re`` module keeps its last 512 compiled patterns beside the plan cache's.
MAX_TEXT = 2048
#: Code the server reads alike in every sql_mode and version: none of these in it.
_NOT_PLAIN_CODE = re.compile(r"['\"`\\#\x00]|--|/\*")
_SLOT_PATTERNS = {SlotKind.STRING: r"('[^'\\\x00]*')", SlotKind.INTEGER: r"([0-9]+)"}


@dataclass(frozen=True)
class ShapeMatcher:
    """Recognises the statements of one shape (module docstring)."""

    pattern: re.Pattern[str]
    key: str
    kinds: tuple[SlotKind, ...]
    marker_lengths: tuple[int, ...]
    marker_ends: tuple[int, ...]

    def shape(self, text: str) -> Shape | None:
        """``text``'s shape, when it is a statement of this one; None otherwise."""
        found = self.pattern.fullmatch(text)
        if found is None:
            return None
        slots = []
        growth = []
        grown = 0
        for index, kind in enumerate(self.kinds):
            start, end = found.span(index + 1)
            slots.append((start, end, kind))
            grown += end - start - self.marker_lengths[index]
            growth.append(grown)
        return Shape(text, self.key, tuple(slots), self.marker_ends, tuple(growth))


def matcher_of(shape: Shape) -> ShapeMatcher | None:
    """The matcher of ``shape``'s statements; None for a shape it cannot be sure of
    (module docstring), or longer than MAX_TEXT."""
    if len(shape.text) > MAX_TEXT:
        return None
    parts: list[str] = []
    pos = 0
    for start, end, kind in shape.slots:
        between = shape.text[pos:start]
        if kind not in _SLOT_PATTERNS or not between or _NOT_PLAIN_CODE.search(between):
            return None
        if kind == SlotKind.STRING and shape.text[start] != "'":
            return None  # double-quoted: a string or an identifier, by sql_mode
        parts += [re.escape(between), _SLOT_PATTERNS[kind]]
        pos = end
    rest = shape.text[pos:]
    if not shape.slots or _NOT_PLAIN_CODE.search(rest):
        return None
    parts.append(re.escape(rest))
    kinds = tuple(kind for _, _, kind in shape.slots)
    return ShapeMatcher(
        re.compile("".join(parts), re.DOTALL),
        shape.key,
        kinds,
        tuple(len(marker(index, kind)) for index, kind in enumerate(kinds)),
        shape.marker_ends,
    )
