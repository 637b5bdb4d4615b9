"""A result cache shared by all sessions: bounded in entries, in bytes and in age.

Keys carry everything that changes an answer: the backend and function identity (name,
definition version) and the arguments. Only successful answers are cached.

Entries are counted in bytes (the key's inputs and the answer, roughly as Python holds
them), so a few huge answers cannot take the memory many small ones would share; an
entry larger than an eighth of the byte bound is not kept at all.
"""

from __future__ import annotations

import sys
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

#: The default byte bound (64 MiB).
DEFAULT_MAX_BYTES = 64 << 20


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

    def _drop(self, key: Hashable) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self.bytes -= entry[2]
