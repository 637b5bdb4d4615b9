"""EXPLAIN of a statement with ML calls: the backend's plan of the rewritten statement,
marked ``Batched machine learning`` where ML answers enter, as Aurora shows it, in every
form the servers have:

- the tabular forms (EXPLAIN, EXTENDED, PARTITIONS, MariaDB's ANALYZE): Extra of the rows
  reading the answers, whose table (the proxy's lookup, ``_mlr`` in the rewrite) is shown
  as ``<batched ml answers>``; when the answers are written into the statement itself
  (few distinct inputs) there is no such row, and the first row, which the calls' inputs
  come with, carries the mark;
- FORMAT=JSON (and MariaDB's ANALYZE FORMAT=JSON): ``"batched_machine_learning": true`` in
  the query block and in each lookup's table object, which is renamed as above;
- MySQL's FORMAT=TREE and EXPLAIN ANALYZE: a first line ``-> Batched machine learning``.

The forms that run the statement (MariaDB's ANALYZE, MySQL's EXPLAIN ANALYZE) run it with
its real answers; the others ask no model.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from proxy.upstream.internal import decode_text_row
from proxy.wire.packets import lenenc_str, read_lenenc_str
from proxy.wire.result_shape import ResultShape, TextResult, split_result

_FORMAT = rb"FORMAT\s*=\s*\w+\s+"
_EXPLAIN = re.compile(
    rb"^(\s*(?:"
    rb"(?:EXPLAIN|DESCRIBE|DESC)\s+(?:(?:EXTENDED|PARTITIONS|ANALYZE)\s+|" + _FORMAT + rb")*"
    rb"|ANALYZE\s+(?!TABLE\b)(?:" + _FORMAT + rb")?"
    rb"))",
    re.IGNORECASE,
)
_RUNS = re.compile(rb"^\s*(?:ANALYZE|(?:EXPLAIN|DESCRIBE|DESC)\s.*\bANALYZE)\b", re.IGNORECASE)
BATCHED = b"Batched machine learning"
#: The alias the rewriter gives its lookup tables (see proxy.ml.path).
LOOKUP_ALIAS = b"_mlr"
#: What a lookup is called in the plans a user reads.
SHOWN_AS = b"<batched ml answers>"


@dataclass(frozen=True)
class Explain:
    """An EXPLAIN (or ANALYZE) of a statement."""

    prefix: bytes
    statement: bytes

    @property
    def runs_statement(self) -> bool:
        """ANALYZE forms run the statement: it needs its real answers."""
        return _RUNS.match(self.prefix) is not None


def split_explain(sql: bytes) -> Explain | None:
    """The EXPLAIN prefix and the statement explained, or None when not an EXPLAIN. The
    prefix is ASCII words and spaces, the same bytes in every client character set.

    >>> split_explain(b"explain format=traditional SELECT 1")
    Explain(prefix=b'explain format=traditional ', statement=b'SELECT 1')
    >>> split_explain(b"ANALYZE FORMAT=JSON SELECT 1").runs_statement
    True
    >>> split_explain(b"ANALYZE TABLE t") is None
    True
    """
    match = _EXPLAIN.match(sql)
    if match is None or not match.group(1).strip():
        return None
    return Explain(match.group(1), sql[match.end() :])


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
    """The response with the ML marks of its form (module docstring); an error and
    shapes the proxy does not know pass unchanged. ``shape``: how results look on the
    connection (proxy.wire.result_shape)."""
    result = split_result(response, shape)
    if result is None or len(result.head) < 1 + result.column_count:
        return response
    count = result.column_count
    names = [name.lower() for name in column_names(result.head[1 : 1 + count])]
    if b"table" in names and b"extra" in names:
        rows = _mark_table(result.rows, count, names.index(b"table"), names.index(b"extra"))
    elif count == 1:
        rows = _mark_document(result.rows)
    else:
        return response
    return TextResult(result.head, rows, result.end).payloads()


def _encode_row(row: list[bytes | None]) -> bytes:
    return b"".join(b"\xfb" if v is None else lenenc_str(v) for v in row)


def _with_mark(extra: bytes | None) -> bytes:
    return extra + b"; " + BATCHED if extra else BATCHED


def _mark_table(rows: list[bytes], count: int, table: int, extra: int) -> list[bytes]:
    out = list(rows)
    marked = False
    for i, payload in enumerate(rows):
        row = list(decode_text_row(payload, count))
        if row[table] == LOOKUP_ALIAS:
            row[table], row[extra] = SHOWN_AS, _with_mark(row[extra])
            out[i], marked = _encode_row(row), True
    if not marked and rows:  # the answers are in the statement's text
        row = list(decode_text_row(rows[0], count))
        row[extra] = _with_mark(row[extra])
        out[0] = _encode_row(row)
    return out


def _mark_document(rows: list[bytes]) -> list[bytes]:
    """FORMAT=JSON (a JSON document) or FORMAT=TREE (text) in one column."""
    if not rows:
        return rows
    (text,) = decode_text_row(rows[0], 1)
    if text is None:
        return rows
    try:
        document = json.loads(text)
    except ValueError:
        marked = b"-> " + BATCHED + b"\n" + text.replace(LOOKUP_ALIAS, SHOWN_AS)
    else:
        marked = json.dumps(_mark_json(document), indent=2).encode()
    return [lenenc_str(marked), *rows[1:]]


def _mark_json(document: Any) -> Any:
    """The query block and every lookup's table object marked; lookups renamed."""

    alias, shown = LOOKUP_ALIAS.decode(), SHOWN_AS.decode()

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            if node.get("table_name") == alias:
                node["table_name"] = shown
                node["batched_machine_learning"] = True
            return {key: walk(child) for key, child in node.items()}
        if isinstance(node, list):
            return [walk(child) for child in node]
        if isinstance(node, str):  # conditions name the lookup's columns through it
            return node.replace(f"{alias}.", f"{shown}.")
        return node

    document = walk(document)
    if isinstance(document, dict):
        block = document.get("query_block", document)
        if isinstance(block, dict):
            block["batched_machine_learning"] = True
    return document
