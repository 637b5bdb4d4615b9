"""A result cache shared by all sessions: bounded in entries and in age.

Keys carry everything that changes an answer: the backend and function identity (name,
definition version) and the arguments. Only successful answers are cached.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any


class ResultCache:
    """LRU with a time-to-live. ``max_entries=0`` turns it off."""

    def __init__(
        self,
        max_entries: int = 100_000,
        ttl_seconds: float = 3600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_entries = max_entries
        self.ttl = ttl_seconds
        self._clock = clock
        self._entries: OrderedDict[Hashable, tuple[float, Any]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: Hashable) -> tuple[bool, Any]:
        """(found, value); an expired entry is dropped and not found."""
        entry = self._entries.get(key)
        if entry is None:
            return False, None
        stored_at, value = entry
        if self._clock() - stored_at > self.ttl:
            del self._entries[key]
            return False, None
        self._entries.move_to_end(key)
        return True, value

    def put(self, key: Hashable, value: Any) -> None:
        if self.max_entries <= 0:
            return
        self._entries[key] = (self._clock(), value)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        self._entries.clear()
