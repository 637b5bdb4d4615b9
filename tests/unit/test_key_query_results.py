"""proxy.ml.fastpath.quick.key_query_results: the rows of a small statement's key queries
as the backend socket's callback gets them, in pieces.

Whatever prefix of the results has come, the callback must hear PARTIAL (and wait for
the rest), the rows once they are all in, and None for anything it must leave to the
task: an error, bytes after the results, a packet of 16 MiB.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from proxy.ml.fastpath.quick import PARTIAL, key_query_results
from proxy.upstream.internal import Row, encode_text_row
from proxy.wire.packets import frame
from proxy.wire.result_shape import ResultShape

EOF = b"\xfe\x00\x00\x02\x00"
OK_AS_EOF = b"\xfe\x00\x00\x02\x00\x00\x00" + b"\x00" * 3
DEFINITION = b"\x03def" + b"\x00" * 3 + b"\x01a\x01a\x0c" + bytes(12)
SHAPES = {False: ResultShape(), True: ResultShape(deprecate_eof=True)}
ROWS = st.lists(
    st.tuples(st.one_of(st.none(), st.binary(max_size=300)), st.sampled_from([b"en", None])),
    max_size=3,
)


def result(rows: list[Row], deprecate_eof: bool) -> bytes:
    """A two-column text result set of ``rows`` as the backend frames it."""
    packets = [b"\x02", DEFINITION, DEFINITION]
    if not deprecate_eof:
        packets.append(EOF)
    packets += [encode_text_row(row) for row in rows]
    packets.append(OK_AS_EOF if deprecate_eof else EOF)
    return b"".join(frame(packet, n) for n, packet in enumerate(packets))


@given(results=st.lists(ROWS, min_size=1, max_size=2), deprecate_eof=st.booleans(), data=st.data())
@settings(max_examples=200, deadline=None)
def test_results_are_read_whole_or_waited_for(
    results: list[list[Row]], deprecate_eof: bool, data: st.DataObject
) -> None:
    shape = SHAPES[deprecate_eof]
    reply = b"".join(result(rows, deprecate_eof) for rows in results)
    assert key_query_results(reply, len(results), shape) == results
    cut = data.draw(st.integers(0, len(reply) - 1))
    assert key_query_results(reply[:cut], len(results), shape) is PARTIAL
    assert key_query_results(reply + b"\x01", len(results), shape) is None  # bytes after


def test_an_error_is_left_to_the_task() -> None:
    error = frame(b"\xff\x7a\x04#42S02Table 't' doesn't exist", 1)
    assert key_query_results(error, 1, SHAPES[False]) is None
    reply = result([(b"a", b"en")], False) + error
    assert key_query_results(reply, 2, SHAPES[False]) is None


def test_a_packet_of_16_mib_is_left_to_the_task() -> None:
    """(Among the definitions or the rows: the callbacks never gather such a result.)"""
    huge = b"\xff\xff\xff\x02"  # a header announcing a 16 MiB payload
    head = frame(b"\x02", 0)
    assert key_query_results(head + huge, 1, SHAPES[False]) is None
    rows_next = frame(b"\x02", 0) + frame(DEFINITION, 1) + frame(DEFINITION, 2) + frame(EOF, 3)
    assert key_query_results(rows_next + huge, 1, SHAPES[False]) is None
