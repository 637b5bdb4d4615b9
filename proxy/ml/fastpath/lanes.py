"""A session's recent constant-call shapes, each bound to what rewrites its statements.

An application that calls a model per request sends one shape of statement with other
literals each time (``SELECT aws_comprehend_detect_sentiment('...', 'en')``). Once its
shape is recent, the shape's splice (rewriter.shaped.constant_splice) rewrites such a
statement on its bytes. A lane is that splice bound to one session: the pattern of the
session's character set, each call's engine and cache namespace (the session's account),
the session's form of a typed literal. The session's next statements of the shape are
then rewritten with one match and one cache look-up per call, before anything else the
callbacks try (the memo of exact statements, the matcher, the plan cache).

Why this matters beyond its microseconds: on a machine whose idle CPUs halt (a virtual
machine's), a proxy that spends more CPU per statement can tip the scheduler into placing
the database's thread on a halted CPU, whose every wake-up costs tens of microseconds
(docs/performance.md, "Where a constant call's time went"). So every microsecond a
statement costs the proxy is worth taking.

A lane answers only under the stamp it was made under (the session's settings and the
registry's names, proxy.ml.fastpath.memo), for the backend connection and the account
it was made for; anything it does not answer (another shape, an answer not cached, an input the
splice does not take, no room in the process's ML memory) goes the way it went before.
It gives what the shape's recipe gives on the decoded statement, as the splice did
(``tests/unit/test_lanes.py``). Statements a lane serves skip the session's memo of
exact statements (proxy.ml.fastpath.memo) too, which would only give the same rewrite
at about the same cost.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from ml_backends.engine import InferenceEngine
from proxy.errors import MLStatementError, ProxyError
from proxy.ml.answers import backend_input, encoded_typed_literal
from proxy.ml.fastpath.memo import CachedAnswers, Rewrite, Stamp
from proxy.ml.memory import ProcessMemory
from proxy.ml.path import MLRuntime, engine_of
from proxy.upstream.backend import BackendConnection
from proxy.wire.packets import frame
from rewriter.lexer import UnreadableStatement
from rewriter.shaped.constant_splice import ConstantSplice, SpliceSite

#: Lanes a session keeps (as many as the shapes it recognises: planning.RECENT_SHAPES).
MAX_LANES = 4


class _BoundSite(NamedTuple):
    """One call of the shape, with the engine that answers it and its cache namespace."""

    site: SpliceSite
    engine: InferenceEngine
    namespace: tuple[bytes, str]


class ConstantLane:
    """One recent shape's splice bound to a session (module docstring)."""

    __slots__ = (
        "_mariadb",
        "_memory",
        "_sites",
        "_splice",
        "account",
        "backend",
        "pattern",
        "stamp",
    )

    def __init__(
        self,
        stamp: Stamp,
        splice: ConstantSplice,
        pattern: re.Pattern[bytes],
        sites: tuple[_BoundSite, ...],
        memory: ProcessMemory,
        mariadb: bool,
        backend: BackendConnection,
        account: bytes,
    ) -> None:
        self.stamp = stamp
        self._splice = splice
        self.pattern = pattern
        self.backend = backend
        self.account = account
        self._sites = sites
        self._memory = memory
        self._mariadb = mariadb

    def serves(self, backend: BackendConnection, account: bytes) -> bool:
        """Whether the lane is for this backend connection and account (a lane holds its
        account's cache namespace: it must never answer another's statement)."""
        return self.backend is backend and self.account == account

    @classmethod
    def bind(
        cls,
        stamp: Stamp,
        splice: ConstantSplice,
        pattern: re.Pattern[bytes],
        mariadb: bool,
        runtime: MLRuntime,
        backend: BackendConnection,
        account: bytes,
    ) -> ConstantLane | None:
        """The lane of ``splice`` (``pattern``: its pattern for the session's character
        set) for a session whose backend is ``backend`` (``mariadb``: a MariaDB one,
        proxy.ml.answers.typed_literal) and whose account is ``account``; None when a
        call has no engine (the general path reports it)."""
        try:
            sites = tuple(
                _BoundSite(site, engine_of(runtime, site.function), (account, site.function.family))
                for site in splice.sites
            )
        except MLStatementError:
            return None
        return cls(stamp, splice, pattern, sites, runtime.memory, mariadb, backend, account)

    def rewrite(self, found: re.Match[bytes]) -> Rewrite | None:
        """The framed rewrite of the statement ``found`` (a match of ``pattern``) and the
        cached answers it holds (not yet counted: Rewrite.count); None when the cache
        does not answer every call, or the general path must report something."""
        if not self._memory.has_room():
            return None
        groups = found.groups()
        answers: list[bytes] = []
        held: list[CachedAnswers] = []
        backend, mariadb = self.backend, self._mariadb
        try:
            for site, engine, namespace in self._sites:
                row = site.row(groups)
                if row is None:
                    return None
                key = backend_input(site.function, row)
                value = None  # NULL or empty text: answered NULL, not asked
                if key is not None:
                    hit, value = engine.cache.held(namespace, key)
                    if not hit:
                        return None
                    held.append(CachedAnswers(engine, namespace, (key,), (value,)))
                answers.append(
                    encoded_typed_literal(site.function, value, backend.encode, mariadb=mariadb)
                )
            rewritten = self._splice.rewriting.write(groups, answers, backend.charset.codec)
        except (MLStatementError, UnreadableStatement, ProxyError):
            return None  # the general path reports it
        return Rewrite(frame(backend.query_payload(rewritten), 0), tuple(held))


class ConstantLanes:
    """A session's lanes, the latest first, all of one stamp."""

    def __init__(self) -> None:
        self._lanes: list[ConstantLane] = []

    def __bool__(self) -> bool:
        return bool(self._lanes)

    def rewrite(
        self, sql: bytes, stamp: Stamp | None, backend: BackendConnection, account: bytes
    ) -> Rewrite | None:
        """The rewrite of ``sql`` by the lane whose pattern it matches, if that lane is of
        ``stamp``, serves ``backend`` and ``account`` and the cache answers every call;
        else None."""
        lanes = self._lanes
        if not lanes:
            return None
        if lanes[0].stamp != stamp:
            lanes.clear()  # the settings or the registry changed: all stale
            return None
        for lane in lanes:
            found = lane.pattern.fullmatch(sql)
            if found is not None:
                return lane.rewrite(found) if lane.serves(backend, account) else None
        return None

    def find(
        self, stamp: Stamp, pattern: re.Pattern[bytes], backend: BackendConnection, account: bytes
    ) -> ConstantLane | None:
        """The lane kept for the splice whose pattern is ``pattern``, under ``stamp``,
        for ``backend`` and ``account``; None if there is none."""
        lanes = self._lanes
        if lanes and lanes[0].stamp != stamp:
            lanes.clear()
        for lane in lanes:
            if lane.pattern is pattern and lane.serves(backend, account):
                return lane
        return None

    def keep(self, lane: ConstantLane) -> None:
        """Keep ``lane``, first (``find`` found none like it under its stamp)."""
        lanes = self._lanes
        lanes.insert(0, lane)
        del lanes[MAX_LANES:]
