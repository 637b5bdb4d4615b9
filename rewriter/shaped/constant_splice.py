"""A constant-call recipe on the statement's bytes: one match, one join.

A statement an application sends per request with another literal each time
(``SELECT aws_comprehend_detect_sentiment('...', 'en')``) is recognised by its shape's
matcher (rewriter.shaped.matcher) and rewritten by its recipe
(rewriter.shaped.constant_calls). Both work on the decoded text: decode the statement,
build its Shape, read each literal's value, splice the answers into a copy of the text,
encode it. Where decoding maps the bytes one to one (rewriter.charsets: surrogateescape
keeps every byte), a ConstantSplice does the same work on the bytes:

- one regular expression, the matcher's with its slots' roles folded in: an input
  string takes only what the recipe takes as it is (in a utf8mb4 session plain text,
  not empty, no quote, backslash or control character; in any other only plain ASCII),
  an input integer at most 18 digits, a max_batch_size only a positive integer. A
  statement it refuses is left to the matcher and the recipe, which decide as before;
- the rewrite as pieces of bytes to join: the shape's own text, each slot's bytes, each
  call's answer, each alias (the item's bytes, quoted as rewriter.sql_text.item_alias
  quotes them).

It serves utf8mb4 sessions (UTF-8 is self-synchronising: a byte below 0x80 is always
that ASCII character), and sessions in a single-byte character set (latin1, the C
client's default, and the like) when the shape's own text is ASCII, which every such
character set writes alike. What it gives is what the recipe gives on the decoded text,
encoded back (``tests/unit/test_constant_splice.py`` compares the two over hostile
statements in several character sets).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from rewriter.charsets import ClientCharset
from rewriter.functions import MLFunction
from rewriter.lexer import SlotKind
from rewriter.shaped.byte_holes import (
    CallEdits,
    Cutter,
    Rewriting,
    ascii_text,
    byte_pattern,
    rewrite_holes,
)
from rewriter.shaped.constant_calls import (
    INTEGER_DIGITS,
    NOT_PLAIN_CHARACTERS,
    PLAIN_ASCII_CHARACTERS,
    ConstantRecipe,
    KnownRow,
)
from rewriter.shaped.matcher import ShapeMatcher

#: A slot's pattern by its role (the quotes of a string are the shape's own text). An input
#: string is what the recipe takes as it is (constant_calls.literal_value: its UTF-8
#: checked after the match), an input integer too (digits: a sign is the shape's own
#: text), a max_batch_size a positive integer.
STRING = rb"([^'\\\x00]*)"
INTEGER = rb"([0-9]+)"
BATCH_SIZE = rb"(0*[1-9][0-9]*)"
_STRING_INPUT = b"([^" + NOT_PLAIN_CHARACTERS.encode() + b"]+)"
_ASCII_INPUT = b"([" + PLAIN_ASCII_CHARACTERS.encode() + b"]+)"
_INTEGER_INPUT = b"([0-9]{1,%d})" % INTEGER_DIGITS


@dataclass(frozen=True)
class SpliceSite:
    """One call: its function, and per input the group it is and whether an integer."""

    function: MLFunction
    inputs: tuple[tuple[int, bool], ...]

    def row(self, groups: Sequence[bytes]) -> KnownRow | None:
        """The call's key row from the match's groups (ConstantRecipe.rows); None when a
        string is not UTF-8."""
        row = []
        for group, integer in self.inputs:
            value = groups[group]
            if integer:
                value = value.lstrip(b"0") or b"0"
            elif not value.isascii() and not is_utf8(value):
                return None
            row.append(value)
        return tuple(row)


@dataclass(frozen=True)
class ConstantSplice:
    """A recipe on the bytes of a session's statements (module docstring)."""

    #: For a utf8mb4 session's statements.
    utf8: re.Pattern[bytes]
    #: For a single-byte session's, when the shape's own text is ASCII.
    single_byte: re.Pattern[bytes] | None
    sites: tuple[SpliceSite, ...]
    #: Each site's function, in the sites' order.
    functions: tuple[MLFunction, ...]
    #: The rewrite: the statement with holes for its slots, each call's answer and each
    #: alias.
    rewriting: Rewriting

    def pattern(self, charset: ClientCharset, utf8_session: bool) -> re.Pattern[bytes] | None:
        """The pattern for a session's statements (its client character set, and whether
        it is a utf8mb4 one: rewriter.shaped.constant_calls.literal_value); None when it
        cannot serve them."""
        if utf8_session:
            return self.utf8
        return self.single_byte if charset.single_byte else None

    def rows(self, found: re.Match[bytes]) -> list[KnownRow] | None:
        """Each call's key row (ConstantRecipe.rows); None when a string is not UTF-8."""
        groups = found.groups()
        rows = []
        for site in self.sites:
            row = site.row(groups)
            if row is None:
                return None
            rows.append(row)
        return rows

    def write(self, found: re.Match[bytes], answers: Sequence[bytes], codec: str) -> bytes:
        """The statement ``found`` matched with each call replaced by its answer's SQL
        text (``answers``, in the sites' order, as bytes); ``codec``: the session's
        (ClientCharset.codec)."""
        return self.rewriting.write(found.groups(), answers, codec)


def is_utf8(value: bytes) -> bool:
    """Whether ``value`` is UTF-8 (a string slot's bytes the recipe takes as they are)."""
    try:
        value.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def cutter_of(matcher: ShapeMatcher) -> Cutter:
    """A Cutter of the matcher's shape's key."""
    markers = [
        (end - length, end)
        for end, length in zip(matcher.marker_ends, matcher.marker_lengths, strict=True)
    ]
    return Cutter(matcher.key, markers, matcher.kinds)


def slot_roles(kinds: tuple[SlotKind, ...]) -> list[bytes]:
    """Each slot's pattern as the matcher takes it (a string's quotes the shape's text)."""
    return [STRING if kind == SlotKind.STRING else INTEGER for kind in kinds]


def constant_splice(recipe: ConstantRecipe, matcher: ShapeMatcher) -> ConstantSplice | None:
    """The splice of a template with both a recipe and a matcher; None when a slot's role
    is one it does not know (a max_batch_size that is not an integer slot)."""
    kinds = matcher.kinds
    roles = slot_roles(kinds)
    sites = []
    for site in recipe.sites:
        for slot in site.input_slots:
            roles[slot] = _STRING_INPUT if kinds[slot] == SlotKind.STRING else _INTEGER_INPUT
        if site.batch_slot is not None:
            if kinds[site.batch_slot] != SlotKind.INTEGER:
                return None
            roles[site.batch_slot] = BATCH_SIZE
        inputs = tuple((slot, kinds[slot] != SlotKind.STRING) for slot in site.input_slots)
        sites.append(SpliceSite(site.function, inputs))
    cut = cutter_of(matcher)
    whole = cut.between(0, len(matcher.key))
    edits: list[CallEdits] = [
        (
            site.span[0][0],
            site.span[1][0],
            tuple(tuple(at for at, _ in alias) for alias in site.aliases),
        )
        for site in recipe.sites
    ]
    rewriting = rewrite_holes(edits, cut)
    if whole is None or rewriting is None:
        return None
    utf8 = byte_pattern(whole, roles)
    single_byte = None
    if ascii_text(whole):
        ascii_roles = [_ASCII_INPUT if role == _STRING_INPUT else role for role in roles]
        single_byte = byte_pattern(whole, ascii_roles)
    functions = tuple(site.function for site in sites)
    return ConstantSplice(utf8, single_byte, tuple(sites), functions, rewriting)
