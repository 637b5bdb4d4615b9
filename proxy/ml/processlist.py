"""SHOW [FULL] PROCESSLIST through the proxy: what sessions running an ML statement do.

The backend lists the threads; a session's ML statement is the proxy's work, done
mostly while its backend thread is idle (Command Sleep) or runs the proxy's own steps
(key queries, lookup-table INSERTs). The proxy rewrites the rows of those threads
(proxy.ml.activity's snapshots, this worker's and its siblings'):

- Command ``Query`` (``Execute`` for a prepared statement), Time the seconds since the
  statement began, Info the client's statement (its first 100 characters without FULL,
  as the server cuts it);
- while the proxy waits on the model, or the backend thread is idle between the proxy's
  steps: State ``Batched machine learning`` and (MariaDB's column) Progress, the share of
  the statement's backend requests answered, by MariaDB's stage formula.

Which rows a client sees stays the backend's decision (its own threads, or all with
PROCESS): only rows the backend returned are rewritten. information_schema.PROCESSLIST
is left as the backend reports it: a query over it filters and sorts on the backend's
values, so rewriting its result could not stay consistent with its WHERE or ORDER BY.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

from proxy.ml.activity import PROGRESS_STATE, MLSnapshot
from proxy.upstream.internal import Row, decode_text_row, encode_text_row
from proxy.wire.packets import ERR_HEADER, OK_HEADER, read_lenenc_int, read_lenenc_str

_SHOW_PROCESSLIST = re.compile(rb"^\s*SHOW\s+(FULL\s+)?PROCESSLIST\s*;?\s*$", re.IGNORECASE)

#: SHOW PROCESSLIST (without FULL) shows this many characters of Info (the server's
#: PROCESS_LIST_WIDTH).
SHORT_INFO_CHARS = 100


def parse_show_processlist(sql: bytes) -> bool | None:
    """Whether ``sql`` is SHOW FULL PROCESSLIST (True) or SHOW PROCESSLIST (False);
    None for any other statement.

    >>> parse_show_processlist(b"show full processlist;"), parse_show_processlist(b"SHOW 1")
    (True, None)
    """
    if b"rocesslist" not in sql[:64].lower():
        return None
    match = _SHOW_PROCESSLIST.match(sql)
    return None if match is None else match.group(1) is not None


def rewrite_processlist(
    response: list[bytes],
    running: Mapping[int, MLSnapshot],
    full: bool,
    encode: Callable[[str], bytes],
) -> list[bytes]:
    """The backend's SHOW PROCESSLIST result (its payloads) with the rows of threads in
    ``running`` rewritten; ``encode`` writes text in the reader's character set."""
    if not running or response[0][0] in (OK_HEADER, ERR_HEADER):
        return response
    count, _ = read_lenenc_int(response[0], 0)
    columns = {_column_name(p).lower(): i for i, p in enumerate(response[1 : count + 1])}
    if "id" not in columns:
        return response
    rows = []
    for payload in response[count + 2 : -1]:
        values = decode_text_row(payload, count)
        thread = values[columns["id"]]
        snapshot = running.get(int(thread)) if thread is not None and thread.isdigit() else None
        if snapshot is not None:
            payload = encode_text_row(_rewritten(values, columns, snapshot, full, encode))
        rows.append(payload)
    return [*response[: count + 2], *rows, response[-1]]


def _rewritten(
    values: Row,
    columns: Mapping[str, int],
    snapshot: MLSnapshot,
    full: bool,
    encode: Callable[[str], bytes],
) -> Row:
    row = list(values)

    def put(column: str, value: bytes) -> None:
        if column in columns:
            row[columns[column]] = value

    idle = "command" in columns and values[columns["command"]] == b"Sleep"
    info = snapshot.info if full else snapshot.info[:SHORT_INFO_CHARS]
    put("command", snapshot.command.encode())
    put("time", str(snapshot.seconds).encode())
    put("info", encode(info))
    if snapshot.waiting or idle:
        put("state", PROGRESS_STATE.encode())
        put("progress", f"{snapshot.percent:.3f}".encode())
    return tuple(row)


def _column_name(definition: bytes) -> str:
    """A column definition's name (after catalog, schema, table and original table)."""
    pos = 0
    for _ in range(4):
        _, pos = read_lenenc_str(definition, pos)
    name, _ = read_lenenc_str(definition, pos)
    return name.decode("utf-8", "replace")
