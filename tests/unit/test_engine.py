"""The batching engine: request counts, order, de-duplication, cache, retries, concurrency."""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import Hashable, Sequence
from typing import cast

import pytest

from ml_backends.base import Backend, ItemError, Outcome
from ml_backends.cache import ResultCache
from ml_backends.control.budget import TimeBudget
from ml_backends.counters import MLCounters
from ml_backends.engine import BatchPolicy, InferenceEngine
from ml_backends.errors import BudgetExhausted, InferenceFailed, RetryableError, Throttled


class ScriptedBackend(Backend[Hashable]):
    """Answers f(x) = repr(x)[::-1]; fails the first ``failures`` requests as told."""

    name = "scripted"

    def __init__(
        self, max_batch: int = 25, latency: float = 0.0, failures: Sequence[Exception] = ()
    ) -> None:
        self.max_batch_size = max_batch
        self.latency = latency
        self.failures = list(failures)
        self.batches: list[list[Hashable]] = []
        self.in_flight = 0
        self.peak_in_flight = 0
        self.sent_at: list[float] = []

    async def infer(self, batch: Sequence[Hashable]) -> list[Outcome]:
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        self.sent_at.append(asyncio.get_running_loop().time())
        try:
            await asyncio.sleep(self.latency)
            if self.failures:
                raise self.failures.pop(0)
            self.batches.append(list(batch))
            return [ItemError("empty") if x == ("",) else repr(x)[::-1] for x in batch]
        finally:
            self.in_flight -= 1


def expected(inputs: Sequence[Hashable]) -> list[str]:
    return [repr(x)[::-1] for x in inputs]


def run(engine: InferenceEngine, inputs: Sequence[Hashable], **kwargs: object) -> list[Outcome]:
    return asyncio.run(engine.infer(inputs, namespace="f", **kwargs))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("n", "batch"), [(1, 25), (25, 25), (26, 25), (1000, 25), (100, 7), (10, 100)]
)
def test_n_distinct_inputs_take_ceil_n_over_b_requests_in_order(n: int, batch: int) -> None:
    backend = ScriptedBackend(max_batch=batch)
    engine = InferenceEngine(backend, BatchPolicy(max_batch_size=1000))
    inputs = [(f"text {i}", "en") for i in range(n)]
    assert run(engine, inputs) == expected(inputs)
    assert len(backend.batches) == math.ceil(n / batch)
    assert engine.counters.actual_request_cnt == math.ceil(n / batch)


def test_the_callers_batch_size_caps_requests_below_the_backends_limit() -> None:
    backend = ScriptedBackend(max_batch=25)
    engine = InferenceEngine(backend)
    inputs = [(i,) for i in range(20)]
    run(engine, inputs, batch_size=3)
    assert [len(b) for b in backend.batches] == [3, 3, 3, 3, 3, 3, 2]


def test_repeated_inputs_cost_one_request_and_count_as_cache_hits() -> None:
    backend = ScriptedBackend()
    engine = InferenceEngine(backend)
    inputs = [("a",), ("b",), ("a",), ("a",), ("b",)]
    assert run(engine, inputs) == expected(inputs)
    assert backend.batches == [[("a",), ("b",)]]
    counters = engine.counters
    assert (
        counters.logical_request_cnt,
        counters.cache_hit_cnt,
        counters.logical_response_cnt,
    ) == (5, 3, 5)


def test_cache_answers_later_calls_and_keeps_namespaces_apart() -> None:
    backend = ScriptedBackend()
    engine = InferenceEngine(backend, cache=ResultCache(max_entries=100))

    async def scenario() -> None:
        await engine.infer([("x",)], namespace="f")
        await engine.infer([("x",), ("y",)], namespace="f")
        await engine.infer([("x",)], namespace="g")

    asyncio.run(scenario())
    assert backend.batches == [[("x",)], [("y",)], [("x",)]]


def test_cache_entries_expire_and_the_cache_is_bounded() -> None:
    now = [0.0]
    cache = ResultCache(max_entries=2, ttl_seconds=10, clock=lambda: now[0])
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == (True, 1)  # a is now most recently used
    cache.put("c", 3)
    assert cache.get("b") == (False, None)
    now[0] = 11
    assert cache.get("a") == (False, None)
    assert len(cache) == 1


def test_held_is_get_of_the_namespaced_key_expiry_and_recency_included() -> None:
    """ResultCache.held writes ``get`` out for the callbacks: the same answers, an
    expired entry dropped, a hit made the most recently used."""
    now = [0.0]
    cache = ResultCache(max_entries=2, ttl_seconds=10, clock=lambda: now[0])
    cache.put(("ns", "a"), 1)
    cache.put(("ns", "b"), 2)
    assert cache.held("ns", "a") == (True, 1)
    assert cache.held("other", "a") == (False, None)
    now[0] = 5
    cache.put(("ns", "c"), 3)  # b, not a, was the least recently used
    assert cache.held("ns", "b") == (False, None)
    assert cache.held("ns", "a") == (True, 1)
    now[0] = 10
    assert cache.held("ns", "a") == (True, 1)  # ten seconds old: not older than the ttl
    now[0] = 11
    assert cache.held("ns", "a") == (False, None)  # put at 0: expired, and dropped
    assert len(cache) == 1
    assert cache.held("ns", "c") == (True, 3)  # put at 5
    now[0] = 15.5
    assert cache.held("ns", "c") == (False, None)
    assert len(cache) == 0 and cache.bytes == 0


def test_a_disabled_cache_stores_nothing() -> None:
    cache = ResultCache(max_entries=0)
    cache.put("a", 1)
    assert cache.get("a") == (False, None)


def test_item_errors_come_back_in_place_and_are_not_cached() -> None:
    backend = ScriptedBackend()
    engine = InferenceEngine(backend, cache=ResultCache())
    outcomes = run(engine, [("ok",), ("",)])
    assert outcomes[0] == expected([("ok",)])[0]
    assert isinstance(outcomes[1], ItemError)
    assert asyncio.run(engine.cache.lookup("f", [("",), ("ok",)])) == {("ok",): outcomes[0]}


def test_throttling_is_retried_and_counted_and_results_are_unchanged() -> None:
    backend = ScriptedBackend(failures=[Throttled("slow down"), RetryableError("503")])
    engine = InferenceEngine(backend, BatchPolicy(base_backoff=0.001), rng=random.Random(1))
    inputs = [(i,) for i in range(5)]
    assert run(engine, inputs) == expected(inputs)
    assert engine.counters.retry_request_cnt == 2
    assert engine.counters.throttled_cnt == 1
    assert engine.counters.actual_request_cnt == 3
    assert engine.counters.actual_response_cnt == 1


def test_retries_of_other_failures_run_out_into_a_clear_failure() -> None:
    backend = ScriptedBackend(failures=[RetryableError("HTTP 503")] * 3)
    engine = InferenceEngine(backend, BatchPolicy(max_attempts=3, base_backoff=0.001))
    with pytest.raises(InferenceFailed, match=r"gave up after 3 attempts \(HTTP 503\)"):
        run(engine, [("a",)])


def test_throttled_requests_are_retried_past_max_attempts_and_slow_the_engine_down() -> None:
    backend = ScriptedBackend(failures=[Throttled("slow down")] * 3)
    engine = InferenceEngine(backend, BatchPolicy(max_attempts=2))
    assert run(engine, [("a",)]) == expected([("a",)])
    assert engine.counters.throttled_cnt == 3
    assert engine.counters.actual_request_cnt == 4
    assert engine.rate.cuts == 3 and engine.rate.rate() is not None


def test_a_spent_budget_ends_the_call_with_the_throttling_that_spent_it() -> None:
    backend = ScriptedBackend(failures=[Throttled("Rate exceeded")] * 1000)
    engine = InferenceEngine(backend)
    budget = TimeBudget(1.0, "ml_statement_timeout")
    with pytest.raises(BudgetExhausted) as caught:
        run(engine, [("a",), ("b",)], batch_size=1, budget=budget)
    message = str(caught.value)
    assert "time budget of 1s (ml_statement_timeout)" in message
    assert "requests throttled, the last: Rate exceeded" in message
    assert caught.value.budget is budget
    assert budget.remaining() > -5  # ended at the budget, not long after
    assert backend.batches == []


def test_a_budget_bounds_the_waits_of_other_retries_too() -> None:
    backend = ScriptedBackend(failures=[RetryableError("HTTP 503")] * 3)
    engine = InferenceEngine(backend, BatchPolicy(base_backoff=10, max_backoff=10))
    with pytest.raises(BudgetExhausted, match=r"budget of 0\.5s \(max_statement_time\)"):
        run(engine, [("a",)], budget=TimeBudget(0.5, "max_statement_time"))


def test_cached_answers_need_no_budget() -> None:
    engine = InferenceEngine(ScriptedBackend(), cache=ResultCache(max_entries=10))
    run(engine, [("a",)])
    spent = TimeBudget(1.0, "ml_statement_timeout", start=0.0)
    assert run(engine, [("a",)], budget=spent) == expected([("a",)])


def test_a_request_that_times_out_is_retried() -> None:
    backend = ScriptedBackend(latency=0.2)
    engine = InferenceEngine(
        backend, BatchPolicy(request_timeout=0.05, max_attempts=2, base_backoff=0.001)
    )
    with pytest.raises(InferenceFailed, match="no answer"):
        run(engine, [("a",)])
    assert engine.counters.actual_request_cnt == 2


def test_a_permanent_failure_is_not_retried() -> None:
    backend = ScriptedBackend(failures=[InferenceFailed("bad input")])
    engine = InferenceEngine(backend)
    with pytest.raises(InferenceFailed, match="bad input"):
        run(engine, [("a",)])
    assert engine.counters.actual_request_cnt == 1


def test_requests_in_flight_are_bounded() -> None:
    backend = ScriptedBackend(max_batch=1, latency=0.01)
    engine = InferenceEngine(backend, BatchPolicy(max_in_flight=3))
    run(engine, [(i,) for i in range(30)])
    assert backend.peak_in_flight == 3


def test_rate_limit_holds_in_every_window() -> None:
    backend = ScriptedBackend(max_batch=1)
    engine = InferenceEngine(backend, BatchPolicy(rate_limit=20, max_in_flight=8))
    run(engine, [(i,) for i in range(45)])
    times = sorted(backend.sent_at)
    for i, start in enumerate(times):
        in_window = [t for t in times[i:] if t - start < 1.0]
        assert len(in_window) <= 20


def test_counters_reset_and_list_as_status_rows() -> None:
    counters = MLCounters(logical_request_cnt=3, cache_hit_cnt=1)
    rows = dict(counters.as_status_rows())
    assert rows["Aurora_ml_logical_request_cnt"] == "3"
    assert rows["Mlproxy_ml_throttled_cnt"] == "0"
    assert len([name for name in rows if name.startswith("Aurora_ml_")]) == 7  # Aurora's seven
    assert len(rows) == 8
    counters.reset()
    assert all(value == "0" for value in dict(counters.as_status_rows()).values())


class KeyedBackend(ScriptedBackend):
    """Inputs (text, language); one request may carry one language only."""

    def batch_key(self, item: Hashable) -> Hashable:
        text_and_language = cast(tuple[str, str], item)
        return text_and_language[1]


def test_batches_never_mix_batch_keys_and_the_estimate_agrees() -> None:
    backend = KeyedBackend(max_batch=25)
    engine = InferenceEngine(backend)
    inputs = [(f"t{i}", "en" if i % 3 else "fr") for i in range(60)]  # 40 en, 20 fr
    assert asyncio.run(engine.estimate(inputs, namespace="f")) == (60, 3)
    assert run(engine, inputs) == expected(inputs)
    assert sorted(len(b) for b in backend.batches) == [15, 20, 25]
    assert all(
        len({cast(tuple[str, str], item)[1] for item in batch}) == 1 for batch in backend.batches
    )
