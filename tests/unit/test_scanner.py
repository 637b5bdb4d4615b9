"""The response scanner finds the exact end of every response shape, whatever the chunking.

Responses are built from packets the way a server writes them; each is fed whole, split
at every byte offset, and in random chunkings, and the scanner must report the end at
exactly the response's last byte, never before.
"""

from __future__ import annotations

import random

import pytest

from proxy.wire.packets import MAX_PAYLOAD, frame, lenenc_int, make_err, make_ok
from proxy.wire.scanner import ResponseScanner, Shape

MORE_RESULTS = 0x0008
CURSOR_EXISTS = 0x0040
AUTOCOMMIT = 0x0002


def eof(status: int = AUTOCOMMIT) -> bytes:
    return b"\xfe\x00\x00" + status.to_bytes(2, "little")


def column_def(name: str) -> bytes:
    parts = [b"def", b"db", b"t", b"t", name.encode(), name.encode()]
    body = b"".join(lenenc_int(len(p)) + p for p in parts)
    return body + b"\x0c\x21\x00\x00\x01\x00\x00\xfd\x00\x00\x00\x00\x00"


def text_row(*values: bytes | None) -> bytes:
    return b"".join(b"\xfb" if v is None else lenenc_int(len(v)) + v for v in values)


def packets(*payloads: bytes, seq: int = 1) -> bytes:
    out = []
    for payload in payloads:
        out.append(frame(payload, seq))
        seq = (seq + len(payload) // MAX_PAYLOAD + 1) & 0xFF
    return b"".join(out)


def result_set(rows: list[bytes], status: int = AUTOCOMMIT, columns: int = 2) -> list[bytes]:
    defs = [column_def(f"c{i}") for i in range(columns)]
    return [lenenc_int(columns), *defs, eof(), *rows, eof(status)]


def find_end(shape: Shape, chunks: list[bytes]) -> tuple[int, ResponseScanner]:
    """Feed chunks; return the absolute offset the scanner reported as the end."""
    scanner = ResponseScanner(shape)
    offset = 0
    for chunk in chunks:
        end = scanner.feed(chunk)
        if end >= 0:
            return offset + end, scanner
        offset += len(chunk)
    return -1, scanner


def splits(data: bytes) -> list[list[bytes]]:
    """Whole, every two-way split, and a few random multi-way chunkings."""
    ways = [[data]] + [[data[:i], data[i:]] for i in range(1, len(data))]
    rng = random.Random(len(data))
    for _ in range(20):
        cuts = sorted(rng.sample(range(1, len(data)), k=min(len(data) - 1, 6)))
        ways.append([data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)])
    return ways


SHAPES: dict[str, tuple[Shape, bytes]] = {
    "ok": (Shape.RESULT, packets(make_ok(AUTOCOMMIT, affected_rows=3, last_insert_id=70000))),
    "err": (Shape.RESULT, packets(make_err(1146, "42S02", "Table 'x' doesn't exist"))),
    "result set": (
        Shape.RESULT,
        packets(
            *result_set([text_row(b"1", b"a"), text_row(None, b"\xfe" * 10), text_row(b"", b"x")])
        ),
    ),
    "empty result set": (Shape.RESULT, packets(*result_set([]))),
    "binary result set": (
        Shape.RESULT,
        packets(lenenc_int(1), column_def("a"), eof(), b"\x00\x00\x05hello", eof(0x0022)),
    ),
    "error mid rows": (
        Shape.RESULT,
        packets(
            lenenc_int(1),
            column_def("a"),
            eof(),
            text_row(b"1"),
            make_err(1317, "70100", "interrupted"),
        ),
    ),
    "multi results": (
        Shape.RESULT,
        packets(
            *result_set([text_row(b"1", b"2")], status=AUTOCOMMIT | MORE_RESULTS),
            *result_set([text_row(b"3", b"4")], status=AUTOCOMMIT | MORE_RESULTS),
            make_ok(AUTOCOMMIT),
        ),
    ),
    "ok then more": (
        Shape.RESULT,
        packets(
            make_ok(AUTOCOMMIT | MORE_RESULTS, 1),
            make_ok(AUTOCOMMIT | MORE_RESULTS, 2),
            make_ok(AUTOCOMMIT),
        ),
    ),
    "many columns": (Shape.RESULT, packets(*result_set([text_row(*[b"v"] * 300)], columns=300))),
    "cursor opened": (
        Shape.CURSOR,
        packets(lenenc_int(1), column_def("a"), eof(AUTOCOMMIT | CURSOR_EXISTS)),
    ),
    # A stored program holding a cursor flags every result it sends: rows still follow.
    "cursor flag on a CALL's text result": (
        Shape.RESULT,
        packets(
            lenenc_int(1),
            column_def("v"),
            eof(AUTOCOMMIT | CURSOR_EXISTS),
            text_row(b"10"),
            eof(AUTOCOMMIT | CURSOR_EXISTS | MORE_RESULTS),
            make_ok(AUTOCOMMIT),
        ),
    ),
    "cursor asked, a CALL holding a cursor": (
        Shape.CURSOR,
        packets(
            lenenc_int(1),
            column_def("v"),
            eof(AUTOCOMMIT | CURSOR_EXISTS | MORE_RESULTS),
            text_row(b"10"),
            eof(AUTOCOMMIT | CURSOR_EXISTS | MORE_RESULTS),
            make_ok(AUTOCOMMIT),
        ),
    ),
    "cursor asked, none opened (CALL)": (
        Shape.CURSOR,
        packets(
            lenenc_int(1),
            column_def("v"),
            eof(AUTOCOMMIT),
            text_row(b"10"),
            eof(AUTOCOMMIT | MORE_RESULTS),
            make_ok(AUTOCOMMIT),
        ),
    ),
    "prepare with params and columns": (
        Shape.PREPARE,
        packets(
            b"\x00\x01\x00\x00\x00\x02\x00\x03\x00\x00\x00\x00",
            column_def("?"),
            column_def("?"),
            column_def("?"),
            eof(),
            column_def("a"),
            column_def("b"),
            eof(),
        ),
    ),
    "prepare no columns": (
        Shape.PREPARE,
        packets(b"\x00\x01\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00", column_def("?"), eof()),
    ),
    "prepare nothing": (
        Shape.PREPARE,
        packets(b"\x00\x07\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"),
    ),
    "prepare error": (Shape.PREPARE, packets(make_err(1064, "42000", "syntax"))),
    "field list": (Shape.FIELDS, packets(column_def("a"), column_def("b"), eof())),
    "fetch": (Shape.ROWS, packets(b"\x00\x00\x01", b"\x00\x00\x02", eof(AUTOCOMMIT | 0x80))),
    "ping": (Shape.SINGLE, packets(make_ok(AUTOCOMMIT))),
    "statistics": (Shape.SINGLE, packets(b"Uptime: 5  Threads: 1")),
}


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_end_is_found_exactly_for_every_chunking(name: str) -> None:
    shape, data = SHAPES[name]
    for chunks in splits(data):
        end, scanner = find_end(shape, chunks)
        assert end == len(data), f"{name}: split {[len(c) for c in chunks]}"
        assert scanner.done


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_no_end_before_the_last_byte(name: str) -> None:
    shape, data = SHAPES[name]
    end, _ = find_end(shape, [data[:-1]])
    assert end == -1


def test_status_flags_of_the_last_result_are_kept() -> None:
    _, data = SHAPES["multi results"]
    _, scanner = find_end(Shape.RESULT, [data])
    assert scanner.status == AUTOCOMMIT
    _, scanner = find_end(Shape.RESULT, [packets(make_ok(0x0001, 1))])
    assert scanner.status == 0x0001  # in transaction, autocommit off


@pytest.mark.parametrize("name", sorted(n for n, (s, _) in SHAPES.items() if s is Shape.RESULT))
def test_one_pass_reading_of_a_whole_response_agrees_with_the_state_machine(name: str) -> None:
    """Whole in one chunk, a response takes the one-pass reading (scanner.whole_result);
    fed a byte at a time, the state machine: the same end, status flags and error."""
    _, data = SHAPES[name]
    whole_end, whole = find_end(Shape.RESULT, [data])
    step_end, step = find_end(Shape.RESULT, [data[i : i + 1] for i in range(len(data))])
    assert (whole_end, whole.status, whole.error) == (step_end, step.status, step.error)


def test_error_is_reported() -> None:
    _, scanner = find_end(Shape.RESULT, [SHAPES["err"][1]])
    assert scanner.error
    _, scanner = find_end(Shape.RESULT, [SHAPES["ok"][1]])
    assert not scanner.error


def test_local_infile_pauses_then_resumes_for_the_final_ok() -> None:
    request = packets(b"\xfbdata.csv")
    scanner = ResponseScanner(Shape.RESULT)
    assert scanner.feed(request[:3]) == -1
    assert scanner.feed(request[3:]) == len(request) - 3
    assert scanner.wants_local_file and not scanner.done
    scanner.resume_after_local_file()
    final = packets(make_ok(AUTOCOMMIT, affected_rows=2), seq=3)
    assert scanner.feed(final) == len(final)
    assert scanner.done


def test_row_of_16_mib_and_more_is_followed_through_continuations() -> None:
    big = lenenc_int(MAX_PAYLOAD + 10) + b"\xfe" * (MAX_PAYLOAD + 10)  # starts like an EOF
    data = packets(lenenc_int(1), column_def("a"), eof(), big, text_row(b"x"), eof())
    for cut in (4 + MAX_PAYLOAD - 3, len(data) // 2, len(data) - 3):
        end, _ = find_end(Shape.RESULT, [data[:cut], data[cut:]])
        assert end == len(data)


def test_row_of_exactly_16_mib_ends_with_an_empty_packet() -> None:
    exact = (
        b"\x00" * MAX_PAYLOAD
    )  # a payload of exactly 2^24-1 bytes is followed by an empty packet
    data = packets(lenenc_int(1), column_def("a"), eof(), exact, eof())
    end, _ = find_end(Shape.RESULT, [data])
    assert end == len(data)
    assert data[-(4 + 5 + 4) : -(4 + 5)][:3] == b"\x00\x00\x00"  # the empty continuation packet


def test_bytes_after_the_end_are_not_consumed() -> None:
    data = SHAPES["ok"][1]
    end, _ = find_end(Shape.RESULT, [data + b"\x01\x00\x00\x00\x00"])
    assert end == len(data)


def test_a_packet_after_done_is_a_protocol_error() -> None:
    scanner = ResponseScanner(Shape.SINGLE)
    data = SHAPES["ping"][1]
    assert scanner.feed(data) == len(data)
    with pytest.raises(ValueError):
        scanner.feed(data)
