"""Backends scored on the event loop in slices (the local model): answers in order, and
the loop gets a turn while a long batch is scored."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import TypeVar, cast

from bench.ml_local import texts
from ml_backends.base import SlicedBackend
from ml_backends.engine import BatchPolicy, InferenceEngine
from ml_backends.local import LocalSentimentBackend
from ml_backends.sentiment import SentimentInput

T = TypeVar("T")


class SlowSquares(SlicedBackend[Hashable]):
    """x -> x * x, each answer taking ``item_seconds`` of busy CPU."""

    name = "squares"
    max_batch_size = 10_000

    def __init__(self, item_seconds: float) -> None:
        self.item_seconds = item_seconds

    def infer_one(self, item: Hashable) -> int:
        deadline = time.perf_counter() + self.item_seconds
        while time.perf_counter() < deadline:
            pass
        (x,) = cast(tuple[int], item)
        return int(x) * int(x)


def test_answers_come_back_in_order() -> None:
    inputs = [(i,) for i in range(500)]
    assert asyncio.run(SlowSquares(0).infer(inputs)) == [i * i for i in range(500)]


def test_other_tasks_run_while_a_long_batch_is_scored() -> None:
    """100 items of 1 ms each: a backend that never yielded would let the counting task
    run once (before or after); one that yields every slice lets it run every item."""
    backend = SlowSquares(item_seconds=0.001)
    answers, turns = count_turns_while(lambda: backend.infer([(i,) for i in range(100)]))
    assert answers == [i * i for i in range(100)]
    assert turns >= 20, f"the loop got {turns} turns in 100 ms of scoring"


def count_turns_while(work: Callable[[], Awaitable[T]]) -> tuple[T, int]:
    """Run ``work`` next to a task that counts its turns on the loop."""
    ticks = 0

    async def ticker(done: asyncio.Event) -> None:
        nonlocal ticks
        while not done.is_set():
            ticks += 1
            await asyncio.sleep(0)

    async def main() -> tuple[T, int]:
        done = asyncio.Event()
        ticking = asyncio.create_task(ticker(done))
        await asyncio.sleep(0)
        before = ticks
        result = await work()
        during = ticks - before
        done.set()
        await ticking
        return result, during

    return asyncio.run(main())


def test_many_short_batches_through_the_engine_still_let_the_loop_run() -> None:
    """160 batches of 0.5 ms each: every batch is shorter than a slice, so a slice kept
    per batch would never yield and run all 80 ms in one loop iteration."""
    backend = SlowSquares(item_seconds=0.00002)
    backend.max_batch_size = 25
    engine = InferenceEngine(backend, BatchPolicy(max_batch_size=25))
    inputs = [(i,) for i in range(4000)]
    answers, turns = count_turns_while(lambda: engine.infer(inputs, namespace="squares"))
    assert answers == [i * i for i in range(4000)]
    assert turns >= 20, f"the loop got {turns} turns in 80 ms of scoring"


def test_the_local_model_through_the_engine_answers_as_the_model_alone() -> None:
    model = LocalSentimentBackend()
    corpus = texts(300)
    engine = InferenceEngine(model, BatchPolicy(max_batch_size=model.max_batch_size))
    inputs = [SentimentInput(text, "en") for text in corpus]
    answers = asyncio.run(engine.infer(inputs, namespace="sentiment"))
    assert answers == [model.score(text) for text in corpus]
    assert engine.counters.actual_request_cnt == 12  # 300 texts in batches of 25
