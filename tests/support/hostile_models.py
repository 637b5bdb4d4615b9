"""Models that answer what no model should: ``python:`` targets for the adversarial tests.

Each answers every input normally except texts starting with ``bad``, which get the value
a test put in ``HOSTILE`` (one per kind of function). ``RELEASE`` holds the ``blocking``
model until a test sets it; ``BIG`` is one shared 1 MB answer (shared, so the model's own
memory stays small whatever the proxy does with it).
"""

from __future__ import annotations

import threading
from typing import Any

from tests.support import switchable_backend

#: The answer ``bad...`` inputs get, by model: "sentiment", "text".
HOSTILE: dict[str, object] = {"sentiment": None, "text": None}
RELEASE = threading.Event()
BIG = "x" * (1 << 20)


def _is_bad(value: object) -> bool:
    return isinstance(value, str) and value.startswith("bad")


def sentiment(inputs: list[tuple[str, str]]) -> list[object]:
    """The Comprehend functions' model (a (label, confidence) pair per input)."""
    return [
        HOSTILE["sentiment"] if _is_bad(text) else switchable_backend.answer(text)
        for text, _ in inputs
    ]


def text(inputs: list[tuple[Any, ...]]) -> list[object]:
    """An alias's model: the input upper-cased."""
    return [HOSTILE["text"] if _is_bad(row[0]) else str(row[0]).upper() for row in inputs]


def big(inputs: list[tuple[Any, ...]]) -> list[object]:
    """1 MB for every input."""
    return [BIG for _ in inputs]


async def instant(inputs: list[tuple[Any, ...]]) -> list[object]:
    """A cheap answer per input (its length), on the event loop: no worker thread
    competes with the loop for the interpreter lock."""
    return [len(str(row[0])) for row in inputs]


def nothing(inputs: list[tuple[Any, ...]]) -> list[object]:
    """NULL for every input."""
    return [None for _ in inputs]


def blocking(inputs: list[tuple[Any, ...]]) -> list[object]:
    """NULL for every input, once RELEASE is set (at most 30 s)."""
    RELEASE.wait(30)
    return [None for _ in inputs]
