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
from typing import TypeVar

from rewriter.charsets import ClientCharset
from rewriter.functions import MLFunction
from rewriter.lexer import SlotKind
from rewriter.shaped.constant_calls import (
    INTEGER_DIGITS,
    NOT_PLAIN_CHARACTERS,
    PLAIN_ASCII_CHARACTERS,
    ConstantRecipe,
    KnownRow,
)
from rewriter.shaped.matcher import ShapeMatcher
from rewriter.sql_text import MAX_ALIAS, item_alias

#: A slot's pattern by its role (the quotes of a string are the shape's own text). An input
#: string is what the recipe takes as it is (constant_calls.literal_value: its UTF-8
#: checked after the match), an input integer too (digits: a sign is the shape's own
#: text), a max_batch_size a positive integer.
_STRING = rb"([^'\\\x00]*)"
_STRING_INPUT = b"([^" + NOT_PLAIN_CHARACTERS.encode() + b"]+)"
_ASCII_INPUT = b"([" + PLAIN_ASCII_CHARACTERS.encode() + b"]+)"
_INTEGER = rb"([0-9]+)"
_INTEGER_INPUT = b"([0-9]{1,%d})" % INTEGER_DIGITS
_BATCH_SIZE = rb"(0*[1-9][0-9]*)"
#: What an item's bytes may start and end with to be an alias as they are (no space for
#: ``strip`` to take, no backtick), and what they may not hold: a backtick, and a 4-byte
#: UTF-8 sequence's lead byte (or in another character set anything but ASCII).
_PLAIN_END = frozenset(range(0x21, 0x7F)) - {0x60}
_UNSAFE_UTF8 = re.compile(b"[`\xf0-\xff]")
_UNSAFE_OTHER = re.compile(b"[`\x80-\xff]")


@dataclass(frozen=True)
class _Answer:
    """Where a call's answer goes: the call's index among the sites."""

    site: int


#: A piece of an item's name: the shape's own text (bytes) or a slot's group (its number).
_ItemPiece = bytes | int


@dataclass(frozen=True)
class _AliasOf:
    """Where an item's alias goes, and the pieces its name is made of."""

    item: tuple[_ItemPiece, ...]


_Piece = _ItemPiece | _Answer | _AliasOf


@dataclass(frozen=True)
class _Holes:
    """Bytes with holes for slots' groups: the shape's own text at each of its places,
    ``b""`` where a group goes; made once, filled in with one copy and one join."""

    fixed: tuple[bytes, ...]
    #: Per hole: its place and the group that fills it.
    groups: tuple[tuple[int, int], ...]

    def filled(self, groups: Sequence[bytes]) -> list[bytes]:
        out = list(self.fixed)
        for at, group in self.groups:
            out[at] = groups[group]
        return out


@dataclass(frozen=True)
class _Alias:
    """An item's alias: its name's bytes with holes, and whether they start and end with
    a character ``strip`` keeps (the shape's own, or a slot's digits)."""

    item: _Holes
    plain_ends: bool

    def written(self, groups: Sequence[bytes], codec: str) -> bytes:
        """What rewriter.plan.add_aliases writes after the item, in bytes: the item's
        bytes quoted as they are when item_alias would change nothing (at most
        MAX_ALIAS bytes, so characters; nothing to strip; no backtick to double; no
        4-byte UTF-8 sequence to make a '?', and only ASCII in another character set)."""
        name = b"".join(self.item.filled(groups))
        unsafe = _UNSAFE_UTF8 if codec == "utf-8" else _UNSAFE_OTHER
        if self.plain_ends and len(name) <= MAX_ALIAS and unsafe.search(name) is None:
            return b" AS `" + name + b"`"
        text = name.decode(codec, "surrogateescape")
        return (" AS " + item_alias(text)).encode(codec, "surrogateescape")


@dataclass(frozen=True)
class SpliceSite:
    """One call: its function, and per input the group it is and whether an integer."""

    function: MLFunction
    inputs: tuple[tuple[int, bool], ...]


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
    #: The rewrite: the statement with holes for its slots, and where each call's
    #: answer and each alias goes.
    text: _Holes
    answers: tuple[tuple[int, int], ...]
    aliases: tuple[tuple[int, _Alias], ...]

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
            row = []
            for group, integer in site.inputs:
                value = groups[group]
                if integer:
                    value = value.lstrip(b"0") or b"0"
                elif not value.isascii() and not _utf8(value):
                    return None
                row.append(value)
            rows.append(tuple(row))
        return rows

    def write(self, found: re.Match[bytes], answers: Sequence[bytes], codec: str) -> bytes:
        """The statement ``found`` matched with each call replaced by its answer's SQL
        text (``answers``, in the sites' order, as bytes); ``codec``: the session's
        (ClientCharset.codec)."""
        groups = found.groups()
        out = self.text.filled(groups)
        for at, site in self.answers:
            out[at] = answers[site]
        for at, alias in self.aliases:
            out[at] = alias.written(groups, codec)
        return b"".join(out)


def _utf8(value: bytes) -> bool:
    try:
        value.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def constant_splice(recipe: ConstantRecipe, matcher: ShapeMatcher) -> ConstantSplice | None:
    """The splice of a template with both a recipe and a matcher; None when a slot's role
    is one it does not know (a max_batch_size that is not an integer slot)."""
    kinds = matcher.kinds
    roles = [_STRING if kind == SlotKind.STRING else _INTEGER for kind in kinds]
    sites = []
    for site in recipe.sites:
        for slot in site.input_slots:
            roles[slot] = _STRING_INPUT if kinds[slot] == SlotKind.STRING else _INTEGER_INPUT
        if site.batch_slot is not None:
            if kinds[site.batch_slot] != SlotKind.INTEGER:
                return None
            roles[site.batch_slot] = _BATCH_SIZE
        inputs = tuple((slot, kinds[slot] != SlotKind.STRING) for slot in site.input_slots)
        sites.append(SpliceSite(site.function, inputs))
    markers = [
        (end - length, end)
        for end, length in zip(matcher.marker_ends, matcher.marker_lengths, strict=True)
    ]
    cut = _Cutter(matcher.key, markers, kinds)
    whole = cut.between(0, len(matcher.key))
    pieces = _rewrite_pieces(recipe, cut)
    if whole is None or pieces is None:
        return None
    utf8 = _pattern(whole, roles)
    single_byte = None
    if all(piece.isascii() for piece in whole if isinstance(piece, bytes)):
        ascii_roles = [_ASCII_INPUT if role == _STRING_INPUT else role for role in roles]
        single_byte = _pattern(whole, ascii_roles)
    text, answers, aliases = _holes(pieces)
    functions = tuple(site.function for site in sites)
    return ConstantSplice(utf8, single_byte, tuple(sites), functions, text, answers, aliases)


def _holes(
    pieces: Sequence[_Piece],
) -> tuple[_Holes, tuple[tuple[int, int], ...], tuple[tuple[int, _Alias], ...]]:
    """The rewrite's pieces as bytes with holes: for slots, answers and aliases."""
    fixed: list[bytes] = []
    groups, answers, aliases = [], [], []
    for piece in pieces:
        at = len(fixed)
        fixed.append(piece if isinstance(piece, bytes) else b"")
        if isinstance(piece, int):
            groups.append((at, piece))
        elif isinstance(piece, _Answer):
            answers.append((at, piece.site))
        elif isinstance(piece, _AliasOf):
            item, _, _ = _holes(piece.item)
            aliases.append((at, _Alias(item, _plain_ends(piece.item))))
    return _Holes(tuple(fixed), tuple(groups)), tuple(answers), tuple(aliases)


def _plain_ends(item: Sequence[_ItemPiece]) -> bool:
    """Whether an item starts and ends with a character ``strip`` keeps, not a backtick:
    its own text's, or a slot's (an integer's digits: a string's quotes are the shape's)."""
    first, last = item[0], item[-1]
    return (not isinstance(first, bytes) or first[0] in _PLAIN_END) and (
        not isinstance(last, bytes) or last[-1] in _PLAIN_END
    )


def _pattern(whole: Sequence[_ItemPiece], roles: Sequence[bytes]) -> re.Pattern[bytes]:
    """The statement's pieces as a pattern: its own text as it is, each slot by its role."""
    pattern = b"".join(
        re.escape(piece) if isinstance(piece, bytes) else roles[piece] for piece in whole
    )
    return re.compile(pattern, re.DOTALL)


def _rewrite_pieces(recipe: ConstantRecipe, cut: _Cutter) -> tuple[_Piece, ...] | None:
    """ConstantRecipe.rewrite in the key's offsets: the same edits, in the same order."""
    edits: dict[tuple[int, int, int], _Piece] = {}
    for index, site in enumerate(recipe.sites):
        (start, _), (end, _) = site.span
        edits[(start, 0, end)] = _Answer(index)
        for alias in site.aliases:
            bounds = [at for at, _ in alias]
            item: list[_ItemPiece] = []
            for a, b in zip(bounds[::2], bounds[1::2], strict=True):
                between = cut.between(a, b)
                if between is None:
                    return None
                item += between
            edits[(bounds[-1], 1, bounds[-1])] = _AliasOf(tuple(_merged(item)))
    pieces: list[_Piece] = []
    pos = 0
    for (start, _, end), piece in sorted(edits.items()):
        between = cut.between(pos, start)
        if between is None:
            return None
        pieces += [*between, piece]
        pos = end
    rest = cut.between(pos, len(cut.key))
    if rest is None:
        return None
    return tuple(_merged([*pieces, *rest]))


class _Cutter:
    """Stretches of a shape's key as pieces: its own text (as UTF-8 bytes) and slots (a
    string's quotes are the shape's text: its group holds what is between them)."""

    def __init__(
        self, key: str, markers: Sequence[tuple[int, int]], kinds: Sequence[SlotKind]
    ) -> None:
        self.key, self.markers, self.kinds = key, markers, kinds

    def between(self, start: int, end: int) -> list[_ItemPiece] | None:
        """None when ``start`` or ``end`` falls inside a marker."""
        pieces: list[_ItemPiece] = []
        pos = start
        for slot, (a, b) in enumerate(self.markers):
            if b <= start or a >= end:
                continue
            if a < start or b > end:
                return None
            pieces.append(self._bytes(pos, a))
            pieces += [b"'", slot, b"'"] if self.kinds[slot] == SlotKind.STRING else [slot]
            pos = b
        pieces.append(self._bytes(pos, end))
        return [piece for piece in pieces if piece != b""]

    def _bytes(self, start: int, end: int) -> bytes:
        return self.key[start:end].encode("utf-8", "surrogateescape")


_P = TypeVar("_P", _ItemPiece, _Piece)


def _merged(pieces: Sequence[_P]) -> list[_P]:
    """Adjacent pieces of the shape's own text as one."""
    merged: list[_P] = []
    for piece in pieces:
        if isinstance(piece, bytes) and merged and isinstance(merged[-1], bytes):
            merged[-1] = merged[-1] + piece
        else:
            merged.append(piece)
    return merged
