"""The ML result cache shared by replicas: this process's cache first, then a Redis.

``SharedCache`` is what an engine (ml_backends.engine) sees as its cache. A lookup asks
the in-process cache, then Redis for what it lacks, in one pipelined round trip per
``CHUNK`` inputs (MGET); answers found there pass the statement's answer check, are kept
in the process too, and count as cache hits. A store keeps answers in the process and
writes them to Redis (SET with the ml_cache_ttl expiry, pipelined), before the
statement goes on: a statement that ends on one replica has paid for the same
statement on every other.

Keys carry the scope (the backend server and the model a function resolves to), the
account (issue 10: no account learns through a hit what another read) and the
function's family, which names an alias's definition: a redefined alias never reuses
answers of its old definition (proxy.replicas.codec).

Redis failing or slow costs a statement nothing but cache hits (proxy.replicas.link).
"""

from __future__ import annotations

import logging
from collections.abc import Hashable, Sequence
from typing import Any

from ml_backends.base import ItemError
from ml_backends.cache import Check, ResultCache
from ml_backends.slices import LoopSlices
from proxy.replicas.codec import (
    MAX_SHARED_ANSWER_BYTES,
    Unshareable,
    answer_key,
    decode_answer,
    encode_answer,
)
from proxy.replicas.link import RedisLink

log = logging.getLogger(f"mlproxy.{__name__}")

#: Inputs per round trip (one MGET, or one pipeline of SETs).
CHUNK = 1000


class SharedCache:
    """An ml_backends.cache.AnswerCache over a shared in-process cache and a Redis."""

    def __init__(self, local: ResultCache, link: RedisLink, scope: str, ttl: float) -> None:
        self.local = local
        self.link = link
        self.scope = scope
        self.ttl = ttl

    def clear(self) -> None:
        """Forget this process's answers (Redis keeps its own until they expire)."""
        self.local.clear()

    def held(self, namespace: Hashable, key: Hashable) -> tuple[bool, Any]:
        """This process's answer only (Redis is a round trip away)."""
        return self.local.get((namespace, key))

    async def lookup(
        self, namespace: Hashable, keys: Sequence[Hashable], check: Check | None = None
    ) -> dict[Hashable, Any]:
        found = await self.local.lookup(namespace, keys)
        if not self.link.breaker.available():
            return found
        wanted = await self._redis_keys(namespace, keys, found)
        for start in range(0, len(wanted), CHUNK):
            chunk = wanted[start : start + CHUNK]

            async def read(client: Any, chunk: list[tuple[Hashable, str]] = chunk) -> Any:
                return await client.mget([name for _, name in chunk])

            values: list[bytes | None] = await self.link.attempt("lookup", read, [])
            slices = LoopSlices()
            for (key, _), raw in zip(chunk, values, strict=False):
                await slices.pause()
                answer = self._accepted(raw, check)
                if answer is _MISSING:
                    continue
                found[key] = answer
                if check is not None:
                    self.local.put((namespace, key), answer)
        return found

    def _accepted(self, raw: bytes | None, check: Check | None) -> Any:
        """A stored answer, decoded and checked; _MISSING for none, or one refused."""
        if raw is None:
            return _MISSING
        try:
            answer = decode_answer(raw)
        except ValueError as exc:
            log.debug("ignoring a shared cache entry: %s", exc)
            return _MISSING
        if check is not None:
            answer = check(answer)
            if isinstance(answer, ItemError):
                log.debug("ignoring a shared cache entry: %s", answer.message)
                return _MISSING
        return answer

    async def store(self, namespace: Hashable, answers: Sequence[tuple[Hashable, Any]]) -> None:
        await self.local.store(namespace, answers)
        if self.ttl <= 0 or not answers or not self.link.breaker.available():
            return
        entries = []
        async for key, value in LoopSlices().each(answers):
            try:
                payload = encode_answer(value)
                name = answer_key(self.scope, namespace, key)
            except Unshareable:
                continue
            if len(payload) <= MAX_SHARED_ANSWER_BYTES:
                entries.append((name, payload))
        milliseconds = max(1, round(self.ttl * 1000))
        for start in range(0, len(entries), CHUNK):
            chunk = entries[start : start + CHUNK]

            async def write(client: Any, chunk: list[tuple[str, bytes]] = chunk) -> None:
                pipe = client.pipeline(transaction=False)
                for name, payload in chunk:
                    pipe.set(name, payload, px=milliseconds)
                await pipe.execute()

            await self.link.attempt("store", write, None)

    async def _redis_keys(
        self, namespace: Hashable, keys: Sequence[Hashable], found: dict[Hashable, Any]
    ) -> list[tuple[Hashable, str]]:
        """The Redis key of each of ``keys`` not ``found`` already (and shareable)."""
        named = []
        async for key in LoopSlices().each(keys):
            if key in found:
                continue
            try:
                named.append((key, answer_key(self.scope, namespace, key)))
            except Unshareable:
                continue
        return named


_MISSING: Any = object()
