"""A point select of a recent shape, served from the callbacks on its bytes.

proxy.ml.fastpath.quick serves a small statement from the sockets' callbacks once its plan
is filled in (rewriter.shaped.plan_cache.instantiate), most of what a point select with
cached answers costs the proxy beyond the round trips. A statement its shape's point
splice matched (rewriter.shaped.point_splice) needs no plan for that: its key queries are
the splice's bytes filled with the statement's slots, and once the backend's results are
in and the cache answers every row, its rewrite is the splice's bytes filled with the
slots and each call's inline lookup (proxy.ml.answers.inline_lookup, on the inputs' SQL
text). The same key queries, the same rewrite, the same counts and memo entry as the
quick path; ``tests/unit/test_point_splice.py`` compares the two.

Anything else (results over QUICK_BYTES, an error, an input not cached, too many
answers to write inline) goes to the session's task, which plans the statement then,
checks that the plan's key queries are the bytes sent, and reads their results as it
does for a quick statement (proxy.session.ml_statements.MLStatements.finish_quick).

A shape whose splice has a single trip (rewriter.single_trip) sends it instead of its
key queries: one round trip, its result answered here (proxy.ml.fastpath.single_trip).
When that fails, the task drops its result and serves the statement the usual way.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from ml_backends.slices import CHECK_EVERY
from proxy.errors import MLStatementError, ProxyError
from proxy.ml.answers import inline_lookup
from proxy.ml.fastpath.memo import Rewrite
from proxy.ml.fastpath.planning import Pointed
from proxy.ml.fastpath.quick import PARTIAL, Partial, distinct, gathered_results
from proxy.ml.fastpath.single_trip import Served, served
from proxy.ml.path import Asked, MLRuntime, answers_held, engine_of, held_answers
from proxy.upstream.backend import BackendConnection
from proxy.upstream.internal import Row
from proxy.wire.packets import frame
from rewriter.functions import MLFunction
from rewriter.lexer import UnreadableStatement
from rewriter.shaped.point_splice import PointSite


class _Lookup(NamedTuple):
    """A site as proxy.ml.answers.inline_lookup reads it (answers.LookupSite)."""

    function: MLFunction
    inputs: Sequence[str]
    literal_inputs: Sequence[bool]


class PointStatement:
    """One statement a point splice matched (module docstring)."""

    def __init__(
        self, read: Pointed, runtime: MLRuntime, backend: BackendConnection, account: bytes
    ) -> None:
        #: What the planner matched (the task plans the statement from it if it takes over).
        self.read = read
        self.splice = splice = read.splice
        self.groups = read.found.groups()
        self.runtime = runtime
        self.backend = backend
        self.account = account
        #: The sites, all with a key query; the key queries to send (each text once:
        #: calls with the same inputs in one scope share one, as the quick path's do),
        #: and per site the index of its own among them.
        self.queried = splice.sites
        #: How often the backend socket's callback offered results (gathered_results).
        self.reads = 0
        #: The single trip sent in place of the key queries, if the shape has one (and
        #: the session takes it: SessionPlanner.two_trips).
        self.single = read.single
        #: Whether the single trip's result held a row whose answer is not cached.
        self.missed = False
        texts = []
        if self.single is None:  # (a single trip sends no key query)
            for site in splice.sites:  # (loops, not comprehensions: one per request)
                texts.append(site.key_query.joined(self.groups))
        self.texts, self.query_of = distinct(texts)

    def queries(self) -> bytes:
        """The key queries, framed, to send at once; or the single trip."""
        payload = self.backend.query_payload
        if self.single is not None:
            return frame(payload(self.single.text(self.groups, self.backend.charset.codec)), 0)
        if len(self.texts) == 1:  # the usual one
            return frame(payload(self.texts[0]), 0)
        return b"".join([frame(payload(text), 0) for text in self.texts])

    def answer(self, data: bytes) -> Rewrite | Partial | None:
        """The rewrite (not yet counted: Rewrite.count) from the key queries' results in
        ``data`` and the cache; PARTIAL while they are not all in; None to leave the
        statement to the task."""
        self.reads += 1
        results = gathered_results(data, len(self.texts), self.backend.shape, self.reads)
        if results is None or results is PARTIAL:
            return results
        try:
            return self._rewrite(results)
        except (MLStatementError, UnreadableStatement, ProxyError):
            return None  # the task's path reports it

    def served(self, data: bytes) -> Served | Partial | None:
        """The client's result from the single trip's in ``data`` and the cache
        (proxy.ml.fastpath.single_trip); PARTIAL while it is not all in; None to leave
        the statement to the task."""
        assert self.single is not None
        self.reads += 1
        asked: dict[str, Asked] = {}

        def answers(site: int, rows: list[Row]) -> dict[Row, object] | None:
            found = self._answers(self.queried[site], rows, asked)
            if found is None and len(rows) <= CHECK_EVERY:
                self.missed = True  # (not too many rows: an answer the cache lacks)
            return found

        backend, mariadb = self.backend, self.read.settings.syntax.mariadb
        try:
            result = served(data, self.reads, self.single, backend.shape, mariadb, answers)
        except (MLStatementError, ProxyError):
            return None
        if isinstance(result, Served):
            return result._replace(answers=answers_held(asked.values()))
        return result

    def _rewrite(self, results: list[list[Row]]) -> Rewrite | None:
        backend = self.backend
        codec = backend.charset.codec
        asked: dict[str, Asked] = {}
        lookups = []
        for site, at in zip(self.queried, self.query_of, strict=True):
            answers = self._answers(site, results[at], asked)
            if answers is None:
                return None
            inputs = site.input_texts(self.groups, codec)
            lookup = inline_lookup(_Lookup(site.function, inputs, site.literal_inputs), answers)
            if lookup is None:
                return None
            lookups.append(backend.encode(lookup))
        rewritten = self.splice.rewriting.write(self.groups, lookups, codec)
        return Rewrite(frame(backend.query_payload(rewritten), 0), answers_held(asked.values()))

    def _answers(
        self, site: PointSite, rows: list[Row], asked: dict[str, Asked]
    ) -> dict[Row, object] | None:
        """Each row's cached answer (MLStatement.cached_replacements); None when one is
        not cached."""
        if len(rows) > CHECK_EVERY:
            return None
        function = site.function
        family = function.family
        if family not in asked:
            engine = engine_of(self.runtime, function)
            asked[family] = (engine, (self.account, family), [], {})
        engine, namespace, inputs, found = asked[family]
        return held_answers(function, rows, engine, namespace, inputs, found)
