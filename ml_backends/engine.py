"""The batching engine: many logical calls in, few backend requests out, answers in order.

For each ``infer`` call: count the logical calls, answer repeats and cached inputs without
a request, cut the rest into batches (the smaller of the caller's batch size and the
backend's limit), send them with bounded concurrency, paced by the backend's adaptive rate
(ml_backends.control.adaptive_rate: shared by every session, cut when the service throttles,
grown back while it answers), and return one outcome per input in input order.

Retries: a throttled request is sent again when the pacing lets it, for as long as the
statement's time budget (ml_backends.control.budget) lasts, however many times: the service is
only asking the proxy to slow down, and the pacing does. Other retryable failures (5xx,
timeouts, unreachable) get ``max_attempts`` attempts with exponential backoff and full
jitter. When the budget runs out, requests in flight are abandoned and the call fails
with BudgetExhausted.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ml_backends.base import Backend, ItemError, Outcome
from ml_backends.cache import AnswerCache, ResultCache
from ml_backends.control.adaptive_rate import AdaptiveRate, paced
from ml_backends.control.budget import TimeBudget
from ml_backends.control.stop import raise_if_stopped
from ml_backends.counters import MLCounters, Tally
from ml_backends.errors import BudgetExhausted, InferenceFailed, RetryableError, Throttled
from ml_backends.slices import CHECK_EVERY, LoopSlices

log = logging.getLogger(f"mlproxy.{__name__}")

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
    #: The most requests per second across all sessions (the adaptive rate's ceiling);
    #: None: only what the service allows.
    rate_limit: float | None = None
    #: Attempts for failures other than throttling (throttling: see ``infer``'s budget).
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
        backend: Backend[Any],
        policy: BatchPolicy | None = None,
        cache: AnswerCache | None = None,
        counters: MLCounters | None = None,
        rng: random.Random | None = None,
        rate: AdaptiveRate | None = None,
    ) -> None:
        self.backend = backend
        self.policy = policy or BatchPolicy()
        self.cache: AnswerCache = cache if cache is not None else ResultCache(max_entries=0)
        self.counters = counters if counters is not None else MLCounters()
        self._in_flight = asyncio.Semaphore(self.policy.max_in_flight)
        #: The service's pacing; engines calling the same service share one.
        self.rate = (
            rate if rate is not None else AdaptiveRate(self.policy.rate_limit, name=backend.name)
        )
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
        budget: TimeBudget | None = None,
        allow_requests: bool = True,
    ) -> list[Outcome]:
        """One outcome per input, in order. ``namespace`` identifies the function (and its
        definition) in the cache; ``timeout`` overrides the policy's seconds per request;
        ``on_answers`` gets each request's inputs and outcomes as soon as they arrive;
        ``counters`` (a session's) count the call too, beside the engine's own; ``check``
        sees every backend answer first (cached answers passed it already, as long as one
        namespace always has the same check); ``budget`` bounds the whole call (None: no
        bound, throttled requests are retried until answered).
        Raises InferenceFailed when a request fails for good, BudgetExhausted when the
        budget runs out first, and NotCached when a request would be needed but
        ``allow_requests`` is False (then nothing was counted or sent)."""
        plan = await self._plan(inputs, namespace, check)
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

        throttles = _Throttles()

        async def answer(batch: list[Hashable]) -> list[Outcome]:
            outcomes = await self._request(batch, timeout, tally, throttles)
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
            async with asyncio.timeout(None if budget is None else budget.remaining()):
                async with asyncio.TaskGroup() as group:
                    tasks = [group.create_task(answer(batch)) for batch in batches]
        except BaseExceptionGroup as failures:  # the first failure cancelled the others
            raise _first_leaf(failures) from None
        except TimeoutError:
            assert budget is not None
            raise self._spent(budget, throttles) from None
        answered = []
        for batch, task in zip(batches, tasks, strict=True):
            for key, outcome in zip(batch, task.result(), strict=True):
                plan.answers[key] = outcome
                if not isinstance(outcome, ItemError):
                    answered.append((key, outcome))
            await slices.pause()
        await self.cache.store(namespace, answered)
        tally.add("logical_response_cnt", len(inputs))
        return [plan.answers[key] async for key in slices.each(inputs)]

    async def estimate(
        self, inputs: Sequence[Hashable], *, namespace: Hashable, batch_size: int | None = None
    ) -> tuple[int, int]:
        """(distinct inputs the cache cannot answer, requests they would take)."""
        distinct = list(dict.fromkeys(inputs))
        found = await self.cache.lookup(namespace, distinct)
        missing = [key async for key in LoopSlices().each(distinct) if key not in found]
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

    async def _plan(
        self, inputs: Sequence[Hashable], namespace: Hashable, check: AnswerCheck | None
    ) -> _Plan:
        plan = _Plan()
        distinct = list(dict.fromkeys(inputs))
        plan.answers = await self.cache.lookup(namespace, distinct, check)
        if len(distinct) <= CHECK_EVERY:  # a few: no clock to look at
            plan.missing = [key for key in distinct if key not in plan.answers]
        else:
            plan.missing = [
                key async for key in LoopSlices().each(distinct) if key not in plan.answers
            ]
        return plan

    async def _request(
        self, batch: list[Hashable], timeout: float | None, tally: Tally, throttles: _Throttles
    ) -> list[Outcome]:
        """Send one batch, retrying what is worth retrying: throttling until the budget
        (``infer``) ends it, other failures up to max_attempts."""
        policy = self.policy
        attempt = 1
        while True:
            try:
                return await self._send(batch, timeout or policy.request_timeout, tally)
            except Throttled as exc:
                throttles.add(exc)
                tally.add("throttled_cnt")
                tally.add("retry_request_cnt")
            except RetryableError as exc:
                if attempt == policy.max_attempts:
                    raise InferenceFailed(
                        f"{self.backend.name}: gave up after {attempt} attempts ({exc})"
                    ) from exc
                tally.add("retry_request_cnt")
                delay = self._backoff(attempt)
                log.info("%s: %s; retry %d in %.2fs", self.backend.name, exc, attempt, delay)
                attempt += 1
                await asyncio.sleep(delay)

    def _spent(self, budget: TimeBudget, throttles: _Throttles) -> BudgetExhausted:
        """The error for a call whose budget ran out."""
        why = f"{self.backend.name}: no answer within the statement's time budget"
        why += f" of {budget.seconds:g}s ({budget.source})"
        if throttles.count:
            why += f"; {throttles.count} requests throttled, the last: {throttles.last}"
        return BudgetExhausted(why, budget)

    async def _send(self, batch: list[Hashable], timeout: float, tally: Tally) -> list[Outcome]:
        async with self._in_flight, paced(self.rate):
            raise_if_stopped()  # the caller was stopped (KILL) while this one waited
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


@dataclass
class _Throttles:
    """The throttled answers one ``infer`` call received (for its failure message)."""

    count: int = 0
    last: Throttled | None = None

    def add(self, exc: Throttled) -> None:
        self.count += 1
        self.last = exc


def _first_leaf(group: BaseExceptionGroup[BaseException]) -> BaseException:
    first = group.exceptions[0]
    return _first_leaf(first) if isinstance(first, BaseExceptionGroup) else first
