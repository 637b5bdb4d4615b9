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
from collections.abc import Callable, Hashable
from typing import NamedTuple

from ml_backends.engine import InferenceEngine
from proxy.errors import MLStatementError, ProxyError
from proxy.ml.answers import backend_input, encoded_typed_literal, sentiment_input
from proxy.ml.fastpath.memo import CachedAnswers, Rewrite, Stamp
from proxy.ml.memory import ProcessMemory
from proxy.ml.path import MLRuntime, engine_of
from proxy.upstream.backend import BackendConnection
from proxy.upstream.internal import Row
from proxy.wire.packets import frame
from rewriter.functions import MLFunction
from rewriter.lexer import UnreadableStatement
from rewriter.shaped.byte_holes import Alias
from rewriter.shaped.constant_splice import ConstantSplice, SpliceSite, is_utf8
from rewriter.sql_text import MAX_ALIAS

#: Lanes a session keeps (as many as the shapes it recognises: planning.RECENT_SHAPES).
MAX_LANES = 4


class _BoundSite(NamedTuple):
    """One call of the shape: the engine that answers it, its cache namespace, where its
    answer goes in the rewrite, and how its key is made (proxy.ml.answers)."""

    site: SpliceSite
    engine: InferenceEngine
    namespace: tuple[bytes, str]
    at: int
    key_of: Callable[[MLFunction, Row], Hashable | None]


class _BoundAlias(NamedTuple):
    """An item's alias (byte_holes.Alias), with where the item's bytes lie in a
    statement of the shape: from ``before`` bytes ahead of slot ``first`` to ``after``
    bytes past slot ``last`` (its own text matched as it is); ``fixed`` when it holds no
    slot."""

    at: int
    alias: Alias
    plain: bool
    first: int | None
    before: int
    last: int
    after: int
    fixed: bytes

    @classmethod
    def of(cls, at: int, alias: Alias) -> _BoundAlias:
        pieces, holes = alias.item.fixed, alias.item.groups
        if not holes:
            return cls(at, alias, alias.plain_ends, None, 0, 0, 0, b"".join(pieces))
        (first_at, first), (last_at, last) = holes[0], holes[-1]
        before = sum(len(piece) for piece in pieces[:first_at])
        after = sum(len(piece) for piece in pieces[last_at + 1 :])
        return cls(at, alias, alias.plain_ends, first, before, last, after, b"")


class ConstantLane:
    """One recent shape's splice bound to a session (module docstring)."""

    __slots__ = (
        "_aliases",
        "_fixed",
        "_head",
        "_mariadb",
        "_memory",
        "_sites",
        "_slots",
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
        self.pattern = pattern
        rewriting = splice.rewriting
        #: The rewrite's pieces: the shape's text, with holes for the slots' bytes
        #: (``_slots``), each call's answer (its site's ``at``) and each alias.
        self._fixed = rewriting.text.fixed
        self._slots = rewriting.text.groups
        self._aliases = tuple(_BoundAlias.of(at, alias) for at, alias in rewriting.aliases)
        #: What a COM_QUERY of the proxy's making starts with (query attributes).
        self._head = backend.query_payload(b"")
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
        places = {site: at for at, site in splice.rewriting.answers}
        try:
            sites = tuple(
                _BoundSite(
                    site,
                    engine_of(runtime, site.function),
                    (account, site.function.family),
                    places[number],
                    backend_input if site.function.definition else sentiment_input,
                )
                for number, site in enumerate(splice.sites)
            )
        except MLStatementError:
            return None
        return cls(stamp, splice, pattern, sites, runtime.memory, mariadb, backend, account)

    def rewrite(self, found: re.Match[bytes]) -> Rewrite | None:
        """The framed rewrite of the statement ``found`` (a match of ``pattern``) and the
        cached answers it holds (not yet counted: Rewrite.count); None when the cache
        does not answer every call, or the general path must report something.

        What SpliceSite.row and Rewriting.write do, written out here with what could be
        settled when the lane was made (each answer's place, the key's function, each
        alias's place in the statement): between two statements the database may run
        on this CPU and evict what the proxy touched, and every helper's code and data
        then cost cache misses (module docstring). Through the helpers, the bench's
        varied constant call gave 1.36-1.46 at one client; written out, 1.24-1.37
        (pairs of runs taken in turn: docs/performance.md)."""
        if not self._memory.has_room():
            return None
        groups = found.groups()
        out = list(self._fixed)
        for at, group in self._slots:
            out[at] = groups[group]
        held: list[CachedAnswers] = []
        encode, mariadb = self.backend.encode, self._mariadb
        try:
            for site, engine, namespace, at, key_of in self._sites:
                row = []
                for group, integer in site.inputs:  # (SpliceSite.row)
                    value = groups[group]
                    if integer:
                        value = value.lstrip(b"0") or b"0"
                    elif not value.isascii() and not is_utf8(value):
                        return None
                    row.append(value)
                key = key_of(site.function, tuple(row))
                answer = None  # NULL or empty text: answered NULL, not asked
                if key is not None:
                    hit, answer = engine.cache.held(namespace, key)
                    if not hit:
                        return None
                    held.append(CachedAnswers(engine, namespace, (key,), (answer,)))
                out[at] = encoded_typed_literal(site.function, answer, encode, mariadb=mariadb)
            for alias in self._aliases:
                out[alias.at] = self._alias(alias, found, groups)
        except (MLStatementError, UnreadableStatement, ProxyError):
            return None  # the general path reports it
        return Rewrite(frame(self._head + b"".join(out), 0), tuple(held))

    def _alias(
        self, alias: _BoundAlias, found: re.Match[bytes], groups: tuple[bytes, ...]
    ) -> bytes:
        """Alias.written, the item's bytes sliced from the statement: when they are
        plain ASCII (no backtick, at most MAX_ALIAS), quoted as they are; else Alias's."""
        if alias.first is None:
            name = alias.fixed
        else:
            start = found.start(alias.first + 1) - alias.before
            name = found.string[start : found.end(alias.last + 1) + alias.after]
        if alias.plain and len(name) <= MAX_ALIAS and name.isascii() and b"`" not in name:
            return b" AS `" + name + b"`"
        return alias.alias.written(groups, self.backend.charset.codec)


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
