"""Long pure-Python passes on the event loop, cut into slices.

A statement over hundreds of thousands of rows decodes, keys and looks up each one; done
in one go, that holds the event loop for seconds and every other session waits (issue 10:
`SELECT 1` waited 2.95 s beside an ML SELECT over a million rows). Passes call
``pause()`` every few hundred items; it yields once a slice's time is used up.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterable
from typing import TypeVar

T = TypeVar("T")

#: Longest run of such work before the loop serves others (the local model's own slices
#: are 1 ms; these passes are cheaper per item, so a few ms cost little latency).
SLICE_SECONDS = 0.005
#: Items between two looks at the clock.
CHECK_EVERY = 256


class LoopSlices:
    """One pass's clock, which several tasks may share (the batches of one inference
    call): ``pause()`` yields once the slice is used up. Only the first task to resume
    in a loop iteration starts a new slice; the others find it taken and yield again,
    so tasks sharing the clock get one slice per iteration between them, not one each."""

    def __init__(self, seconds: float = SLICE_SECONDS) -> None:
        self.seconds = seconds
        self._ends = time.perf_counter() + seconds
        self._started = 0  # slices started so far

    async def pause(self) -> None:
        while time.perf_counter() >= self._ends:
            started = self._started
            await asyncio.sleep(0)  # the loop polls sockets and runs what is ready
            if self._started == started:
                self._started += 1
                self._ends = time.perf_counter() + self.seconds

    async def each(self, items: Iterable[T]) -> AsyncIterator[T]:
        """``items``, pausing every CHECK_EVERY of them."""
        for count, item in enumerate(items, 1):
            yield item
            if count % CHECK_EVERY == 0:
                await self.pause()
