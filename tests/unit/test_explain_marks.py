"""EXPLAIN marks on responses the suite's MariaDB cannot produce (MySQL's FORMAT=TREE and
EXPLAIN ANALYZE), and the prefixes that are and are not EXPLAINs."""

from __future__ import annotations

import pytest

from proxy.ml.explain import BATCHED, mark_batched, split_explain
from proxy.upstream.internal import decode_text_row
from proxy.wire.packets import lenenc_str
from proxy.wire.result_shape import ResultShape

EOF_PACKET = b"\xfe\x00\x00\x02\x00"


def column(name: bytes) -> bytes:
    return b"".join(lenenc_str(part) for part in (b"def", b"", b"", b"", name, b"")) + bytes(13)


def one_column(name: bytes, value: bytes) -> list[bytes]:
    return [b"\x01", column(name), EOF_PACKET, lenenc_str(value), EOF_PACKET]


def test_a_tree_plan_gets_a_first_line_and_the_lookup_its_name() -> None:
    tree = b"-> Nested loop inner join\n    -> Table scan on _mlr\n    -> Table scan on t"
    (value,) = decode_text_row(mark_batched(one_column(b"EXPLAIN", tree), ResultShape())[3], 1)
    assert value is not None
    assert value.splitlines()[0] == b"-> " + BATCHED
    assert b"_mlr" not in value and b"Table scan on <batched ml answers>" in value


def test_an_error_and_unknown_shapes_pass_unchanged() -> None:
    error = [b"\xff\x28\x04#42000no"]
    assert mark_batched(error, ResultShape()) == error
    two = [b"\x02", column(b"a"), column(b"b"), EOF_PACKET, lenenc_str(b"1") * 2, EOF_PACKET]
    assert mark_batched(two, ResultShape()) == two


@pytest.mark.parametrize(
    ("sql", "runs"),
    [
        (b"EXPLAIN SELECT 1", False),
        (b"explain extended SELECT 1", False),
        (b"EXPLAIN FORMAT=JSON SELECT 1", False),
        (b"EXPLAIN FORMAT = TREE SELECT 1", False),
        (b"EXPLAIN ANALYZE SELECT 1", True),
        (b"EXPLAIN ANALYZE FORMAT=TREE SELECT 1", True),
        (b"  ANALYZE SELECT 1", True),
        (b"ANALYZE FORMAT=JSON SELECT 1", True),
        (b"DESC SELECT 1", False),
    ],
)
def test_explain_prefixes(sql: bytes, runs: bool) -> None:
    explain = split_explain(sql)
    assert explain is not None and explain.statement == b"SELECT 1"
    assert explain.runs_statement is runs


@pytest.mark.parametrize("sql", [b"ANALYZE TABLE t", b"SELECT 1", b"EXPLAINED", b"ANALYZE"])
def test_not_explains(sql: bytes) -> None:
    assert split_explain(sql) is None
