"""Plans made once per statement shape, and filled in with each statement's literals.

Planning a statement (rewriter.plan) parses it with sqlglot and writes its key queries:
about a millisecond for a point select, most of an ML statement's fixed cost when its
answers are cached. Statements that differ only in their literals and comments have one
shape (rewriter.shaped.shapes), and one plan made from the shape fits each of them: its offsets
are moved by how much longer or shorter each literal is, its key queries get the
statement's own literal text where the markers stand (the client's text, in the
session's own quoting), and its select items' names are the statement's own text.

The cache's key is the shape's text and everything else a plan depends on, which the
caller gives (``context``): how the session reads text (sql_mode, character set, server
version), the functions the statement may call (the registry's names and the alias
definitions read for it), the database, the account. So a plan is never used for a
statement whose meaning changed; and a plan's speed tells one account nothing of the
statements of another. The cache is bounded in entries and in bytes (the bytes its
strings take, and a fixed charge per call site for the objects around them), the least
recently used plans going first; a plan over an eighth of the bytes is not kept.

A template is checked when it is made: every marker in its key queries must be whole (a
marker sqlglot wrote otherwise would leave the statement's literal out), and otherwise
the shape's statements are planned one by one, as without a cache.
"""

from __future__ import annotations

import bisect
import re
import sys
from collections import OrderedDict
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import TypeVar

from rewriter.errors import PlanError
from rewriter.functions import MLFunction
from rewriter.lexer import SqlSyntax
from rewriter.plan import (
    PLACEHOLDER,
    CallSite,
    MLPlan,
    placeholder,
    plan_statement,
)
from rewriter.shaped.constant_calls import ConstantRecipe, ConstantSite, known_row
from rewriter.shaped.constant_splice import ConstantSplice, constant_splice
from rewriter.shaped.matcher import ShapeMatcher, matcher_of
from rewriter.shaped.point_splice import PointSplice, point_splice
from rewriter.shaped.shapes import MARKER_RESIDUE, MARKERS, Shape, number_slot
from rewriter.single_trip import SingleTrip, single_trip
from rewriter.spans import CallSpan
from rewriter.sql_text import code_between

#: Bytes charged per call site and per plan beside their strings.
_OBJECT_BYTES = 2048
T = TypeVar("T")


class Unshared(Enum):
    """A shape whose statements are planned one by one (its template failed its check)."""

    UNSHARED = "unshared"


UNSHARED = Unshared.UNSHARED


#: A piece of a compiled key query: its own text, a slot (its number), or a call's
#: placeholder (the call's offset in the key and the markers before it).
Piece = str | int | tuple[int, int]


@dataclass(frozen=True)
class _CompiledSite:
    """What instantiating one call site needs, computed once per template: its offsets
    with the number of markers before each (so moving them is one addition), and its
    key queries cut at their markers."""

    points: tuple[tuple[int, int], ...]
    key_query: tuple[Piece, ...] | None
    flat_key_query: tuple[Piece, ...] | None
    #: The slot of its max_batch_size argument, if a marker.
    batch_slot: int | None
    #: For a constant site of a built-in: per input, the slot it is (None: anything else).
    input_slots: tuple[int | None, ...] | None
    #: How many of ``points`` (after the span's) each of the site's aliases takes.
    alias_sizes: tuple[int, ...] = ()


@dataclass(frozen=True)
class Template:
    """A plan made from a shape (offsets and markers of the shape's key), compiled."""

    plan: MLPlan
    sites: tuple[_CompiledSite, ...]
    state_points: tuple[tuple[int, int], ...]
    size: int
    #: The plan's executable comments' openers and ends (MLPlan.hidden), as points.
    hidden_points: tuple[tuple[int, int], ...]
    #: When every call takes literals only: the rewrite made from them
    #: (rewriter.shaped.constant_calls).
    constant: ConstantRecipe | None = None
    #: What recognises the shape's statements without the lexer
    #: (rewriter.shaped.matcher), when it can be sure.
    matcher: ShapeMatcher | None = None
    #: With both a recipe and a matcher: the two on a utf8mb4 session's bytes
    #: (rewriter.shaped.constant_splice).
    splice: ConstantSplice | None = None
    #: With a matcher, when its calls all read rows with one key query each: its key
    #: queries and rewrite on the session's bytes (rewriter.shaped.point_splice).
    point: PointSplice | None = None


#: What the cache holds per key: a template, None (the shape calls no ML function), or
#: UNSHARED.
Entry = Template | Unshared | None


def make_template(shape: Shape, functions: Mapping[str, MLFunction], syntax: SqlSyntax) -> Entry:
    """The template of ``shape``: None when its statements call no ML function, UNSHARED
    when they must be planned one by one. Raises PlanError as plan_statement does."""
    try:
        plan = plan_statement(shape.key, functions, syntax)
    except RecursionError:
        return None  # too deep to parse: as for unparsable text (the backend answers)
    if plan is None:
        return None
    queries = [q for site in plan.calls for q in (site.key_query, site.flat_key_query) if q]
    if any(MARKER_RESIDUE.search(MARKERS.sub("", q)) for q in queries):
        return UNSHARED
    sites = tuple(_compiled(site, plan, shape) for site in plan.calls)
    state = [point for _, span in plan.state_calls for point in _span_points(span)]
    size = sys.getsizeof(shape.key) + sum(map(sys.getsizeof, queries))
    size += _OBJECT_BYTES * (1 + len(plan.calls))
    matcher = matcher_of(shape)
    if matcher is not None:
        size += sys.getsizeof(matcher.pattern) + sys.getsizeof(matcher.pattern.pattern)
    recipe = _constant_recipe(plan, sites)
    splice = None
    if recipe is not None and matcher is not None:
        splice = constant_splice(recipe, matcher)
        if splice is not None:
            for pattern in (splice.utf8, splice.single_byte):
                if pattern is not None:
                    size += sys.getsizeof(pattern) + sys.getsizeof(pattern.pattern)
            size += sum(map(sys.getsizeof, splice.rewriting.text.fixed))
    point = None
    if recipe is None and matcher is not None:
        point = _point_splice(plan, sites, matcher, single_trip(plan, functions, syntax))
        size += 0 if point is None else _point_size(point)
    hidden = _points([at for stretch in plan.hidden for at in stretch], shape)
    state_points = _points(state, shape)
    return Template(plan, sites, state_points, size, hidden, recipe, matcher, splice, point)


def _point_splice(
    plan: MLPlan,
    sites: tuple[_CompiledSite, ...],
    matcher: ShapeMatcher,
    trip: SingleTrip | None,
) -> PointSplice | None:
    key_queries = [site.key_query for site in sites]
    return point_splice(plan, key_queries, [site.batch_slot for site in sites], matcher, trip)


def _point_size(point: PointSplice) -> int:
    """The bytes a point splice's patterns and texts take."""
    pattern = point.bytes_pattern
    size = sys.getsizeof(pattern) + sys.getsizeof(pattern.pattern)
    texts = [*point.rewriting.text.fixed, *(t for s in point.sites for t in s.key_query.fixed)]
    if point.single is not None:
        texts += [*point.single.rewriting.text.fixed, *point.single.nulls]
    return size + sum(map(sys.getsizeof, texts))


def _constant_recipe(plan: MLPlan, sites: tuple[_CompiledSite, ...]) -> ConstantRecipe | None:
    """The recipe of a plan whose calls are all built-ins with plain literal inputs (no
    ROW_COUNT() or FOUND_ROWS(), whose values a query reads); None for any other."""
    if plan.state_calls:
        return None
    recipe = []
    for site, compiled in zip(plan.calls, sites, strict=True):
        slots = compiled.input_slots
        if not site.constant or site.function.definition or slots is None or None in slots:
            return None
        aliases = compiled.points[3 + 2 * len(site.span.args) :]
        recipe.append(
            ConstantSite(
                site.function,
                (compiled.points[1], compiled.points[2]),
                tuple(_grouped(aliases, compiled.alias_sizes)),
                tuple(slot for slot in slots if slot is not None),
                compiled.batch_slot,
            )
        )
    return ConstantRecipe(tuple(recipe))


def _compiled(site: CallSite, plan: MLPlan, shape: Shape) -> _CompiledSite:
    offsets = _span_points(site.span) + [at for span in site.aliases for at in span]
    batch_slot = None if site.batch_size is None else number_slot(site.batch_size)
    input_slots = None
    if site.constant and not site.function.input_casts:
        args = site.span.args[: site.function.inputs]
        input_slots = tuple(_slot_at(plan.code(a, b)) for a, b in args)
    return _CompiledSite(
        _points(offsets, shape),
        _pieces(site.key_query, shape),
        _pieces(site.flat_key_query, shape),
        batch_slot,
        input_slots,
        tuple(len(alias) for alias in site.aliases),
    )


def _grouped(flat: Sequence[T], sizes: tuple[int, ...]) -> list[tuple[T, ...]]:
    """``flat`` cut into tuples of ``sizes``."""
    groups, at = [], 0
    for size in sizes:
        groups.append(tuple(flat[at : at + size]))
        at += size
    return groups


def _span_points(span: CallSpan) -> list[int]:
    return [span.name_start, span.start, span.end, *(at for arg in span.args for at in arg)]


def _points(offsets: list[int], shape: Shape) -> tuple[tuple[int, int], ...]:
    """Offsets of the key, each with the number of markers that end at or before it."""
    return tuple((at, bisect.bisect_right(shape.marker_ends, at)) for at in offsets)


_PIECES = re.compile(f"{MARKERS.pattern}|{PLACEHOLDER.pattern}")


def _pieces(query: str | None, shape: Shape) -> tuple[Piece, ...] | None:
    """A key query cut at its markers and call placeholders."""
    if query is None:
        return None
    pieces: list[Piece] = []
    pos = 0
    for found in _PIECES.finditer(query):
        pieces.append(query[pos : found.start()])
        string, number, call = found.groups()
        if call is not None:
            offset = int(call)
            pieces.append((offset, bisect.bisect_right(shape.marker_ends, offset)))
        else:
            slot = int(string) if string is not None else number_slot(int(number))
            assert slot is not None  # MARKERS matches markers only
            pieces.append(slot)
        pos = found.end()
    pieces.append(query[pos:])
    return tuple(pieces)


def _slot_at(argument: str) -> int | None:
    """The slot an argument's text is exactly, if it is one."""
    found = MARKERS.fullmatch(argument.strip())
    if found is None:
        return None
    if found.group(1) is not None:
        return int(found.group(1))
    return number_slot(int(found.group(2)))


def instantiate(template: Template, shape: Shape, utf8_session: bool = False) -> MLPlan:
    """The plan of ``shape``'s statement. ``utf8_session``: the session's client and
    connection character sets are both UTF-8, so any plain string literal's value is
    its text (else only plain ASCII ones are taken as they are)."""
    growth = (0, *shape.growth)
    text = shape.text
    moved_hidden = [at + growth[before] for at, before in template.hidden_points]
    hidden = tuple(zip(moved_hidden[::2], moved_hidden[1::2], strict=True))
    calls = []
    for site, compiled in zip(template.plan.calls, template.sites, strict=True):
        moved = [at + growth[before] for at, before in compiled.points]
        function = site.function
        nargs = len(site.span.args)
        args = tuple(zip(moved[3 : 3 + 2 * nargs : 2], moved[4 : 4 + 2 * nargs : 2], strict=True))
        span = CallSpan(moved[0], moved[1], moved[2], args)
        aliases = _grouped(moved[3 + 2 * nargs :], compiled.alias_sizes)
        slots = compiled.input_slots
        calls.append(
            CallSite(
                site.index,
                function,
                span,
                [
                    function.input_sql(i, code_between(text, a, b, hidden).strip())
                    for i, (a, b) in enumerate(args[: function.inputs])
                ],
                _batch_size(compiled.batch_slot, site, shape),
                site.constant,
                _filled(compiled.key_query, shape, growth),
                _filled(compiled.flat_key_query, shape, growth),
                aliases,
                None if slots is None else known_row(slots, shape, utf8_session),
                site.literal_inputs,
            )
        )
    state = [at + growth[before] for at, before in template.state_points]
    state_calls = []
    for index, (name, span) in enumerate(template.plan.state_calls):
        first = state[index * 3 : index * 3 + 3] if not span.args else None
        assert first is not None  # ROW_COUNT() and FOUND_ROWS() take no argument
        state_calls.append((name, CallSpan(first[0], first[1], first[2], ())))
    return MLPlan(text, calls, state_calls, hidden)


def _filled(pieces: tuple[Piece, ...] | None, shape: Shape, growth: tuple[int, ...]) -> str | None:
    """A compiled key query for the shape's statement: each slot's own text, each call's
    placeholder at the call's offset in the statement."""
    if pieces is None:
        return None
    out = []
    for piece in pieces:
        if isinstance(piece, str):
            out.append(piece)
        elif isinstance(piece, int):
            out.append(shape.slot_text(piece))
        else:
            offset, before = piece
            out.append(placeholder(offset + growth[before] if offset >= 0 else offset))
    return "".join(out)


def _batch_size(slot: int | None, site: CallSite, shape: Shape) -> int | None:
    if slot is None:
        return site.batch_size
    text = shape.slot_text(slot)
    if text.isascii() and text.isdigit() and int(text) > 0:
        return int(text)
    name = site.function.name
    raise PlanError(f"max_batch_size of {name}() must be a positive integer literal", code=1210)


class PlanCache:
    """Templates by (shape, context): an LRU bounded in entries and in bytes; either
    bound 0 turns it off."""

    def __init__(self, max_entries: int = 4096, max_bytes: int = 16 << 20) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.bytes = 0
        self._entries: OrderedDict[Hashable, tuple[Entry, int]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def enabled(self) -> bool:
        return self.max_entries > 0 and self.max_bytes > 0

    def get(self, key: Hashable) -> tuple[bool, Entry]:
        entry = self._entries.get(key)
        if entry is None:
            return False, None
        self._entries.move_to_end(key)
        return True, entry[0]

    def put(self, key: Hashable, value: Entry, size: int) -> None:
        if self.max_entries <= 0 or self.max_bytes <= 0 or size > self.max_bytes // 8:
            return
        old = self._entries.pop(key, None)
        if old is not None:
            self.bytes -= old[1]
        self._entries[key] = (value, size)
        self.bytes += size
        while len(self._entries) > self.max_entries or self.bytes > self.max_bytes:
            _, (_, dropped) = self._entries.popitem(last=False)
            self.bytes -= dropped

    def clear(self) -> None:
        self._entries.clear()
        self.bytes = 0


def plan_shaped(
    shape: Shape,
    functions: Mapping[str, MLFunction],
    syntax: SqlSyntax,
    cache: PlanCache,
    context: Hashable,
    utf8_session: bool = False,
) -> MLPlan | None:
    """The plan of ``shape``'s statement (None: it calls no ML function), from the
    cache when a statement of its shape was planned in the same ``context``."""
    entry = template_of(shape, functions, syntax, cache, context)
    return filled(entry, shape, functions, syntax, utf8_session)


def template_of(
    shape: Shape,
    functions: Mapping[str, MLFunction],
    syntax: SqlSyntax,
    cache: PlanCache,
    context: Hashable,
) -> Entry:
    """What the cache holds for ``shape`` in ``context``, made (and kept) if missing.
    Raises PlanError as plan_statement does."""
    key = (shape.key, context)
    found, entry = cache.get(key)
    if not found:
        entry = make_template(shape, functions, syntax)
        size = (
            entry.size if isinstance(entry, Template) else sys.getsizeof(shape.key) + _OBJECT_BYTES
        )
        cache.put(key, entry, size)
    return entry


def filled(
    entry: Entry,
    shape: Shape,
    functions: Mapping[str, MLFunction],
    syntax: SqlSyntax,
    utf8_session: bool = False,
) -> MLPlan | None:
    """The plan of ``shape``'s statement from its cache ``entry`` (template_of)."""
    if entry is None:
        return None
    if isinstance(entry, Template):
        return instantiate(entry, shape, utf8_session)
    return plan_statement(shape.text, functions, syntax)
