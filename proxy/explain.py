"""EXPLAIN of a statement with ML calls: the backend's plan of the rewritten statement,
with ``Batched machine learning`` in the Extra column of the rows where ML answers enter
(the lookups in the proxy's temporary tables), as Aurora shows it."""

from __future__ import annotations

import re

from proxy.internal import decode_text_row
from proxy.packets import lenenc_str, read_lenenc_str
from proxy.result_shape import ResultShape, TextResult, split_result

_EXPLAIN = re.compile(
    rb"^(\s*(?:EXPLAIN|DESCRIBE|DESC)\s+(?:(?:EXTENDED|PARTITIONS)\s+|FORMAT\s*=\s*\w+\s+)?)",
    re.IGNORECASE,
)
BATCHED = b"Batched machine learning"
#: The alias the rewriter gives its lookup tables (see proxy.ml_path).
LOOKUP_ALIAS = b"_mlr"


def split_explain(sql: bytes) -> tuple[bytes, bytes] | None:
    """(the EXPLAIN prefix, the statement explained), or None when not an EXPLAIN. The
    prefix is ASCII words and spaces, the same bytes in every client character set.

    >>> split_explain(b"explain format=traditional SELECT 1")
    (b'explain format=traditional ', b'SELECT 1')
    """
    match = _EXPLAIN.match(sql)
    if match is None:
        return None
    return match.group(1), sql[match.end() :]


def column_names(definitions: list[bytes]) -> list[bytes]:
    """Column names from ColumnDefinition41 payloads (the fifth length-encoded string)."""
    names = []
    for payload in definitions:
        pos = 0
        for _ in range(4):
            _, pos = read_lenenc_str(payload, pos)
        name, _ = read_lenenc_str(payload, pos)
        names.append(name)
    return names


def mark_batched(response: list[bytes], shape: ResultShape) -> list[bytes]:
    """The response with Extra set on the lookup rows; other shapes pass unchanged."""
    result = split_result(response, shape)
    if result is None or len(result.head) < 1 + result.column_count:
        return response
    count = result.column_count
    names = [name.lower() for name in column_names(result.head[1 : 1 + count])]
    if b"table" not in names or b"extra" not in names:
        return response  # FORMAT=JSON and other shapes
    table, extra = names.index(b"table"), names.index(b"extra")
    rows = []
    for payload in result.rows:
        row = list(decode_text_row(payload, count))
        if row[table] == LOOKUP_ALIAS:
            before = row[extra]
            row[extra] = before + b"; " + BATCHED if before else BATCHED
        rows.append(b"".join(b"\xfb" if v is None else lenenc_str(v) for v in row))
    return TextResult(result.head, rows, result.end).payloads()
