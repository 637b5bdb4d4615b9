"""A ThreadedBackend that owns its thread pool.

``asyncio.to_thread`` uses the event loop's default executor, whose size
(``min(32, CPUs + 4)``: 6 threads on 2 CPUs) would cap the requests in flight below the
engine's ``max_in_flight``. Backends whose calls mostly wait on the network (one Bedrock
request per row, many at once) run in a pool of their own, sized for that.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from ml_backends.base import Input, Outcome, ThreadedBackend

#: Worker threads per backend; at least the engine's in-flight bound, with room for
#: calls the engine abandoned after its request timeout.
MAX_CONCURRENCY = 32


class PooledBackend(ThreadedBackend[Input]):
    """Runs ``infer_blocking`` in a pool of ``max_concurrency`` threads."""

    def __init__(self, max_concurrency: int = MAX_CONCURRENCY, thread_name: str = "ml") -> None:
        self.max_concurrency = max_concurrency
        self._executor = ThreadPoolExecutor(max_concurrency, thread_name_prefix=thread_name)

    async def infer(self, batch: Sequence[Input]) -> list[Outcome]:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self.infer_blocking, list(batch))

    async def close(self) -> None:
        """Stop the pool without waiting for calls still running (they end on their own
        timeouts; the engine has given up on them)."""
        self._executor.shutdown(wait=False, cancel_futures=True)
