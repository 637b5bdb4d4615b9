"""A point select answered in one round trip: its rows with its calls' inputs, answered here.

rewriter.single_trip says which point selects may run once with each call replaced by a
typed NULL and their inputs' keys added after the select list; the point splice writes
that statement on the bytes (rewriter.shaped.point_splice.SingleTripSplice). Its result
comes back here from the backend socket's callback: each row's keys are its last
columns, the cache answers each (proxy.ml.path.held_answers), and the client gets the
result the database would have sent for the statement with the answers written into
it (proxy.ml.answers.inline_lookup, the usual second trip):

- the same column definitions, less the key columns': the NULL's is the one the
  rewrite's CAST gives (a CAST of the same type, the same alias);
- each row's answer in place of its NULL, as the CAST sends it: a built-in's label,
  written as its characters, which are the same bytes in the result's character set
  (only character sets that write ASCII as ASCII: ``ASCII_RESULTS``);
- the database's own end of the rows (its status flags), renumbered.

The statement's error (KILL QUERY, a timeout, a deadlock that rolled the transaction
back) goes to the client as the database sent it: running the statement again would
undo what the error says. It gives up (None: the statement is served again the usual
way, which rewriter.single_trip allows) on anything else: a warning (SHOW WARNINGS must
show the usual path's), an answer not cached, a label the CAST would not send as it is,
a result over QUICK_BYTES. ``tests/unit/test_single_trip.py`` checks the result against the usual
path's, over a real database.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import NamedTuple

from mysql_mimic.types import ServerStatus

from ml_backends.sentiment import Sentiment
from proxy.ml.fastpath.memo import CachedAnswers
from proxy.ml.fastpath.quick import MAX_READS, PARTIAL, QUICK_BYTES, Partial, packet_at, unfinished
from proxy.upstream.internal import Row, decode_text_row, encode_text_row
from proxy.wire.packets import ERR_HEADER, OK_HEADER, frame, lenenc_int, read_lenenc_int
from proxy.wire.result_shape import ResultShape
from rewriter.shaped.point_splice import SingleTripSplice

#: Character sets (their collations' ids, in a column definition) that write ASCII as
#: ASCII, as MariaDB 10.11 numbers them: utf8mb4, utf8mb3, latin1, ascii and binary.
#: (Not ucs2, utf16 or utf32, which a session may ask its results in.)
ASCII_RESULTS = frozenset(
    {45, 46, *range(224, 248), 608, 609, 610, 1069, 1070, 1248, 1270}  # utf8mb4
    | {33, 83, *range(192, 216), 223, 576, 577, 578, 1057, 1107, 1216, 1238}  # utf8mb3
    | {5, 8, 15, 31, 47, 48, 49, 94, 1032, 1071}  # latin1
    | {11, 65, 1035, 1089, 63}  # ascii, binary
)
#: MySQL 8's utf8mb4 collations (ids MariaDB does not give them).
MYSQL_UTF8MB4 = frozenset(range(255, 324))
#: A label written as its characters: what every ASCII character set writes alike.
_PLAIN_LABEL = re.compile(r"[A-Za-z0-9_ ]*")

#: Each site's answers for its rows' keys; None when one is not cached.
Answers = Callable[[int, list[Row]], dict[Row, object] | None]


class Served(NamedTuple):
    """A result for the client (framed, sequence ids from 1), its status flags, and the
    cached answers it holds (not yet counted: proxy.ml.fastpath.memo.count_answers)."""

    response: bytes
    status: int
    answers: tuple[CachedAnswers, ...] = ()


class _Result(NamedTuple):
    """A text-protocol result set, read: its column count's packet, its definitions and
    their EOF (if any), its rows and the packet that ends them."""

    head: bytes
    definitions: list[bytes]
    rows: list[bytes]
    end: bytes


def served(
    data: bytes,
    reads: int,
    single: SingleTripSplice,
    shape: ResultShape,
    mariadb: bool,
    answers: Answers,
) -> Served | Partial | None:
    """The result for the client from the single trip's result ``data`` (the
    ``reads``-th offer of it), the cache answering each site's rows (``answers``);
    PARTIAL while it is not all in; None to serve the statement the usual way."""
    if len(data) > QUICK_BYTES:
        return None
    result = _read(data, shape)
    if result is PARTIAL:
        return None if reads >= MAX_READS else PARTIAL
    if isinstance(result, bytes):  # the statement's error (KILL, a timeout, a deadlock...)
        return Served(frame(result, 1), 0)
    if result is None or _warnings(result.end, shape) != 0:
        return None
    status = shape.end_status(result.end)
    if status & ServerStatus.SERVER_MORE_RESULTS_EXISTS:  # (not one SELECT's: never answered here)
        return None
    keys = sum(single.keys)
    total, after = read_lenenc_int(result.head, 0)
    columns = total - keys
    places = [columns - 1 - items for items in single.items_after]
    if min(places) < 0 or len(result.definitions) < total:
        return None
    charsets = ASCII_RESULTS if mariadb else ASCII_RESULTS | MYSQL_UTF8MB4
    if any(_charset(result.definitions[place]) not in charsets for place in places):
        return None
    rows = [decode_text_row(row, total) for row in result.rows]
    written = _answered_rows(rows, columns, places, single, answers)
    if written is None:
        return None
    payloads = [lenenc_int(columns) + result.head[after:]]
    payloads += result.definitions[:columns] + result.definitions[total:]  # (their EOF)
    payloads += written
    payloads.append(result.end)
    out = [frame(payload, seq) for seq, payload in enumerate(payloads, start=1)]
    return Served(b"".join(out), status)


def _answered_rows(
    rows: list[Row], columns: int, places: Sequence[int], single: SingleTripSplice, answers: Answers
) -> list[bytes] | None:
    """Each row with its answers in place of its NULLs, less its key columns."""
    values: list[list[bytes | None]] = [list(row[:columns]) for row in rows]
    first = columns
    for site, (place, keys, width) in enumerate(
        zip(places, single.keys, single.widths, strict=True)
    ):
        site_rows = [row[first : first + keys] for row in rows]
        first += keys
        found = answers(site, list(dict.fromkeys(site_rows)))  # (each key once, as a key query)
        if found is None:
            return None
        for written, key in zip(values, site_rows, strict=True):
            as_sent, value = _label(found[key], width)
            if not as_sent:
                return None
            written[place] = value
    return [encode_text_row(tuple(row)) for row in values]


def _label(answer: object, width: int) -> tuple[bool, bytes | None]:
    """A label answer's bytes as the CAST sends them (None for NULL), and whether it
    sends it as it is (proxy.ml.answers.literal writes the label)."""
    if answer is None:
        return True, None
    value = answer[0] if isinstance(answer, Sentiment | tuple | list) else answer
    if type(value) is not str or len(value) > width or _PLAIN_LABEL.fullmatch(value) is None:
        return False, None
    return True, value.encode("ascii")


def _read(data: bytes, shape: ResultShape) -> _Result | bytes | Partial | None:
    """The one result set that is all of ``data``, or the ERR that is its end (its
    payload); PARTIAL when ``data`` is its start; None for anything else (an OK, a
    16 MiB packet, bytes after it)."""
    count, pos = packet_at(data, 0)
    if count is None:
        return unfinished(pos)
    if count[0] == ERR_HEADER:
        return count if pos == len(data) else None
    if count[0] == OK_HEADER or not shape.definitions_follow(count):
        return None
    definitions = []
    for _ in range(shape.head_size(count) - 1):  # (the definitions, their EOF)
        payload, pos = packet_at(data, pos)
        if payload is None:
            return unfinished(pos)
        definitions.append(payload)
    rows = []
    while True:
        payload, pos = packet_at(data, pos)
        if payload is None:
            return unfinished(pos)
        if payload[0] == ERR_HEADER:
            return payload if pos == len(data) else None
        if shape.is_end(payload):
            break
        rows.append(payload)
    return _Result(count, definitions, rows, payload) if pos == len(data) else None


def _charset(definition: bytes) -> int:
    """A column definition's character set: the first of its 12 fixed bytes (-1 when
    they are not where they should be)."""
    if len(definition) < 13 or definition[-13] != 0x0C:
        return -1
    return definition[-12] | definition[-11] << 8


def _warnings(end: bytes, shape: ResultShape) -> int:
    """The warnings the packet ending the rows counts (an EOF, or an OK with
    CLIENT_DEPRECATE_EOF); -1 when it is too short to say."""
    if not shape.deprecate_eof:
        return end[1] | end[2] << 8 if len(end) >= 5 else -1
    _, pos = read_lenenc_int(end, 1)
    _, pos = read_lenenc_int(end, pos)
    return end[pos + 2] | end[pos + 3] << 8 if pos + 4 <= len(end) else -1
