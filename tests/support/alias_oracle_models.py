"""Deterministic multi-argument "models" for the endpoint-alias differential oracle.

Each function exists twice: as a Python callable that answers an endpoint alias through
the proxy (``--endpoint ep_NAME=python:tests.support.alias_oracle_models:NAME``), and as a real
MariaDB stored function with the same parameters and RETURNS type (``STORED_FUNCTIONS``),
so tests/oracle/test_alias_oracle.py can compare the proxy's answers with the database
evaluating the same function itself.

The operations are chosen so both sides produce the same bytes:

- ``tagline(a INT, b VARCHAR(20), c DOUBLE) RETURNS VARCHAR(64)``:
  ``a*3 ':' REVERSE(b) '#' CHAR_LENGTH(b) ':' FLOOR(c*100)`` with ``null-a``, ``null-b``,
  ``null-c`` for NULL arguments and ``big-c`` when ``|c| >= 1e15`` (so ``FLOOR(c*100)``
  is an exact integer below 2^63 on both sides). REVERSE and CHAR_LENGTH count code
  points in utf8mb4 as Python's ``[::-1]`` and ``len`` do (no UPPER: MariaDB's and
  Python's case mappings differ for characters such as 'ß'). ``c*100`` is one IEEE
  multiplication on both sides and FLOOR is exact, so no float formatting is involved.
- ``scaled(x DECIMAL(10,2), n BIGINT) RETURNS DECIMAL(12,2)``: ``x * (n MOD 100)``
  (MySQL's MOD truncates towards zero, Python's ``%`` floors: ``_tmod``), ``x * -1`` for
  a NULL ``n``, NULL for a NULL ``x``. Exact decimal arithmetic on both sides, always
  inside DECIMAL(12,2) for DECIMAL(10,2) inputs.
- ``ratio(p DOUBLE, q DOUBLE) RETURNS DOUBLE``: ``p / q``, NULL when either is NULL or
  ``q = 0``: one correctly rounded IEEE division on both sides (the proxy's answer text is
  ``repr(float)``, which MySQL's strtod reads back exactly).
- ``bucket(a INT, s VARCHAR(20), x DECIMAL(10,2)) RETURNS INT``:
  ``(COALESCE(a, 0) MOD 1000) * 1000 + IF(s IS NULL, 999, CHAR_LENGTH(s)) +
  IF(x IS NULL, 0, FLOOR(x))``, always inside INT.

Rows with NULL arguments are sent to the model (an alias is not NULL-in NULL-out), so
each callable handles None itself exactly as its stored twin handles NULL.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

#: The inputs of every batch the proxy sent, per function, in arrival order.
CALLS: dict[str, list[list[tuple[object, ...]]]] = {}
_LOCK = threading.Lock()

BIG_C = 1e15


def _record(name: str, rows: list[tuple[object, ...]]) -> None:
    with _LOCK:
        CALLS.setdefault(name, []).append([tuple(row) for row in rows])


def _tmod(value: int, divisor: int) -> int:
    """MySQL's ``value MOD divisor`` for integers: the remainder takes the dividend's sign."""
    remainder = abs(value) % divisor
    return -remainder if value < 0 else remainder


# --- the answers for one argument tuple -----------------------------------------------


def tagline_of(a: int | None, b: str | None, c: float | None) -> str:
    part_a = "null-a" if a is None else str(a * 3)
    part_b = "null-b" if b is None else f"{b[::-1]}#{len(b)}"
    if c is None:
        part_c = "null-c"
    elif abs(c) >= BIG_C:
        part_c = "big-c"
    else:
        part_c = str(math.floor(c * 100))
    return f"{part_a}:{part_b}:{part_c}"


def scaled_of(x: Decimal | None, n: int | None) -> Decimal | None:
    if x is None:
        return None
    return x * (-1 if n is None else _tmod(n, 100))


def ratio_of(p: float | None, q: float | None) -> float | None:
    if p is None or q is None or q == 0:
        return None
    return p / q


def bucket_of(a: int | None, s: str | None, x: Decimal | None) -> int:
    head = _tmod(0 if a is None else a, 1000) * 1000
    return head + (999 if s is None else len(s)) + (0 if x is None else math.floor(x))


# --- the backend callables (one batch in, one answer per row out) -----------------------


def tagline(rows: list[tuple[int | None, str | None, float | None]]) -> list[str]:
    _record("tagline", list(rows))
    return [tagline_of(*row) for row in rows]


def scaled(rows: list[tuple[Decimal | None, int | None]]) -> list[Decimal | None]:
    _record("scaled", list(rows))
    return [scaled_of(*row) for row in rows]


def ratio(rows: list[tuple[float | None, float | None]]) -> list[float | None]:
    _record("ratio", list(rows))
    return [ratio_of(*row) for row in rows]


def bucket(rows: list[tuple[int | None, str | None, Decimal | None]]) -> list[int]:
    _record("bucket", list(rows))
    return [bucket_of(*row) for row in rows]


# --- the definitions ------------------------------------------------------------------


@dataclass(frozen=True)
class Model:
    """One function: its name, parameter list, RETURNS type and stored-function body."""

    name: str
    params: str
    returns: str
    body: str
    python: Callable[..., object]

    @property
    def endpoint(self) -> str:
        return f"ep_{self.name}"

    @property
    def route(self) -> str:
        """The proxy's ``endpoint`` setting for this function."""
        return f"{self.endpoint}=python:{__name__}:{self.name}"

    def alias_ddl(self) -> str:
        """The Aurora DDL sent through the proxy (stored there as a stub)."""
        return (
            f"CREATE FUNCTION {self.name}({self.params}) RETURNS {self.returns}"
            f" ALIAS AWS_SAGEMAKER_INVOKE_ENDPOINT ENDPOINT NAME '{self.endpoint}'"
        )

    def stored_ddl(self) -> str:
        """The same function as a real stored function (the direct side)."""
        return (
            f"CREATE FUNCTION {self.name}({self.params}) RETURNS {self.returns}"
            f" DETERMINISTIC RETURN {self.body}"
        )


MODELS = (
    Model(
        "tagline",
        "a INT, b VARCHAR(20), c DOUBLE",
        "VARCHAR(64)",
        "CONCAT(IF(a IS NULL, 'null-a', a * 3), ':',"
        " IF(b IS NULL, 'null-b', CONCAT(REVERSE(b), '#', CHAR_LENGTH(b))), ':',"
        " IF(c IS NULL, 'null-c', IF(ABS(c) >= 1e15, 'big-c', CAST(FLOOR(c * 100) AS SIGNED))))",
        tagline,
    ),
    Model(
        "scaled",
        "x DECIMAL(10,2), n BIGINT",
        "DECIMAL(12,2)",
        "IF(x IS NULL, NULL, x * IF(n IS NULL, -1, n MOD 100))",
        scaled,
    ),
    Model(
        "ratio",
        "p DOUBLE, q DOUBLE",
        "DOUBLE",
        "IF(p IS NULL OR q IS NULL OR q = 0, NULL, p / q)",
        ratio,
    ),
    Model(
        "bucket",
        "a INT, s VARCHAR(20), x DECIMAL(10,2)",
        "INT",
        "(COALESCE(a, 0) MOD 1000) * 1000 + IF(s IS NULL, 999, CHAR_LENGTH(s))"
        " + IF(x IS NULL, 0, FLOOR(x))",
        bucket,
    ),
)
ROUTES = tuple(model.route for model in MODELS)


def calls(name: str) -> list[list[tuple[object, ...]]]:
    """The batches ``name`` received so far."""
    with _LOCK:
        return [list(batch) for batch in CALLS.get(name, [])]


def reset() -> None:
    """Forget the recorded calls."""
    with _LOCK:
        CALLS.clear()
