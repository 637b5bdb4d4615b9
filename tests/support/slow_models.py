"""Slow models for the cancel and progress tests (``python:tests.support.slow_models:*``).

Each batch takes ``SECONDS_PER_BATCH``, so a statement of N batches with one request in
flight takes about N times that. The model records when each batch starts and how many
have finished, so a test can count the requests that started after a KILL and compare
a statement's reported progress with the batches really answered.

``sentiment`` sleeps in a worker thread (as any blocking ``python:`` target runs: an
abandoned batch runs to its end); ``sentiment_async`` is a coroutine on the proxy's
event loop, so its starts are recorded in the loop itself, strictly before or after the
proxy handles a KILL: the test's count of requests started after it is exact.
"""

from __future__ import annotations

import asyncio
import threading
import time

from ml_backends.errors import RetryableError
from tests.support.switchable_backend import answer

#: How long each batch takes; tests set it with reset().
SECONDS_PER_BATCH = 0.3
#: time.monotonic() at the start of each batch, in order.
STARTED: list[float] = []
#: Batches answered so far.
FINISHED: list[float] = []
_LOCK = threading.Lock()


def reset(seconds_per_batch: float) -> None:
    global SECONDS_PER_BATCH
    with _LOCK:
        STARTED.clear()
        FINISHED.clear()
        SECONDS_PER_BATCH = seconds_per_batch


def started() -> int:
    with _LOCK:
        return len(STARTED)


def finished() -> int:
    with _LOCK:
        return len(FINISHED)


def started_after(moment: float) -> int:
    """How many batches started after ``moment`` (a time.monotonic() value)."""
    with _LOCK:
        return sum(1 for start in STARTED if start > moment)


def _begin() -> float:
    with _LOCK:
        STARTED.append(time.monotonic())
        return SECONDS_PER_BATCH


def _end(inputs: list[tuple[str, str]]) -> list[tuple[str, float]]:
    with _LOCK:
        FINISHED.append(time.monotonic())
    return [answer(text) for text, _ in inputs]


def sentiment(inputs: list[tuple[str, str]]) -> list[tuple[str, float]]:
    """The Comprehend functions' model (switchable_backend's answers), slowly, in a thread."""
    time.sleep(_begin())
    return _end(inputs)


async def sentiment_async(inputs: list[tuple[str, str]]) -> list[tuple[str, float]]:
    """The same answers, slowly, on the event loop."""
    await asyncio.sleep(_begin())
    return _end(inputs)


async def unavailable(inputs: list[tuple[str, str]]) -> list[tuple[str, float]]:
    """A service that is down: every request fails in a way worth retrying, so the
    engine waits in backoff between attempts."""
    _begin()
    raise RetryableError("service unavailable")
