"""The result cache shared by replicas (proxy.replicas.shared_cache) against a real
redis-server: two engines, as two replicas, over one Redis; batched round trips; what a
Redis that is down, slow or hostile costs (nothing but cache hits); the password never in
the log; the extra named when redis-py is missing."""

from __future__ import annotations

import asyncio
import logging
import socket
import sys
import threading
from collections.abc import Callable, Coroutine, Hashable, Iterator, Sequence
from typing import Any, TypeVar

import pytest

from ml_backends.base import Backend, ItemError, Outcome
from ml_backends.cache import ResultCache
from ml_backends.engine import InferenceEngine
from ml_backends.sentiment import Sentiment
from proxy.config import load_config
from proxy.errors import ConfigError
from proxy.replicas.codec import MAX_SHARED_ANSWER_BYTES, answer_key, encode_answer
from proxy.replicas.link import RedisLink
from proxy.replicas.replica import Replica
from proxy.replicas.shared_cache import CHUNK, SharedCache
from tests.support.redis_server import PASSWORD, RedisServer

T = TypeVar("T")
NAMESPACE = (b"app", "comprehend.sentiment")


class CountingModel(Backend[Hashable]):
    """f(x) = a sentiment derived from x; remembers every input it was asked."""

    name = "counting"
    max_batch_size = 50

    def __init__(self) -> None:
        self.asked: list[Hashable] = []

    async def infer(self, batch: Sequence[Hashable]) -> list[Outcome]:
        self.asked.extend(batch)
        return [Sentiment("POSITIVE", 1 / (1 + len(repr(x)))) for x in batch]


def replica_engine(
    url: str, model: Backend[Any], scope: str = "db:3306|local"
) -> tuple[InferenceEngine, RedisLink]:
    link = RedisLink(url, "ml_cache", "ML statements use the in-process cache only")
    cache = SharedCache(ResultCache(), link, scope, ttl=60)
    return InferenceEngine(model, cache=cache), link


def run(work: Callable[[], Coroutine[Any, Any, T]]) -> T:
    return asyncio.run(work())


def inputs(n: int, tag: str = "") -> list[Hashable]:
    return [(f"comment {tag}{i}", "en") for i in range(n)]


def commands(server: RedisServer, name: str) -> int:
    """How many times Redis ran a command (INFO commandstats): counted at the server."""
    with server.client() as client:
        stats: dict[str, Any] = client.info("commandstats")
    return int(stats.get(f"cmdstat_{name}", {}).get("calls", 0))


def test_a_second_replica_asks_the_model_nothing_the_first_paid_for(
    redis_server: RedisServer,
) -> None:
    first_model, second_model = CountingModel(), CountingModel()
    wanted = inputs(120)

    async def work() -> tuple[list[Outcome], list[Outcome]]:
        first, first_link = replica_engine(redis_server.url, first_model)
        second, second_link = replica_engine(redis_server.url, second_model)
        try:
            paid = await first.infer(wanted, namespace=NAMESPACE)
            reused = await second.infer(wanted, namespace=NAMESPACE)
            return paid, reused
        finally:
            await first_link.close()
            await second_link.close()

    paid, reused = run(work)
    assert reused == paid  # the oracle: what the model itself answered
    assert len(first_model.asked) == 120
    assert second_model.asked == []


def test_lookups_and_stores_are_batched_not_one_round_trip_per_input(
    redis_server: RedisServer,
) -> None:
    n = CHUNK + 10
    before = {name: commands(redis_server, name) for name in ("mget", "get", "set")}

    async def work() -> None:
        engine, link = replica_engine(redis_server.url, CountingModel())
        try:
            await engine.infer(inputs(n), namespace=NAMESPACE)
            other, other_link = replica_engine(redis_server.url, CountingModel())
            await other.infer(inputs(n), namespace=NAMESPACE)
            await other_link.close()
        finally:
            await link.close()

    run(work)
    assert commands(redis_server, "mget") - before["mget"] == 4  # 2 chunks, 2 replicas
    assert commands(redis_server, "get") == before["get"]
    assert commands(redis_server, "set") - before["set"] == n  # pipelined, counted per key


def test_answers_are_kept_per_account_and_scope(redis_server: RedisServer) -> None:
    """Another account, or a proxy in front of another server or model, gets no hit."""
    model = CountingModel()
    wanted = inputs(5)

    async def work() -> None:
        first, first_link = replica_engine(redis_server.url, CountingModel())
        await first.infer(wanted, namespace=NAMESPACE)
        for namespace, scope in [
            ((b"other", NAMESPACE[1]), "db:3306|local"),
            (NAMESPACE, "another-db:3306|local"),
            (NAMESPACE, "db:3306|aws"),
        ]:
            engine, engine_link = replica_engine(redis_server.url, model, scope)
            await engine.infer(wanted, namespace=namespace)
            await engine_link.close()
        await first_link.close()

    run(work)
    assert len(model.asked) == 3 * len(wanted)


def test_hostile_or_oversized_entries_are_misses_and_the_model_is_asked(
    redis_server: RedisServer,
) -> None:
    """What the proxy would not have written is never used: a pickle, garbage, a value
    of the wrong type, an answer the statement's check refuses, one over the size bound."""
    scope = "db:3306|local"
    planted = {
        ("pickle", "en"): b"\x80\x04\x95\x05\x00\x00\x00\x00\x00\x00\x00}\x94.",
        ("garbage", "en"): b"{not json",
        ("nested", "en"): b"[" * 100_000,
        ("wrong type", "en"): b'{"i": "12"}',
        ("bad label", "en"): encode_answer(Sentiment("<script>", 0.5)),
        ("huge", "en"): encode_answer("x" * MAX_SHARED_ANSWER_BYTES),
    }
    with redis_server.client() as client:
        for item, raw in planted.items():
            client.set(answer_key(scope, NAMESPACE, item), raw)

    def check(answer: Outcome) -> Outcome:
        ok = isinstance(answer, Sentiment) and answer.label == "POSITIVE"
        return answer if ok else ItemError("not a sentiment")

    model = CountingModel()

    async def work() -> list[Outcome]:
        engine, link = replica_engine(redis_server.url, model, scope)
        try:
            return await engine.infer(list(planted), namespace=NAMESPACE, check=check)
        finally:
            await link.close()

    answers = run(work)
    assert model.asked == list(planted)
    assert all(isinstance(a, Sentiment) and a.label == "POSITIVE" for a in answers)


def test_an_answer_over_the_size_bound_stays_in_the_process(redis_server: RedisServer) -> None:
    class Verbose(CountingModel):
        async def infer(self, batch: Sequence[Hashable]) -> list[Outcome]:
            self.asked.extend(batch)
            return ["v" * (MAX_SHARED_ANSWER_BYTES + 1) for _ in batch]

    async def work() -> None:
        engine, link = replica_engine(redis_server.url, Verbose())
        await engine.infer([("long",)], namespace=NAMESPACE)
        await link.close()

    run(work)
    with redis_server.client() as client:
        assert client.dbsize() == 0


# -- Redis down or slow ------------------------------------------------------------------------


@pytest.fixture
def black_hole() -> Iterator[tuple[int, list[socket.socket]]]:
    """A TCP port that accepts connections and never answers (a Redis that hangs)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listener.getsockname()[1], accepted
    stop.set()
    thread.join()
    for sock in accepted:
        sock.close()
    listener.close()


def test_a_redis_that_hangs_is_given_up_on_and_left_alone_for_a_while(
    black_hole: tuple[int, list[socket.socket]], caplog: pytest.LogCaptureFixture
) -> None:
    port, accepted = black_hole
    model = CountingModel()

    async def work() -> list[list[Outcome]]:
        engine, link = replica_engine(f"redis://:{PASSWORD}@127.0.0.1:{port}/0", model)
        try:
            return [await engine.infer(inputs(3), namespace=NAMESPACE) for _ in range(10)]
        finally:
            await link.close()

    with caplog.at_level(logging.DEBUG, logger="mlproxy.proxy.replicas"):
        results = run(work)
    assert all(r == results[0] for r in results)  # every statement answered
    assert len(model.asked) == 3  # the in-process cache still serves
    assert len(accepted) == 1  # one try; the breaker kept the others away
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1, warnings
    assert "ML statements use the in-process cache only" in warnings[0].getMessage()
    assert PASSWORD not in caplog.text


def test_redis_stopped_then_back_warns_once_and_is_used_again(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    clock = [0.0]
    model = CountingModel()

    async def work() -> None:
        link = RedisLink(redis_server.url, "ml_cache", "in-process only", clock=lambda: clock[0])
        engine = InferenceEngine(model, cache=SharedCache(ResultCache(), link, "s", ttl=60))
        await engine.infer(inputs(2, "a"), namespace=NAMESPACE)
        redis_server.stop()
        for round_ in range(5):
            clock[0] += 100  # past every wait: each round probes Redis again
            await engine.infer(inputs(2, f"down{round_}"), namespace=NAMESPACE)
        redis_server.start()
        clock[0] += 100
        await engine.infer(inputs(2, "back"), namespace=NAMESPACE)
        await link.close()

    with caplog.at_level(logging.INFO, logger="mlproxy.proxy.replicas"):
        run(work)
    assert len(model.asked) == 14  # nothing failed for the cache's sake
    levels = [(r.levelname, r.getMessage().split(";")[0]) for r in caplog.records]
    assert [lvl for lvl, _ in levels] == ["WARNING", "INFO"], levels
    assert PASSWORD not in caplog.text
    with redis_server.client() as client:
        assert client.dbsize() == 2  # the answers after the return were shared again


# -- settings ----------------------------------------------------------------------------------


def test_the_missing_extra_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "redis.asyncio", None)  # as if redis-py were absent
    config = load_config({"ml_cache": "redis://127.0.0.1:6379/0"}, env={})
    with pytest.raises(ConfigError, match=r"ml_cache needs the redis package.*mlproxy\[redis\]"):
        Replica(config, {})


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("http://x:1/0", "must be a redis://"),
        ("redis://:hunter2@host:99999/0", "bad port"),
        ("redis//:hunter2@host", "must be a redis://"),
    ],
)
def test_bad_urls_are_refused_without_their_password(value: str, message: str) -> None:
    for setting in ("ml_cache", "replica_registry"):
        with pytest.raises(ConfigError, match=message) as refused:
            load_config({setting: value}, env={})
        assert "hunter2" not in str(refused.value)
