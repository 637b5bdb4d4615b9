"""SageMaker's CSV wire format, as Aurora uses it for CREATE FUNCTION ... ALIAS.

Request: ``text/csv``, one line per SQL row, the arguments in declared order; commas,
quotes and line breaks inside a value are quoted (RFC 4180); NULL is an empty field and an
empty string is ``""``; numbers are written without loss (shortest round-trip text for
floats, exact text for decimals and integers of any size).
Response: CSV lines or JSON (a list, or an object with a ``predictions`` list); the first
value of each row is the result. The answer stays text: the SQL rewrite casts it to the
function's declared RETURNS type, so MySQL itself converts it as it would.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Sequence
from decimal import Decimal

from ml_backends.errors import InferenceFailed

CONTENT_TYPE = "text/csv"
#: SageMaker's limit on a request's payload (4 MB for serverless endpoints).
MAX_PAYLOAD = 6 * 1024 * 1024


def encode_field(value: object) -> str:
    """One argument as a CSV field (before quoting); NULL is the empty field."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InferenceFailed(f"cannot send the non-finite number {value!r}")
        return repr(value)
    if isinstance(value, int | Decimal):
        return str(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def encode_rows(rows: Sequence[Sequence[object]]) -> bytes:
    """The request body for ``rows``; an empty string is quoted so it is not NULL."""
    lines = []
    for row in rows:
        fields = []
        for value in row:
            text = encode_field(value)
            if value is not None and (text == "" or any(c in text for c in ',"\r\n')):
                text = '"' + text.replace('"', '""') + '"'
            fields.append(text)
        lines.append(",".join(fields))
    return ("\n".join(lines) + "\n").encode("utf-8")


def decode_answers(body: bytes, content_type: str, expected: int) -> list[str | None]:
    """The first value of each answered row, as text (None for an empty CSV field or a
    JSON null); a different number of rows than asked for is an error."""
    text = body.decode("utf-8", "replace")
    if "json" in content_type.lower() or text.lstrip()[:1] in ("[", "{"):
        answers = _from_json(text)
    else:
        answers = _from_csv(text)
    if len(answers) != expected:
        raise InferenceFailed(f"the endpoint answered {len(answers)} rows for {expected}")
    return answers


def _from_json(text: str) -> list[str | None]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InferenceFailed(f"the endpoint's JSON answer is malformed: {exc.msg}") from exc
    if isinstance(data, dict):
        data = data.get("predictions")
    if not isinstance(data, list):
        raise InferenceFailed(
            "the endpoint's JSON answer is neither a list nor {'predictions': [...]}"
        )
    return [_first(item) for item in data]


def _first(item: object) -> str | None:
    while isinstance(item, list):
        item = item[0] if item else None
    if isinstance(item, dict) and item:
        item = next(iter(item.values()))
    if item is None:
        return None
    if isinstance(item, bool):
        return "1" if item else "0"
    return repr(item) if isinstance(item, float) else str(item)


def _from_csv(text: str) -> list[str | None]:
    rows = [row for row in csv.reader(io.StringIO(text)) if row]
    return [row[0] if row[0] != "" else None for row in rows]


def split_by_size(
    rows: Sequence[Sequence[object]], limit: int = MAX_PAYLOAD
) -> list[list[Sequence[object]]]:
    """Consecutive groups of rows whose encoded requests stay within ``limit`` bytes; a
    single row over the limit is an error (SageMaker would refuse it)."""
    groups: list[list[Sequence[object]]] = [[]]
    size = 0
    for row in rows:
        row_size = len(encode_rows([row]))
        if row_size > limit:
            raise InferenceFailed(
                f"one row encodes to {row_size} bytes, over the {limit}-byte limit"
            )
        if size + row_size > limit and groups[-1]:
            groups.append([])
            size = 0
        groups[-1].append(row)
        size += row_size
    return groups
