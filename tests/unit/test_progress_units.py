"""Sans-IO pieces of issue 12: progress report packets, renumbering a relayed response
after them, and the SHOW PROCESSLIST rewrite (no sockets; the end-to-end checks are in
tests/integration/test_ml_cancel.py)."""

from __future__ import annotations

import doctest
from types import ModuleType

import pytest

from proxy.ml import processlist
from proxy.ml.activity import PROGRESS_STATE, MLSnapshot
from proxy.ml.processlist import parse_show_processlist, rewrite_processlist
from proxy.upstream.internal import decode_text_row, encode_text_row
from proxy.wire import packets, seq_shift
from proxy.wire.packets import Progress, frame, lenenc_str, make_progress, parse_progress
from proxy.wire.seq_shift import SequenceShift


@pytest.mark.parametrize("module", [packets, processlist, seq_shift], ids=lambda m: m.__name__)
def test_doctests(module: ModuleType) -> None:
    assert doctest.testmod(module).failed == 0


# -- progress reports --------------------------------------------------------------------


@pytest.mark.parametrize("percent", [0.0, 0.001, 45.5, 99.999, 100.0])
def test_progress_report_round_trip(percent: float) -> None:
    report = Progress(2, 3, percent, PROGRESS_STATE)
    assert parse_progress(make_progress(report)) == report


def test_progress_report_layout_is_mariadbs() -> None:
    """0xFF, code 0xFFFF, 1 string, stage, max stage, thousandths of a percent (3 bytes,
    little-endian: MariaDB's int3store of 100000 * counter / max_counter), the state."""
    payload = make_progress(Progress(1, 1, 12.345, "Batched machine learning"))
    assert payload[:6] == b"\xff\xff\xff\x01\x01\x01"
    assert int.from_bytes(payload[6:9], "little") == 12345
    assert payload[9:] == lenenc_str(b"Batched machine learning")


def test_an_error_packet_is_no_progress_report() -> None:
    assert (
        parse_progress(packets.make_err(1317, "70100", "Query execution was interrupted")) is None
    )


# -- renumbering ------------------------------------------------------------------------


def response(seqs: list[int], sizes: list[int]) -> bytes:
    return b"".join(
        frame(bytes([0x41 + i % 26]) * size, seq)
        for i, (seq, size) in enumerate(zip(seqs, sizes, strict=True))
    )


@pytest.mark.parametrize("offset", [1, 3, 255])
def test_shift_renumbers_every_packet_however_the_stream_is_cut(offset: int) -> None:
    sizes = [1, 0, 5, 250, 3, 0, 1]
    original = response(list(range(1, 8)), sizes)
    expected = response([(s + offset) & 0xFF for s in range(1, 8)], sizes)
    for cut in range(1, len(original) + 1):  # chunks of every size
        shift = SequenceShift(offset)
        chunks = [original[i : i + cut] for i in range(0, len(original), cut)]
        assert b"".join(bytes(shift.apply(c)) for c in chunks) == expected, cut
    for first in range(len(original)):  # a cut at every position
        shift = SequenceShift(offset)
        assert (
            bytes(shift.apply(original[:first])) + bytes(shift.apply(original[first:])) == expected
        )


def test_shift_by_nothing_returns_the_chunk_itself() -> None:
    chunk = response([1], [3])
    assert SequenceShift(0).apply(chunk) is chunk


# -- SHOW PROCESSLIST ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "full"),
    [
        (b"SHOW PROCESSLIST", False),
        (b"show full processlist;", True),
        (b"  SHOW  FULL\nPROCESSLIST ", True),
        (b"SHOW PROCESSLIST LIKE 'x'", None),
        (b"SELECT * FROM information_schema.PROCESSLIST", None),
        (b"SHOW STATUS", None),
    ],
)
def test_parse_show_processlist(sql: bytes, full: bool | None) -> None:
    assert parse_show_processlist(sql) == full


COLUMNS = ["Id", "User", "Host", "db", "Command", "Time", "State", "Info", "Progress"]


def definition(name: str) -> bytes:
    """A column definition with the fields the rewrite reads (catalog .. name)."""
    parts = [b"def", b"", b"", b"", name.encode(), name.encode()]
    return b"".join(lenenc_str(p) for p in parts) + b"\x0c" + bytes(12)


def result(rows: list[tuple[bytes | None, ...]]) -> list[bytes]:
    eof = b"\xfe\x00\x00\x02\x00"
    return [
        bytes([len(COLUMNS)]),
        *(definition(c) for c in COLUMNS),
        eof,
        *(encode_text_row(r) for r in rows),
        eof,
    ]


IDLE = (b"12", b"app", b"h:1", b"db", b"Sleep", b"3", b"", None, b"0.000")
RUNNING_KEY_QUERY = (
    b"13",
    b"app",
    b"h:2",
    b"db",
    b"Query",
    b"0",
    b"Sending data",
    b"SELECT k",
    b"0.000",
)
OTHER = (b"14", b"app", b"h:3", None, b"Query", b"0", b"starting", b"SHOW PROCESSLIST", b"0.000")
STATEMENT = "SELECT aws_comprehend_detect_sentiment(t, 'en') FROM texts WHERE " + "x" * 120


def rows_of(payloads: list[bytes]) -> list[tuple[bytes | None, ...]]:
    return [decode_text_row(p, len(COLUMNS)) for p in payloads[len(COLUMNS) + 2 : -1]]


def test_rewrite_shows_the_ml_statement_of_an_idle_backend_thread() -> None:
    running = {12: MLSnapshot(12, "Query", 7, False, 35.0, STATEMENT)}
    full = rewrite_processlist(result([IDLE, OTHER]), running, True, str.encode)
    assert rows_of(full) == [
        (
            b"12",
            b"app",
            b"h:1",
            b"db",
            b"Query",
            b"7",
            PROGRESS_STATE.encode(),
            STATEMENT.encode(),
            b"35.000",
        ),
        OTHER,
    ]
    short = rewrite_processlist(result([IDLE]), running, False, str.encode)
    assert rows_of(short)[0][7] == STATEMENT[:100].encode()


def test_rewrite_keeps_the_backends_state_while_it_runs_a_step_of_the_statement() -> None:
    """The backend runs a key query of the statement: its State and Progress stay; the
    statement shown is the client's."""
    running = {13: MLSnapshot(13, "Execute", 2, False, 10.0, STATEMENT)}
    (row,) = rows_of(rewrite_processlist(result([RUNNING_KEY_QUERY]), running, True, str.encode))
    assert row == (
        b"13",
        b"app",
        b"h:2",
        b"db",
        b"Execute",
        b"2",
        b"Sending data",
        STATEMENT.encode(),
        b"0.000",
    )
    waiting = {13: MLSnapshot(13, "Query", 2, True, 10.0, STATEMENT)}
    (row,) = rows_of(rewrite_processlist(result([RUNNING_KEY_QUERY]), waiting, True, str.encode))
    assert (row[6], row[8]) == (PROGRESS_STATE.encode(), b"10.000")


def test_rewrite_leaves_other_results_alone() -> None:
    error = [packets.make_err(1227, "42000", "denied")]
    running = {12: MLSnapshot(12, "Query", 1, True, 1.0, "x")}
    assert rewrite_processlist(error, running, True, str.encode) == error
    untouched = result([IDLE, OTHER])
    assert rewrite_processlist(untouched, {99: running[12]}, True, str.encode) == untouched
