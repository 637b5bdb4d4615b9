"""A shape's rewrite on a statement's bytes: the shape's own text with holes to fill.

The splices (rewriter.shaped.constant_splice, rewriter.shaped.point_splice) rewrite a
statement of a recent shape without decoding it: one regular expression over its bytes
gives each slot's bytes (its groups), and the rewrite is pieces of bytes made once per
template, filled in with one copy and one join. This module holds what both need:

- ``Cutter``: a stretch of the shape's key as pieces, its own text as bytes and its slots
  as group numbers (a string's quotes are the shape's text: its group holds what is
  between them);
- ``byte_pattern``: the statement's pieces as a pattern, each slot by its role;
- ``rewrite_holes``: ``MLPlan.rewrite``'s edits in the key's offsets (each call's stretch
  replaced by its answer, an alias after each select item whose name must be kept), as
  Holes with the places of the answers and the aliases.

What a splice writes this way is what the text path writes, encoded: each splice's tests
compare the two over hostile statements in several character sets.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

from rewriter.lexer import SlotKind
from rewriter.sql_text import MAX_ALIAS, item_alias

#: What an item's bytes may start and end with to be an alias as they are (no space for
#: ``strip`` to take, no backtick), and what they may not hold: a backtick, and a 4-byte
#: UTF-8 sequence's lead byte (or in another character set anything but ASCII).
_PLAIN_END = frozenset(range(0x21, 0x7F)) - {0x60}
#: The ASCII characters ``str.strip`` takes.
_ASCII_SPACE = bytes(c for c in range(0x80) if chr(c).isspace())
_UNSAFE_UTF8 = re.compile(b"[`\xf0-\xff]")
_UNSAFE_OTHER = re.compile(b"[`\x80-\xff]")

#: A piece of the shape's text: its own bytes, or a slot's group (its number).
TextPiece = bytes | int


@dataclass(frozen=True)
class Holes:
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

    def joined(self, groups: Sequence[bytes]) -> bytes:
        return b"".join(self.filled(groups)) if self.groups else self.fixed[0]


def holes_of(pieces: Sequence[TextPiece]) -> Holes:
    """Pieces of text as Holes (at least one piece: an empty text is ``b""``)."""
    fixed = [piece if isinstance(piece, bytes) else b"" for piece in pieces] or [b""]
    groups = [(at, piece) for at, piece in enumerate(pieces) if isinstance(piece, int)]
    return Holes(tuple(fixed), tuple(groups))


@dataclass(frozen=True)
class Alias:
    """An item's alias: its name's bytes with holes, and whether they start and end with
    a character ``strip`` keeps (the shape's own, or a slot's digits)."""

    item: Holes
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
class Rewriting:
    """A rewrite as bytes with holes: for the slots' groups, each call's answer (by the
    call's place among the sites) and each alias."""

    text: Holes
    answers: tuple[tuple[int, int], ...]
    aliases: tuple[tuple[int, Alias], ...]

    def write(self, groups: Sequence[bytes], answers: Sequence[bytes], codec: str) -> bytes:
        """The statement whose slots' bytes are ``groups`` with each call replaced by its
        answer's SQL text (``answers``, in the sites' order, as bytes); ``codec``: the
        session's (ClientCharset.codec)."""
        out = self.text.filled(groups)
        for at, site in self.answers:
            out[at] = answers[site]
        for at, alias in self.aliases:
            out[at] = alias.written(groups, codec)
        return b"".join(out)


#: Text to insert at an offset of the key (rewrite_holes).
Insertion = tuple[int, Sequence[TextPiece]]

#: One call's edits in the key's offsets: its stretch (start, end) and the pieces of text
#: each of its aliases' items is made of (rewriter.plan.CallSite.aliases).
CallEdits = tuple[int, int, tuple[tuple[int, ...], ...]]


@dataclass(frozen=True)
class _Answer:
    """Where a call's answer goes: the call's index among the sites."""

    site: int


@dataclass(frozen=True)
class _AliasOf:
    """Where an item's alias goes, and the pieces its name is made of."""

    item: tuple[TextPiece, ...]


_Piece = TextPiece | _Answer | _AliasOf


def rewrite_holes(
    calls: Sequence[CallEdits], cut: Cutter, inserted: Insertion | None = None
) -> Rewriting | None:
    """``MLPlan.rewrite`` of ``calls`` (in the sites' order) as a Rewriting, with
    ``inserted``'s text at its offset (after any edit there); None when an edit's bounds
    fall inside a slot."""
    pieces = _rewrite_pieces(calls, cut, inserted)
    if pieces is None:
        return None
    out: list[bytes] = []
    groups, answers, aliases = [], [], []
    for piece in pieces:
        at = len(out)
        out.append(piece if isinstance(piece, bytes) else b"")
        if isinstance(piece, int):
            groups.append((at, piece))
        elif isinstance(piece, _Answer):
            answers.append((at, piece.site))
        elif isinstance(piece, _AliasOf):
            item = _stripped(piece.item)
            aliases.append((at, Alias(holes_of(item), _plain_ends(item))))
    return Rewriting(Holes(tuple(out), tuple(groups)), tuple(answers), tuple(aliases))


def _rewrite_pieces(
    calls: Sequence[CallEdits], cut: Cutter, inserted: Insertion | None
) -> list[_Piece] | None:
    """The edits of rewriter.plan.MLPlan.rewrite, in the same order, as pieces."""
    edits: dict[tuple[int, int, int], _Piece | tuple[TextPiece, ...]] = {}
    if inserted is not None:
        at, text = inserted
        edits[(at, 2, at)] = tuple(text)
    for index, (start, end, aliases) in enumerate(calls):
        edits[(start, 0, end)] = _Answer(index)
        for bounds in aliases:
            item: list[TextPiece] = []
            for a, b in zip(bounds[::2], bounds[1::2], strict=True):
                between = cut.between(a, b)
                if between is None:
                    return None
                item += between
            edits[(bounds[-1], 1, bounds[-1])] = _AliasOf(tuple(merged(item)))
    pieces: list[_Piece] = []
    pos = 0
    for (start, _, end), piece in sorted(edits.items()):
        between = cut.between(pos, start)
        if between is None:
            return None
        pieces += [*between, *piece] if isinstance(piece, tuple) else [*between, piece]
        pos = end
    rest = cut.between(pos, len(cut.key))
    if rest is None:
        return None
    return merged([*pieces, *rest])


def _stripped(item: Sequence[TextPiece]) -> list[TextPiece]:
    """An item's pieces without the ASCII whitespace its own text starts or ends with,
    which rewriter.sql_text.column_name strips from its name: an item after a comma
    starts with a space, and would otherwise take Alias.written's slow way each time.
    (Whitespace beyond ASCII is left: the item's ends are then not plain.)"""
    pieces = list(item)
    if isinstance(pieces[0], bytes):
        pieces[0] = pieces[0].lstrip(_ASCII_SPACE)
    if isinstance(pieces[-1], bytes):
        pieces[-1] = pieces[-1].rstrip(_ASCII_SPACE)
    return [piece for piece in pieces if piece != b""] or [b""]


def _plain_ends(item: Sequence[TextPiece]) -> bool:
    """Whether an item starts and ends with a character ``strip`` keeps, not a backtick:
    its own text's, or a slot's (an integer's digits: a string's quotes are the shape's)."""
    first, last = item[0], item[-1]
    return (not isinstance(first, bytes) or first[0] in _PLAIN_END) and (
        not isinstance(last, bytes) or last[-1] in _PLAIN_END
    )


def byte_pattern(whole: Sequence[TextPiece], roles: Sequence[bytes]) -> re.Pattern[bytes]:
    """The statement's pieces as a pattern: its own text as it is, each slot by its role
    (a pattern with one group)."""
    pattern = b"".join(
        re.escape(piece) if isinstance(piece, bytes) else roles[piece] for piece in whole
    )
    return re.compile(pattern, re.DOTALL)


def ascii_text(pieces: Sequence[TextPiece]) -> bool:
    """Whether the shape's own text among ``pieces`` is ASCII (which every single-byte
    character set writes alike)."""
    return all(piece.isascii() for piece in pieces if isinstance(piece, bytes))


class Cutter:
    """Stretches of a shape's key as pieces: its own text (as UTF-8 bytes) and slots (a
    string's quotes are the shape's text: its group holds what is between them)."""

    def __init__(
        self, key: str, markers: Sequence[tuple[int, int]], kinds: Sequence[SlotKind]
    ) -> None:
        self.key, self.markers, self.kinds = key, markers, kinds

    def between(self, start: int, end: int) -> list[TextPiece] | None:
        """None when ``start`` or ``end`` falls inside a marker."""
        pieces: list[TextPiece] = []
        pos = start
        for slot, (a, b) in enumerate(self.markers):
            if b <= start or a >= end:
                continue
            if a < start or b > end:
                return None
            pieces.append(self.text(pos, a))
            pieces += [b"'", slot, b"'"] if self.kinds[slot] == SlotKind.STRING else [slot]
            pos = b
        pieces.append(self.text(pos, end))
        return [piece for piece in pieces if piece != b""]

    def text(self, start: int, end: int) -> bytes:
        """The key's own text between two offsets, as bytes."""
        return self.key[start:end].encode("utf-8", "surrogateescape")


_P = TypeVar("_P", TextPiece, _Piece)


def merged(pieces: Sequence[_P]) -> list[_P]:
    """Adjacent pieces of the shape's own text as one."""
    out: list[_P] = []
    for piece in pieces:
        if isinstance(piece, bytes) and out and isinstance(out[-1], bytes):
            out[-1] = out[-1] + piece
        else:
            out.append(piece)
    return out
