"""The scanner with CLIENT_DEPRECATE_EOF and MARIADB_CLIENT_CACHE_METADATA (issue 11, item 3).

The same method as tests/unit/test_scanner.py: responses built packet by packet as MariaDB
writes them with those capabilities (the shapes tests/integration/test_extended_metadata.py records
from the real server), fed whole, split at every offset and in random chunkings; the end
must be found at the last byte exactly, with the last status flags.
"""

from __future__ import annotations

import pytest

from proxy.transport.metadata_relay import MetadataRestorer
from proxy.wire.capabilities import CLIENT_DEPRECATE_EOF, MARIADB_CLIENT_CACHE_METADATA
from proxy.wire.packets import MAX_PAYLOAD, frame, lenenc_int, make_err, make_ok
from proxy.wire.scanner import ResponseScanner, Shape
from proxy.wire.seq_shift import SequenceShift
from tests.unit.test_scanner import (
    AUTOCOMMIT,
    CURSOR_EXISTS,
    MORE_RESULTS,
    column_def,
    eof,
    packets,
    splits,
    text_row,
)

OK_END = CLIENT_DEPRECATE_EOF
CACHE = MARIADB_CLIENT_CACHE_METADATA


def ok_end(status: int = AUTOCOMMIT, session_state: bytes = b"") -> bytes:
    """The OK packet headed 0xFE that ends rows with DEPRECATE_EOF."""
    body = make_ok(status)[1:] + (lenenc_int(0) + lenenc_int(len(session_state)) + session_state)
    return b"\xfe" + body if session_state else b"\xfe" + make_ok(status)[1:]


def count(columns: int, follow: bool) -> bytes:
    return lenenc_int(columns) + (b"\x01" if follow else b"\x00")


SHAPES: dict[str, tuple[Shape, int, bytes]] = {
    "result, OK end": (
        Shape.RESULT,
        OK_END,
        packets(b"\x02", column_def("a"), column_def("b"), text_row(b"1", b"\xfe" * 12), ok_end()),
    ),
    "result, OK end with session state (longer than an EOF)": (
        Shape.RESULT,
        OK_END,
        packets(b"\x01", column_def("a"), text_row(b"1"), ok_end(AUTOCOMMIT, b"\x00" * 30)),
    ),
    "empty result, OK end": (Shape.RESULT, OK_END, packets(b"\x01", column_def("a"), ok_end())),
    "multi results, OK ends": (
        Shape.RESULT,
        OK_END,
        packets(
            b"\x01",
            column_def("a"),
            text_row(b"1"),
            ok_end(AUTOCOMMIT | MORE_RESULTS),
            b"\x01",
            column_def("a"),
            ok_end(AUTOCOMMIT | MORE_RESULTS | CURSOR_EXISTS),
            make_ok(AUTOCOMMIT),
        ),
    ),
    "error mid rows, OK end": (
        Shape.RESULT,
        OK_END,
        packets(b"\x01", column_def("a"), text_row(b"1"), make_err(1317, "70100", "stop")),
    ),
    "cursor opened, OK end": (
        Shape.CURSOR,
        OK_END,
        packets(b"\x01", column_def("a"), ok_end(AUTOCOMMIT | CURSOR_EXISTS)),
    ),
    "prepare, no EOFs": (
        Shape.PREPARE,
        OK_END,
        packets(
            b"\x00\x01\x00\x00\x00\x02\x00\x01\x00\x00\x00\x00",
            column_def("?"),
            column_def("a"),
            column_def("b"),
        ),
    ),
    "prepare, parameters only, no EOF": (
        Shape.PREPARE,
        OK_END,
        packets(
            b"\x00\x01\x00\x00\x00\x00\x00\x02\x00\x00\x00\x00", column_def("?"), column_def("?")
        ),
    ),
    "field list, OK end": (Shape.FIELDS, OK_END, packets(column_def("a"), ok_end())),
    "fetch, OK end": (Shape.ROWS, OK_END, packets(b"\x00\x00\x01", ok_end(AUTOCOMMIT | 0x80))),
    "cached metadata, EOFs": (
        Shape.RESULT,
        CACHE,
        packets(count(2, follow=False), eof(), b"\x00\x00\x01\x02", eof(0x22)),
    ),
    "metadata follows, EOFs": (
        Shape.RESULT,
        CACHE,
        packets(count(1, follow=True), column_def("a"), eof(), b"\x00\x00\x01", eof(0x22)),
    ),
    "cached metadata, OK end": (
        Shape.RESULT,
        CACHE | OK_END,
        packets(count(2, follow=False), b"\x00\x00\x01\x02", ok_end(0x22)),
    ),
    "cached metadata, cursor": (
        Shape.CURSOR,
        CACHE | OK_END,
        packets(count(2, follow=False), ok_end(AUTOCOMMIT | CURSOR_EXISTS)),
    ),
    "text results with the flag byte": (
        Shape.RESULT,
        CACHE | OK_END,
        packets(
            count(1, follow=True),
            column_def("a"),
            text_row(b"1"),
            ok_end(AUTOCOMMIT | MORE_RESULTS),
            make_ok(AUTOCOMMIT),
        ),
    ),
}


def find_end(shape: Shape, capabilities: int, chunks: list[bytes]) -> tuple[int, ResponseScanner]:
    scanner = ResponseScanner(shape, capabilities)
    offset = 0
    for chunk in chunks:
        end = scanner.feed(chunk)
        if end >= 0:
            return offset + end, scanner
        offset += len(chunk)
    return -1, scanner


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_end_is_found_exactly_for_every_chunking(name: str) -> None:
    shape, capabilities, data = SHAPES[name]
    for chunks in splits(data):
        end, _ = find_end(shape, capabilities, chunks)
        assert end == len(data), f"{name}: split {[len(c) for c in chunks]}"
    end, _ = find_end(shape, capabilities, [data[:-1]])
    assert end == -1


@pytest.mark.parametrize("name", sorted(n for n, (s, _, _) in SHAPES.items() if s is Shape.RESULT))
def test_one_pass_reading_agrees_with_the_state_machine(name: str) -> None:
    _, capabilities, data = SHAPES[name]
    whole_end, whole = find_end(Shape.RESULT, capabilities, [data])
    step_end, step = find_end(
        Shape.RESULT, capabilities, [data[i : i + 1] for i in range(len(data))]
    )
    assert (whole_end, whole.status, whole.error) == (step_end, step.status, step.error)


def test_the_last_status_is_the_ok_ends() -> None:
    _, capabilities, data = SHAPES["multi results, OK ends"]
    _, scanner = find_end(Shape.RESULT, capabilities, [data])
    assert scanner.status == AUTOCOMMIT
    _, capabilities, data = SHAPES["cached metadata, OK end"]
    _, scanner = find_end(Shape.RESULT, capabilities, [data])
    assert scanner.status == 0x22


def test_a_row_starting_with_0xfe_is_no_ok_end() -> None:
    """A row whose first value is 16 MiB or more starts with 0xFE: its first packet is
    a full one (0xFFFFFF bytes), which no OK packet is."""
    data = packets(b"\x01", column_def("a"), text_row(b"x" * MAX_PAYLOAD), ok_end())
    for chunks in ([data], [data[:10], data[10 : 1 << 20], data[1 << 20 :]]):
        end, _ = find_end(Shape.RESULT, OK_END, chunks)
        assert end == len(data)


def test_an_ml_prepared_result_gets_its_definitions_back() -> None:
    """The backend left the definitions out (the proxy's own PREPARE had them): the
    client gets them, and every later packet's sequence id follows on, however the
    response is cut into chunks."""
    definitions = [column_def("n"), column_def("s")]
    rows = [b"\x00\x00\x01\x02", b"\x00\x00\x03\x04"]
    sent = packets(count(2, follow=False), eof(), *rows, eof(0x22))
    wanted = packets(count(2, follow=True), *definitions, eof(), *rows, eof(0x22))
    for chunks in splits(sent):
        restorer = MetadataRestorer(definitions)
        assert b"".join(restorer.feed(chunk) for chunk in chunks) == wanted
    followed = packets(count(2, follow=True), *definitions, eof(), *rows, eof(0x22))
    restorer = MetadataRestorer(definitions)
    assert restorer.feed(followed) == followed  # definitions already there: unchanged
    error = frame(make_err(1146, "42S02", "gone"), 1)
    assert MetadataRestorer(definitions).feed(error) == error


def test_resequencing_wraps_at_256() -> None:
    data = b"".join(frame(b"x" * 3, seq) for seq in (254, 255, 0))
    assert SequenceShift(2).apply(data) == b"".join(frame(b"x" * 3, seq) for seq in (0, 1, 2))
