"""SHOW STATUS with the Aurora_ml_* counters, and FLUSH STATUS resetting them.

The backend answers SHOW STATUS itself; the proxy adds its counter rows (Aurora's seven
and its own Mlproxy_ml_throttled_cnt; with GLOBAL, each service's Mlproxy_ml_send_rate_*
too), filtered by the same LIKE pattern, in sorted position, and renumbers the packets.
SHOW [SESSION | LOCAL] STATUS shows the session's own counters; SHOW GLOBAL STATUS the
proxy's, to accounts with the PROCESS privilege only (proxy.ml.status_access): without it
the rows are left out, as the server leaves out what an account may not see. A SHOW
STATUS with a WHERE clause is passed through without them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from proxy.wire.packets import frame_all, lenenc_str
from proxy.wire.result_shape import ResultShape, TextResult, split_result

_SHOW_STATUS = re.compile(
    rb"^\s*SHOW\s+(?:(GLOBAL|SESSION|LOCAL)\s+)?STATUS"
    rb"(?:\s+LIKE\s+'((?:[^'\\]|\\.|'')*)')?\s*;?\s*$",
    re.IGNORECASE | re.DOTALL,
)
_FLUSH_STATUS = re.compile(
    rb"^\s*FLUSH\s+(?:(?:LOCAL|NO_WRITE_TO_BINLOG)\s+)?STATUS\s*;?\s*$", re.IGNORECASE
)


@dataclass(frozen=True)
class ShowStatus:
    """A SHOW STATUS the proxy completes; ``pattern`` is its LIKE pattern, if any;
    ``is_global`` for SHOW GLOBAL STATUS."""

    pattern: str | None
    is_global: bool = False


def parse_show_status(sql: bytes) -> ShowStatus | None:
    """Recognise SHOW [GLOBAL|SESSION] STATUS [LIKE 'pattern'].

    >>> parse_show_status(b"show global status like 'Aurora_ml%'")
    ShowStatus(pattern='Aurora_ml%', is_global=True)
    >>> parse_show_status(b"SHOW STATUS")
    ShowStatus(pattern=None, is_global=False)
    >>> parse_show_status(b"SHOW STATUS WHERE Value > 0") is None
    True
    """
    if sql.lstrip()[:4].lower() != b"show":
        return None
    match = _SHOW_STATUS.match(sql)
    if match is None:
        return None
    scope, raw = match.group(1), match.group(2)
    pattern = None if raw is None else raw.decode("utf-8", "replace").replace("''", "'")
    return ShowStatus(pattern, scope is not None and scope.upper() == b"GLOBAL")


def is_flush_status(sql: bytes) -> bool:
    return sql.lstrip()[:5].lower() == b"flush" and _FLUSH_STATUS.match(sql) is not None


def like_matches(pattern: str | None, name: str) -> bool:
    """SQL LIKE, case-insensitive as SHOW STATUS compares: % any run, _ one character,
    backslash escapes."""
    if pattern is None:
        return True
    regex, escaped = [], False
    for char in pattern:
        if escaped:
            regex.append(re.escape(char))
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == "%":
            regex.append(".*")
        elif char == "_":
            regex.append(".")
        else:
            regex.append(re.escape(char))
    return re.fullmatch("".join(regex), name, re.IGNORECASE | re.DOTALL) is not None


def merge_rows(
    response: list[bytes],
    extra: list[tuple[str, str]],
    shape: ResultShape,
    replaced: Mapping[str, str] | None = None,
) -> bytes:
    """The backend's SHOW STATUS response (payloads) with ``extra`` rows added in
    name order and the values of ``replaced``'s rows (by name, any case) replaced,
    framed again from sequence id 1."""
    result = split_result(response, shape) if extra or replaced else None
    if result is None:
        return frame_all(response)
    rows = result.rows
    if replaced:
        values = {name.lower(): value for name, value in replaced.items()}
        rows = [_with_value(row, values) for row in rows]
    added = [_status_row(name, value) for name, value in extra]
    rows = sorted(rows + added, key=_row_name)
    return frame_all(TextResult(result.head, rows, result.end).payloads())


def _status_row(name: str, value: str) -> bytes:
    return lenenc_str(name.encode()) + lenenc_str(value.encode())


def _with_value(row: bytes, values: Mapping[str, str]) -> bytes:
    """A (Variable_name, Value) row, its value replaced when its name is in ``values``."""
    length = row[0]  # status variable names are shorter than 251 bytes
    name = row[1 : 1 + length]
    value = values.get(name.decode("ascii", "replace").lower())
    return row if value is None else lenenc_str(name) + lenenc_str(value.encode())


def _row_name(payload: bytes) -> bytes:
    length = payload[0]  # status variable names are shorter than 251 bytes
    return payload[1 : 1 + length].lower()
