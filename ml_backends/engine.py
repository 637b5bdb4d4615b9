"""The batching engine: many logical calls in, few backend requests out, answers in order.

For each ``infer`` call: count the logical calls, answer repeats and cached inputs without
a request, cut the rest into batches (the smaller of the caller's batch size and the
backend's limit), send them with bounded concurrency under a rate limit shared by every
session using this backend, retry throttling/5xx/timeouts with exponential backoff and
full jitter, and return one outcome per input in input order.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field

from asyncio_throttle.throttler import Throttler

from ml_backends.base import Backend, ItemError, Outcome
from ml_backends.cache import ResultCache
from ml_backends.counters import MLCounters, Tally
from ml_backends.errors import InferenceFailed, RetryableError
from ml_backends.slices import CHECK_EVERY, LoopSlices

log = logging.getLogger(__name__)

#: Called with one request's inputs and their outcomes, as each request completes.
AnswersCallback = Callable[[Sequence[Hashable], Sequence[Outcome]], None]
#: Called with each answer a backend gives, before anything keeps it (the cache, the
#: callback, the caller): returns the value to keep, or an ItemError for an answer that
#: is not one; it may raise to stop the whole call (e.g. a memory budget is spent).
AnswerCheck = Callable[[Outcome], Outcome]


class NotCached(Exception):
    """An ``infer`` that may not send requests (``allow_requests=False``) met inputs the
    cache cannot answer; nothing was counted or sent. Not an MLBackendError: the caller
    gets ready for requests (reads its settings, checks its rights) and asks again."""


@dataclass(frozen=True)
class BatchPolicy:
    """How requests to one backend are shaped and paced."""

    max_batch_size: int = 25
    max_in_flight: int = 8
    #: Requests per second across all sessions; None: unlimited.
    rate_limit: float | None = None
    max_attempts: int = 4
    base_backoff: float = 0.05
    max_backoff: float = 2.0
    request_timeout: float = 60.0


@dataclass
class _Plan:
    """Which inputs need a request, and which are answered already."""

    answers: dict[Hashable, Outcome] = field(default_factory=dict)
    missing: list[Hashable] = field(default_factory=list)


class InferenceEngine:
    """One per backend; shared by every session of the proxy."""

    def __init__(
        self,
        backend: Backend,
        policy: BatchPolicy | None = None,
        cache: ResultCache | None = None,
        counters: MLCounters | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.backend = backend
        self.policy = policy or BatchPolicy()
        self.cache = cache if cache is not None else ResultCache(max_entries=0)
        self.counters = counters if counters is not None else MLCounters()
        self._in_flight = asyncio.Semaphore(self.policy.max_in_flight)
        rate = self.policy.rate_limit
        self._throttler = Throttler(rate_limit=max(1, round(rate))) if rate else None
        self._rng = rng or random.Random()

    async def infer(
        self,
        inputs: Sequence[Hashable],
        *,
        namespace: Hashable,
        batch_size: int | None = None,
        timeout: float | None = None,
        on_answers: AnswersCallback | None = None,
        counters: MLCounters | None = None,
        check: AnswerCheck | None = None,
        allow_requests: bool = True,
    ) -> list[Outcome]:
        """One outcome per input, in order. ``namespace`` identifies the function (and its
        definition) in the cache; ``timeout`` overrides the policy's seconds per request;
        ``on_answers`` gets each request's inputs and outcomes as soon as they arrive;
        ``counters`` (a session's) count the call too, beside the engine's own; ``check``
        sees every backend answer first (cached answers passed it already, as long as one
        namespace always has the same check).
        Raises InferenceFailed when a request fails for good, and NotCached when a request
        would be needed but ``allow_requests`` is False."""
        plan = await self._plan(inputs, namespace)
        if plan.missing and not allow_requests:
            raise NotCached(f"{len(plan.missing)} inputs are not cached")
        tally = Tally(self.counters, counters)
        tally.add("logical_request_cnt", len(inputs))
        tally.add("cache_hit_cnt", len(inputs) - len(plan.missing))
        if not plan.missing and len(inputs) <= CHECK_EVERY:  # cached: no task, no clock
            tally.add("logical_response_cnt", len(inputs))
            return [plan.answers[key] for key in inputs]
        batches = await self._batches(plan.missing, self._batch_size(batch_size))

        # One clock for every batch of this call: answers of many big batches that
        # arrive together are checked and handed on a slice at a time, not all at once.
        slices = LoopSlices()

        async def answer(batch: list[Hashable]) -> list[Outcome]:
            outcomes = await self._request(batch, timeout, tally)
            if check is not None:
                outcomes = [
                    o if isinstance(o, ItemError) else check(o) async for o in slices.each(outcomes)
                ]
            if on_answers is not None:
                for start in range(0, len(batch), CHECK_EVERY):
                    end = start + CHECK_EVERY
                    on_answers(batch[start:end], outcomes[start:end])
                    await slices.pause()
            return outcomes

        try:
            async with asyncio.TaskGroup() as group:
                tasks = [group.create_task(answer(batch)) for batch in batches]
        except BaseExceptionGroup as failures:  # the first failure cancelled the others
            raise _first_leaf(failures) from None
        for batch, task in zip(batches, tasks, strict=True):
            for key, outcome in zip(batch, task.result(), strict=True):
                plan.answers[key] = outcome
                if not isinstance(outcome, ItemError):
                    self.cache.put((namespace, key), outcome)
            await slices.pause()
        tally.add("logical_response_cnt", len(inputs))
        return [plan.answers[key] async for key in slices.each(inputs)]

    async def estimate(
        self, inputs: Sequence[Hashable], *, namespace: Hashable, batch_size: int | None = None
    ) -> tuple[int, int]:
        """(distinct inputs the cache cannot answer, requests they would take)."""
        missing = [
            key
            async for key in LoopSlices().each(dict.fromkeys(inputs))
            if not self.cache.get((namespace, key))[0]
        ]
        return len(missing), len(await self._batches(missing, self._batch_size(batch_size)))

    async def _batches(self, missing: list[Hashable], size: int) -> list[list[Hashable]]:
        """Batches of at most ``size`` inputs, never mixing the backend's batch keys."""
        groups: dict[Hashable, list[Hashable]] = {}
        async for key in LoopSlices().each(missing):
            groups.setdefault(self.backend.batch_key(key), []).append(key)
        return [
            group[i : i + size] for group in groups.values() for i in range(0, len(group), size)
        ]

    def _batch_size(self, requested: int | None) -> int:
        return min(requested or self.policy.max_batch_size, self.backend.max_batch_size)

    async def _plan(self, inputs: Sequence[Hashable], namespace: Hashable) -> _Plan:
        plan = _Plan()
        distinct = dict.fromkeys(inputs)
        if len(distinct) <= CHECK_EVERY:  # a few: no clock to look at
            for key in distinct:
                self._look_up(plan, namespace, key)
        else:
            async for key in LoopSlices().each(distinct):
                self._look_up(plan, namespace, key)
        return plan

    def _look_up(self, plan: _Plan, namespace: Hashable, key: Hashable) -> None:
        found, value = self.cache.get((namespace, key))
        if found:
            plan.answers[key] = value
        else:
            plan.missing.append(key)

    async def _request(
        self, batch: list[Hashable], timeout: float | None, tally: Tally
    ) -> list[Outcome]:
        """Send one batch, retrying what is worth retrying."""
        policy = self.policy
        for attempt in range(1, policy.max_attempts + 1):
            try:
                return await self._send(batch, timeout or policy.request_timeout, tally)
            except RetryableError as exc:
                if attempt == policy.max_attempts:
                    raise InferenceFailed(
                        f"{self.backend.name}: gave up after {attempt} attempts ({exc})"
                    ) from exc
                tally.add("retry_request_cnt")
                delay = self._backoff(attempt)
                log.info("%s: %s; retry %d in %.2fs", self.backend.name, exc, attempt, delay)
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _send(self, batch: list[Hashable], timeout: float, tally: Tally) -> list[Outcome]:
        async with self._in_flight:
            if self._throttler is not None:
                await self._throttler.acquire()
            tally.add("actual_request_cnt")
            if len(batch) == 1:
                tally.add("single_request_cnt")
            try:
                async with asyncio.timeout(timeout):
                    outcomes = await self.backend.infer(batch)
            except TimeoutError as exc:
                raise RetryableError(f"no answer in {timeout:g}s") from exc
        if len(outcomes) != len(batch):
            raise InferenceFailed(
                f"{self.backend.name}: {len(outcomes)} answers for {len(batch)} inputs"
            )
        tally.add("actual_response_cnt")
        return outcomes

    def _backoff(self, attempt: int) -> float:
        """Exponential backoff with full jitter (AWS architecture blog's recommendation)."""
        ceiling = min(self.policy.max_backoff, self.policy.base_backoff * 2 ** (attempt - 1))
        return self._rng.uniform(0, ceiling)


def _first_leaf(group: BaseExceptionGroup[BaseException]) -> BaseException:
    first = group.exceptions[0]
    return _first_leaf(first) if isinstance(first, BaseExceptionGroup) else first
