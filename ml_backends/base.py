"""The interface every inference backend implements."""

from __future__ import annotations

import abc
import asyncio
import time
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar


@dataclass(frozen=True)
class ItemError:
    """One input the backend could not answer while answering the others (e.g. a
    Comprehend ErrorList entry). Never cached."""

    message: str


#: What a backend returns per input: a value, or an ItemError.
Outcome = Any

#: What one input of a backend is: the engine de-duplicates and caches by it, so hashable.
Input = TypeVar("Input", bound=Hashable)

#: The arguments of one SQL call, as most backends take them.
Arguments = tuple[object, ...]


class Backend(abc.ABC, Generic[Input]):
    """Answers batches of inputs, in order. Inputs are hashable tuples of arguments;
    ``Input`` says which (``Backend[Any]`` where any backend will do)."""

    #: The most inputs one request may carry (the engine never sends more).
    max_batch_size: int = 25
    #: Names this backend in logs, errors and cache keys.
    name: str = "backend"
    #: Whether its requests cost money or a quota (a service, a remote model, anything
    #: an operator's callable may call): the request cap (ml_max_backend_calls) counts
    #: only these. The offline local model's are free.
    metered: bool = True

    @abc.abstractmethod
    async def infer(self, batch: Sequence[Input]) -> list[Outcome]:
        """Answer every input of ``batch``, in order; raise RetryableError for failures
        worth retrying and InferenceFailed for the others."""

    def batch_key(self, item: Input) -> Hashable:
        """Inputs with different keys never share a request (Comprehend takes one language
        per call): the engine cuts batches within each key, so one engine request is one
        backend call."""
        return None

    async def close(self) -> None:
        """Release clients and threads."""


class ThreadedBackend(Backend[Input]):
    """A backend whose work blocks (boto3 calls, model inference): run in a thread so the
    event loop never waits on it."""

    @abc.abstractmethod
    def infer_blocking(self, batch: Sequence[Input]) -> list[Outcome]:
        """The blocking implementation of ``infer``."""

    async def infer(self, batch: Sequence[Input]) -> list[Outcome]:
        return await asyncio.to_thread(self.infer_blocking, list(batch))


class SlicedBackend(Backend[Input]):
    """A backend whose work is short pure-Python computation per input (a GIL-bound
    model such as VADER): scored on the event loop itself, yielding to everything else
    the loop serves once per ``slice_seconds`` of scoring.

    A worker thread buys such a model nothing: it holds the interpreter lock while it
    runs, so other sessions wait for the 5 ms switch interval instead of one slice, and
    every batch pays a hop to the thread and back. The slice is the backend's, not a
    batch's: a batch shorter than a slice must not start the next one in the same loop
    iteration (the engine's many small batches would then run back to back, holding the
    loop for the whole statement)."""

    #: Longest run of scoring before the event loop gets a turn.
    slice_seconds: float = 0.001
    _slice_ends: float = 0.0

    @abc.abstractmethod
    def infer_one(self, item: Input) -> Outcome:
        """The answer for one input (fast: one slice should hold several)."""

    async def infer(self, batch: Sequence[Input]) -> list[Outcome]:
        outcomes = []
        clock = time.perf_counter
        for item in batch:
            if clock() >= self._slice_ends:
                await asyncio.sleep(0)  # the loop polls sockets and runs what is ready
                self._slice_ends = clock() + self.slice_seconds
            outcomes.append(self.infer_one(item))
        return outcomes
