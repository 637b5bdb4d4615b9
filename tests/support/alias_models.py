"""Tiny deterministic models for ``python:tests.support.alias_models:...`` endpoint targets.

Each takes the batch as a list of argument tuples (the python: target's contract) and
answers one value per tuple, in order; tests compute the same answers in Python.
"""

from __future__ import annotations

from decimal import Decimal


def score(a: object, b: object) -> Decimal | None:
    """``a + len(b) / 2`` (NULL in, NULL out): a number that shows both arguments arrived
    in their order and with their types."""
    if a is None or b is None:
        return None
    return Decimal(int(a)) + Decimal(len(str(b))) / 2  # type: ignore[call-overload]


def score_batch(inputs: list[tuple[object, ...]]) -> list[Decimal | None]:
    """The endpoint target: :func:`score` of each (a, b) tuple."""
    return [score(*row) for row in inputs]
