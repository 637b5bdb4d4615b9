"""Models for the replica tests (``python:tests.support.replica_models:*``): in-process
callables, so the proxies under test (threads of the test process) all reach the same
one, and a test counts at the model what every replica asked."""

from __future__ import annotations

from typing import Any

#: Every input each model was asked, in order (tests clear it).
ASKED: dict[str, list[tuple[Any, ...]]] = {"score": [], "hundred": []}


def score(rows: list[tuple[Any, ...]]) -> list[object]:
    """(a INT, b VARCHAR) -> a * 2 + len(b)."""
    ASKED["score"].extend(rows)
    return [None if a is None else a * 2 + len(b or "") for a, b in rows]


def hundred(rows: list[tuple[Any, ...]]) -> list[object]:
    """Another model: a * 100."""
    ASKED["hundred"].extend(rows)
    return [None if a is None else a * 100 for a, _ in rows]
