"""A point select's key queries and rewrite on the statement's bytes.

An application that calls a model per request on a row it reads
(``SELECT id, aws_comprehend_detect_sentiment(txt, 'en') FROM t WHERE id = 7``, another id
each time) sends a statement of one shape whose calls read columns: each call's inputs
come from a key query the backend answers (``SELECT DISTINCT ... FROM t WHERE id = 7``),
and its answers go into the statement inline (proxy.ml.answers.inline_lookup). The text
path decodes the statement, reads its shape, fills in a whole plan
(rewriter.shaped.plan_cache.instantiate) and writes each key query and the rewrite from
it, then encodes them. A PointSplice does the same on the bytes, as ConstantSplice does
for constant calls (rewriter.shaped.byte_holes):

- one regular expression, the matcher's (a max_batch_size slot only a positive integer);
- each call's key query as bytes with holes for the slots it holds (a string slot with
  its quotes);
- each call's inputs' SQL text, which the inline lookup compares: the shape's own text
  when the input holds no slot, else its bytes with holes, decoded per statement;
- the rewrite as bytes with holes for the slots, each call's inline lookup and each
  alias.

It is made for templates whose calls are all built-ins with a key query of their own
(none reads another call's answers: one wave), no ROW_COUNT() or FOUND_ROWS() and no
executable comment: what proxy.ml.fastpath.quick serves from the callbacks. It serves
utf8mb4 sessions, and single-byte ones when every text it writes is ASCII. What it
gives is what the text path gives, encoded (``tests/unit/test_point_splice.py``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from rewriter.charsets import ClientCharset
from rewriter.functions import MLFunction
from rewriter.lexer import SlotKind
from rewriter.plan import CallSite, MLPlan
from rewriter.shaped.byte_holes import (
    CallEdits,
    Cutter,
    Holes,
    Rewriting,
    TextPiece,
    ascii_text,
    byte_pattern,
    holes_of,
    merged,
    rewrite_holes,
)
from rewriter.shaped.constant_splice import BATCH_SIZE, cutter_of, slot_roles
from rewriter.shaped.matcher import ShapeMatcher
from rewriter.single_trip import SingleTrip
from rewriter.sql_text import INPUT_KEY

#: The most calls a point splice is made for (proxy.ml.fastpath.quick.MAX_QUERIES).
MAX_SITES = 4
#: Inputs' texts a site keeps (PointSite._texts), each of at most MAX_INPUT_TEXT bytes:
#: a few tens of KiB at most for a template.
MAX_INPUT_TEXTS = 64
MAX_INPUT_TEXT = 256

#: A piece of a compiled key query (rewriter.shaped.plan_cache.Piece).
KeyQueryPiece = str | int | tuple[int, int]


@dataclass(frozen=True)
class PointSite:
    """One row-dependent call: its key query, and its inputs' SQL as the inline lookup
    compares them."""

    function: MLFunction
    key_query: Holes
    #: Per input: its SQL text, or its bytes with holes when it holds a slot (decoded
    #: and stripped per statement, then as MLFunction.input_sql writes it).
    inputs: tuple[str | Holes, ...]
    literal_inputs: tuple[bool, ...]
    #: Inputs' SQL text by their bytes: an application's statements of a shape mostly
    #: repeat an input's slots (a language's 'en'), only their keys differ.
    _texts: dict[tuple[int, bytes, str], str] = field(
        default_factory=dict, compare=False, repr=False
    )

    def input_texts(self, groups: Sequence[bytes], codec: str) -> list[str]:
        """The inputs' SQL text in the statement whose slots' bytes are ``groups``."""
        texts = []
        for number, text in enumerate(self.inputs):
            if not isinstance(text, str):
                text = self._input_text(number, text.joined(groups), codec)
            texts.append(text)
        return texts

    def _input_text(self, number: int, code: bytes, codec: str) -> str:
        key = (number, code, codec)
        text = self._texts.get(key)
        if text is None:
            decoded = code.decode(codec, "surrogateescape").strip()
            text = self.function.input_sql(number, decoded)
            if len(code) <= MAX_INPUT_TEXT:  # (a client's long texts: not kept)
                if len(self._texts) >= MAX_INPUT_TEXTS:
                    self._texts.clear()
                self._texts[key] = text
        return text


@dataclass(frozen=True)
class PointSplice:
    """A point select's shape on the bytes of a session's statements (module docstring)."""

    #: The matcher's pattern on bytes.
    bytes_pattern: re.Pattern[bytes]
    #: Every text it writes is ASCII: it serves single-byte sessions too.
    ascii: bool
    sites: tuple[PointSite, ...]
    rewriting: Rewriting
    #: The statement run once with its calls' inputs fetched with its rows, when it may
    #: be (rewriter.single_trip).
    single: SingleTripSplice | None = None

    def pattern(self, charset: ClientCharset, utf8_session: bool) -> re.Pattern[bytes] | None:
        """The pattern for a session's statements; None when it cannot serve them."""
        if utf8_session or (self.ascii and charset.single_byte):
            return self.bytes_pattern
        return None


@dataclass(frozen=True)
class SingleTripSplice:
    """A point select that fetches its calls' inputs with its rows (rewriter.single_trip),
    on the statement's bytes: the statement with each call replaced by its typed NULL
    (``nulls``, to fill its answer's hole), its aliases, and its inputs' keys inserted
    after the select list; per call, the select items after its own, its key columns and
    the most characters its answer may have (its VARCHAR's)."""

    rewriting: Rewriting
    nulls: tuple[bytes, ...]
    items_after: tuple[int, ...]
    keys: tuple[int, ...]
    widths: tuple[int, ...]

    def text(self, groups: Sequence[bytes], codec: str) -> bytes:
        """The statement to send, for one whose slots' bytes are ``groups``."""
        return self.rewriting.write(groups, self.nulls, codec)


def point_splice(
    plan: MLPlan,
    key_queries: Sequence[Sequence[KeyQueryPiece] | None],
    batch_slots: Sequence[int | None],
    matcher: ShapeMatcher,
    trip: SingleTrip | None = None,
) -> PointSplice | None:
    """The point splice of a template: its plan (made of the shape's key), each call's
    compiled key query and max_batch_size slot, and its single trip if it has one. None
    for a template it is not made for (module docstring)."""
    if plan.state_calls or plan.hidden or not plan.calls or len(plan.calls) > MAX_SITES:
        return None
    kinds = matcher.kinds
    roles = slot_roles(kinds)
    cut = cutter_of(matcher)
    sites = []
    for call, pieces, batch_slot in zip(plan.calls, key_queries, batch_slots, strict=True):
        if call.constant or call.function.definition or pieces is None:
            return None
        if batch_slot is not None:
            if kinds[batch_slot] != SlotKind.INTEGER:
                return None
            roles[batch_slot] = BATCH_SIZE
        site = _site(call, pieces, cut)
        if site is None:
            return None
        sites.append(site)
    whole = cut.between(0, len(matcher.key))
    edits: list[CallEdits] = [
        (call.span.start, call.span.end, tuple(call.aliases)) for call in plan.calls
    ]
    rewriting = rewrite_holes(edits, cut)
    if whole is None or rewriting is None:
        return None
    ascii = ascii_text(whole) and all(_ascii_site(site) for site in sites)
    single = None if trip is None else _single_trip(plan, trip, edits, cut)
    return PointSplice(byte_pattern(whole, roles), ascii, tuple(sites), rewriting, single)


#: A VARCHAR(n) result type.
_VARCHAR = re.compile(r"VARCHAR\(([0-9]+)\)", re.IGNORECASE)


def _single_trip(
    plan: MLPlan, trip: SingleTrip, edits: Sequence[CallEdits], cut: Cutter
) -> SingleTripSplice | None:
    """The single trip on the bytes, for calls that answer a built-in's label (a VARCHAR
    the proxy writes as its characters: proxy.ml.fastpath.single_trip)."""
    keys: list[TextPiece] = []
    widths = []
    before, after = (b", " + INPUT_KEY[0].encode(), INPUT_KEY[1].encode())
    for call in plan.calls:
        function = call.function
        width = _VARCHAR.fullmatch(function.sql_type)
        if function.output != "label" or function.input_casts or width is None:
            return None
        widths.append(int(width.group(1)))
        for start, end in call.span.args[: function.inputs]:  # (as the key query reads it)
            between = cut.between(start, end)
            if between is None:
                return None
            keys += [before, *between, after]
    rewriting = rewrite_holes(edits, cut, (trip.insert_at, merged(keys)))
    if rewriting is None:
        return None
    nulls = tuple(call.function.typed_null.encode() for call in plan.calls)
    inputs = tuple(call.function.inputs for call in plan.calls)
    return SingleTripSplice(rewriting, nulls, trip.items_after, inputs, tuple(widths))


def _site(call: CallSite, pieces: Sequence[KeyQueryPiece], cut: Cutter) -> PointSite | None:
    """A call's PointSite; None when its key query waits for another call's answer or
    an input's bounds fall inside a slot."""
    key_query: list[TextPiece] = []
    for piece in pieces:
        if isinstance(piece, tuple):
            return None  # another call's placeholder: a second wave
        if isinstance(piece, str):
            key_query.append(piece.encode("utf-8", "surrogateescape"))
        elif cut.kinds[piece] == SlotKind.STRING:
            key_query += [b"'", piece, b"'"]
        else:
            key_query.append(piece)
    inputs: list[str | Holes] = []
    function = call.function
    for number, (start, end) in enumerate(call.span.args[: function.inputs]):
        between = cut.between(start, end)
        if between is None:
            return None
        if any(isinstance(piece, int) for piece in between):
            inputs.append(holes_of(merged(between)))
        else:
            inputs.append(function.input_sql(number, cut.key[start:end].strip()))
    key = holes_of(merged(key_query))
    return PointSite(function, key, tuple(inputs), call.literal_inputs)


def _ascii_site(site: PointSite) -> bool:
    """Whether a site's own texts are ASCII (a single-byte session writes them alike)."""
    texts = list(site.key_query.fixed)
    for text in site.inputs:
        texts += [text.encode("utf-8", "surrogateescape")] if isinstance(text, str) else text.fixed
    return all(text.isascii() for text in texts)
