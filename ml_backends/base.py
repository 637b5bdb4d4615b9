"""The interface every inference backend implements."""

from __future__ import annotations

import abc
import asyncio
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ItemError:
    """One input the backend could not answer while answering the others (e.g. a
    Comprehend ErrorList entry). Never cached."""

    message: str


#: What a backend returns per input: a value, or an ItemError.
Outcome = Any


class Backend(abc.ABC):
    """Answers batches of inputs, in order. Inputs are hashable tuples of arguments."""

    #: The most inputs one request may carry (the engine never sends more).
    max_batch_size: int = 25
    #: Names this backend in logs, errors and cache keys.
    name: str = "backend"

    @abc.abstractmethod
    async def infer(self, batch: Sequence[Hashable]) -> list[Outcome]:
        """Answer every input of ``batch``, in order; raise RetryableError for failures
        worth retrying and InferenceFailed for the others."""

    def batch_key(self, item: Hashable) -> Hashable:
        """Inputs with different keys never share a request (Comprehend takes one language
        per call): the engine cuts batches within each key, so one engine request is one
        backend call."""
        return None

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release clients and threads."""


class ThreadedBackend(Backend):
    """A backend whose work blocks (boto3 calls, model inference): run in a thread so the
    event loop never waits on it."""

    @abc.abstractmethod
    def infer_blocking(self, batch: Sequence[Hashable]) -> list[Outcome]:
        """The blocking implementation of ``infer``."""

    async def infer(self, batch: Sequence[Hashable]) -> list[Outcome]:
        return await asyncio.to_thread(self.infer_blocking, list(batch))
