"""EXPLAIN of a statement with ML calls: the backend's plan of the rewritten statement,
with ``Batched machine learning`` in the Extra column of the rows where ML answers enter
(the lookups in the proxy's temporary tables), as Aurora shows it."""

from __future__ import annotations

import re

from proxy.upstream.internal import decode_text_row
from proxy.wire.packets import EOF_HEADER, ERR_HEADER, lenenc_str, read_lenenc_str

_EXPLAIN = re.compile(
    rb"^(\s*(?:EXPLAIN|DESCRIBE|DESC)\s+(?:(?:EXTENDED|PARTITIONS)\s+|FORMAT\s*=\s*\w+\s+)?)",
    re.IGNORECASE,
)
BATCHED = b"Batched machine learning"
#: The alias the rewriter gives its lookup tables (see proxy.ml.path).
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


def mark_batched(response: list[bytes]) -> list[bytes]:
    """The response with Extra set on the lookup rows; other shapes pass unchanged."""
    if response[0][0] == ERR_HEADER or len(response) < 3:
        return response
    count = response[0][0]
    names = [name.lower() for name in column_names(response[1 : 1 + count])]
    if b"table" not in names or b"extra" not in names:
        return response  # FORMAT=JSON and other shapes
    table, extra = names.index(b"table"), names.index(b"extra")
    out = response[: count + 2]
    for payload in response[count + 2 :]:
        if (payload[0] == EOF_HEADER and len(payload) < 9) or payload[0] == ERR_HEADER:
            out.append(payload)
            continue
        row = list(decode_text_row(payload, count))
        if row[table] == LOOKUP_ALIAS:
            before = row[extra]
            row[extra] = before + b"; " + BATCHED if before else BATCHED
        out.append(b"".join(b"\xfb" if v is None else lenenc_str(v) for v in row))
    return out
