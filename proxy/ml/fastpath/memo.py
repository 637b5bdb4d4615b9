"""A session's last ML statements, by their exact bytes, for when they come again.

An application that calls a model per request sends the same few statements over and
over. The plan cache (rewriter.shaped.plan_cache) spares each of them the parse; this spares a
statement that comes again byte for byte the reading of its text too:

- its **plan**, valid while the session's settings (proxy.ml.fastpath.known_settings) and the
  registry's names are those it was planned under, for statements that call only the
  built-in functions (an alias's definition is read at each statement that calls it);
- for a statement whose every call has constant inputs the proxy knows from the text
  (rewriter.shaped.plan_cache) and whose answers all came from the result cache, its whole
  **rewrite**: the statement sent to the backend. It is used again only while each answer
  is still in the cache, the same answer, and it counts each call as a cache hit as the
  engine would (Aurora_ml_logical_request_cnt, cache_hit_cnt, logical_response_cnt). Such
  a statement then costs the proxy about what a plain one does: the session serves it
  from the client socket's callback, as it serves plain statements
  (proxy.session.session.Session._command_in_callback);
- for a small statement served from the callbacks (proxy.ml.fastpath.quick), the bytes its
  key queries answered and the rewrite they gave: when they answer the same bytes again
  (the same rows), the same rewrite is sent, on the same conditions.

A few entries per session (MAX_ENTRIES), of statements up to MAX_STATEMENT bytes and
replies up to MAX_REPLY: a session holds at most a few tens of KiB for it. A statement is
kept from the second time it comes among the session's last MAX_SEEN: an application's
statements that vary their literals never come again byte for byte, and keeping each
would cost them the bookkeeping and push out those that do.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import NamedTuple

from ml_backends.counters import MLCounters
from ml_backends.engine import InferenceEngine
from rewriter.plan import MLPlan

#: Statements per session, the largest statement kept, the largest key-query reply kept.
MAX_ENTRIES = 8
MAX_STATEMENT = 1024
MAX_REPLY = 2048
#: Statements the session sent lately, counted until they come a second time.
MAX_SEEN = 32

#: What an entry is valid under: the session's settings epoch and the registry's names.
Stamp = tuple[int, int]


class CachedAnswers(NamedTuple):
    """One engine's answers a rewrite holds: its inputs (as the statement asked them, in
    order, repeats included) and the cached values written into the rewrite. (A tuple:
    the callbacks' path makes one per statement.)"""

    engine: InferenceEngine
    namespace: Hashable
    inputs: tuple[Hashable, ...]
    values: tuple[object, ...]


class Rewrite(NamedTuple):
    """A statement's rewrite from the memo: the framed COM_QUERY to send, and the cached
    answers it holds, to count once it is sent. (A tuple: the callbacks' path makes one
    per statement.)"""

    command: bytes
    answers: tuple[CachedAnswers, ...]

    @property
    def calls(self) -> int:
        """The ML calls the statement makes (each answered from the cache)."""
        return sum(len(answers.inputs) for answers in self.answers)

    def count(self, counters: MLCounters) -> int:
        """count_answers of the rewrite's answers."""
        return count_answers(self.answers, counters)


def count_answers(held: tuple[CachedAnswers, ...], counters: MLCounters) -> int:
    """Count each call as the engine counts a cache hit (a session's ``counters`` and
    the process's); the calls counted."""
    calls = 0
    for answers in held:
        asked = len(answers.inputs)
        answers.engine.counters.add_cached(asked)
        counters.add_cached(asked)
        calls += asked
    return calls


@dataclass(frozen=True)
class _Entry:
    stamp: Stamp
    #: None for a rewrite made without a plan (proxy.ml.fastpath.constants and point).
    plan: MLPlan | None
    #: The framed COM_QUERY of the rewrite (None: only the plan is kept).
    command: bytes | None = None
    answers: tuple[CachedAnswers, ...] = ()
    #: For a statement with key queries: their results, which the rewrite is the
    #: rewrite of (None: a rewrite of constant calls alone).
    reply: bytes | None = None


class StatementMemo:
    """One session's memo (module docstring)."""

    def __init__(self) -> None:
        self._entries: dict[bytes, _Entry] = {}
        #: How often each recent statement came (insertion order: oldest first).
        self._seen: dict[bytes, int] = {}

    def plan(self, sql: bytes, stamp: Stamp | None) -> MLPlan | None:
        """The plan kept for ``sql``; each statement planned asks here first, which
        counts it (module docstring)."""
        entry = self._entries.get(sql)
        if entry is not None and entry.stamp == stamp:
            return entry.plan
        if entry is None and len(sql) <= MAX_STATEMENT:
            seen = self._seen
            seen[sql] = seen.pop(sql, 0) + 1
            if len(seen) > MAX_SEEN:
                del seen[next(iter(seen))]
        return None

    def keep_plan(self, sql: bytes, stamp: Stamp | None, plan: MLPlan) -> None:
        if stamp is not None and self._worth_keeping(sql):
            self._keep(sql, _Entry(stamp, plan))

    def keep_rewrite(
        self,
        sql: bytes,
        stamp: Stamp | None,
        plan: MLPlan | None,
        command: bytes,
        answers: tuple[CachedAnswers, ...],
    ) -> None:
        if stamp is not None and self._worth_keeping(sql):
            self._keep(sql, _Entry(stamp, plan, command, answers))

    def keep_replay(
        self,
        sql: bytes,
        stamp: Stamp | None,
        plan: MLPlan | None,
        reply: bytes,
        command: bytes,
        answers: tuple[CachedAnswers, ...],
    ) -> None:
        """Keep the rewrite a statement's key queries' ``reply`` gave (proxy.ml.fastpath.quick)."""
        if stamp is not None and self._worth_keeping(sql) and len(reply) <= MAX_REPLY:
            self._keep(sql, _Entry(stamp, plan, command, answers, reply))

    def worth_keeping(self, sql: bytes) -> bool:
        """Whether ``sql`` came before among the session's recent statements (or is
        kept): what the callers check before they gather what an entry holds."""
        return sql in self._entries or self._seen.get(sql, 0) > 1

    def _worth_keeping(self, sql: bytes) -> bool:
        return len(sql) <= MAX_STATEMENT and self.worth_keeping(sql)

    def rewrite(self, sql: bytes, stamp: Stamp | None) -> Rewrite | None:
        """The rewrite of ``sql`` (its calls all constant) if it is still valid, else None."""
        entry = self._entries.get(sql)
        if entry is None or entry.reply is not None:
            return None
        return _valid(entry, stamp)

    def replayed(self, sql: bytes, stamp: Stamp | None, reply: bytes) -> Rewrite | None:
        """The rewrite of ``sql`` whose key queries answered ``reply``: the one kept when
        they answered the same bytes (the same rows), if it is still valid; else None."""
        entry = self._entries.get(sql)
        if entry is None or entry.reply != reply:
            return None
        return _valid(entry, stamp)

    def _keep(self, sql: bytes, entry: _Entry) -> None:
        self._entries.pop(sql, None)
        if len(self._entries) >= MAX_ENTRIES:
            del self._entries[next(iter(self._entries))]  # the oldest
        self._entries[sql] = entry


def _valid(entry: _Entry, stamp: Stamp | None) -> Rewrite | None:
    """The entry's rewrite while its stamp is the session's and each answer it holds is
    still the cache's."""
    if entry.command is None or entry.stamp != stamp:
        return None
    for answers in entry.answers:
        held = answers.engine.cache.held
        for key, value in zip(answers.inputs, answers.values, strict=True):
            found, now = held(answers.namespace, key)
            if not found or now is not value:
                return None
    return Rewrite(entry.command, entry.answers)
