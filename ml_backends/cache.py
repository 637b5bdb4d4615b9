"""A result cache shared by all sessions: bounded in entries, in bytes and in age.

Keys carry everything that changes an answer: the backend and function identity (name,
definition version) and the arguments. Only successful answers are cached.

Entries are counted in bytes (the key's inputs and the answer, roughly as Python holds
them), so a few huge answers cannot take the memory many small ones would share; an
entry larger than an eighth of the byte bound is not kept at all.

The engine sees a cache through ``AnswerCache``: batch lookups and stores, so a layer
behind this one (proxy.replicas.shared_cache: a Redis shared by replicas) costs one round
trip per statement, not one per input.
"""

from __future__ import annotations

import sys
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from typing import Any, Protocol

from ml_backends.slices import CHECK_EVERY, LoopSlices

#: The default byte bound (64 MiB).
DEFAULT_MAX_BYTES = 64 << 20


#: What an answer from outside the process passes before it is used (the engine's
#: AnswerCheck): the value to use, or an ItemError for one that is not an answer.
Check = Callable[[Any], Any]


class AnswerCache(Protocol):
    """What the engine asks of its cache. Keys are ``(namespace, input)`` as for
    ``ResultCache``; lookups and stores come a statement's distinct inputs at a time."""

    async def lookup(
        self, namespace: Hashable, keys: Sequence[Hashable], check: Check | None = None
    ) -> dict[Hashable, Any]:
        """The answers held for the distinct ``keys``, by input (absent: not held).
        Answers from outside the process pass ``check`` first (one it refuses is not
        held); without a check they are counted but not kept (estimates)."""
        ...

    async def store(self, namespace: Hashable, answers: Sequence[tuple[Hashable, Any]]) -> None:
        """Keep new answers (never raises: a cache that fails only costs requests)."""
        ...

    def clear(self) -> None:
        """Forget this process's answers."""
        ...

    def held(self, namespace: Hashable, key: Hashable) -> tuple[bool, Any]:
        """(found, answer) of this process's answer to one input, at once (no round
        trip, no event-loop pass): what a statement served from the sockets' callbacks
        may use (proxy.ml.fastpath)."""
        ...


def approximate_size(value: object) -> int:
    """Bytes ``value`` takes, counting the items of tuples and lists (inputs and answers
    are flat tuples of scalars; deeper structure is counted shallowly)."""
    size = sys.getsizeof(value)
    if isinstance(value, tuple | list):
        size += sum(sys.getsizeof(item) for item in value)
    return size


class ResultCache:
    """LRU with a time-to-live. ``max_entries=0`` or ``max_bytes=0`` turns it off."""

    def __init__(
        self,
        max_entries: int = 100_000,
        ttl_seconds: float = 3600.0,
        clock: Callable[[], float] = time.monotonic,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.ttl = ttl_seconds
        self.bytes = 0
        self._clock = clock
        self._entries: OrderedDict[Hashable, tuple[float, Any, int]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: Hashable) -> tuple[bool, Any]:
        """(found, value); an expired entry is dropped and not found."""
        entry = self._entries.get(key)
        if entry is None:
            return False, None
        stored_at, value, _ = entry
        if self._clock() - stored_at > self.ttl:
            self._drop(key)
            return False, None
        self._entries.move_to_end(key)
        return True, value

    def held(self, namespace: Hashable, key: Hashable) -> tuple[bool, Any]:
        """AnswerCache.held."""
        return self.get((namespace, key))

    def put(self, key: Hashable, value: Any) -> None:
        if self.max_entries <= 0 or self.max_bytes <= 0:
            return
        size = approximate_size(key) + approximate_size(value)
        if size > self.max_bytes // 8:
            return  # one answer must not push out an eighth of everyone's
        self._drop(key)
        self._entries[key] = (self._clock(), value, size)
        self.bytes += size
        while len(self._entries) > self.max_entries or self.bytes > self.max_bytes:
            _, (_, _, dropped) = self._entries.popitem(last=False)
            self.bytes -= dropped

    def clear(self) -> None:
        self._entries.clear()
        self.bytes = 0

    async def lookup(
        self, namespace: Hashable, keys: Sequence[Hashable], check: Check | None = None
    ) -> dict[Hashable, Any]:
        """AnswerCache.lookup: this process's answers only (they passed a check when they
        came in), yielding to the event loop through long passes."""
        found: dict[Hashable, Any] = {}
        if len(keys) <= CHECK_EVERY:  # a few: no clock to look at
            for key in keys:
                self._find(namespace, key, found)
            return found
        async for key in LoopSlices().each(keys):
            self._find(namespace, key, found)
        return found

    def _find(self, namespace: Hashable, key: Hashable, found: dict[Hashable, Any]) -> None:
        hit, value = self.get((namespace, key))
        if hit:
            found[key] = value

    async def store(self, namespace: Hashable, answers: Sequence[tuple[Hashable, Any]]) -> None:
        async for key, value in LoopSlices().each(answers):
            self.put((namespace, key), value)

    def _drop(self, key: Hashable) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self.bytes -= entry[2]
