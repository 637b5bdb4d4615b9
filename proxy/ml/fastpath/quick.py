"""Small ML statements with cached answers, served from the sockets' callbacks.

The proxy serves a plain statement without waking the session's task: the client's
bytes go to the backend from the client socket's callback, the response to the client
from the backend socket's (proxy.transport.relay). An ML statement costs more than its
work: the task wakes for the command and again for each answer of the backend, and
resuming it (a dozen coroutines deep) is a large part of what a point select with a cached
answer costs the proxy. So a statement that needs nothing the callbacks cannot do is
served the same way:

1. its plan is known without a query (the session's settings are known, it calls the
   built-in functions only: proxy.ml.fastpath.planning.SessionPlanner.read_now);
2. it is small: one wave of calls, no ROW_COUNT()/FOUND_ROWS(), constant inputs known
   from the text, at most MAX_QUERIES key queries, none reading another call's answers;
3. the client socket's callback sends its key queries, all at once;
4. the backend socket's callback receives their results, gathered over the reads they
   take (the stream holds them: proxy.transport.stream.MORE; at most MAX_READS) up to
   QUICK_BYTES (plus the read that passes it: what the statement holds in the proxy, so
   it is not counted against ml_statement_memory, only admitted while the process is
   below ml_memory), and the cache answers every input: the rewrite is written and its
   response relayed as a plain statement's.

Whatever does not fit (results over QUICK_BYTES or MAX_READS, an error, an input not
cached, an answer too large for the statement) goes to the session's task as it is, which
takes the
statement from there (MLStatement.prepare_sent: the key queries' results are read from
the backend, the rest as for any statement). The results are the same either way: the
same plan, the same cache, the same rewrite, the same counts.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import TypeVar

from proxy.errors import ProxyError
from proxy.ml.fastpath.memo import CachedAnswers
from proxy.ml.path import Asked, CallInputs, MLStatement
from proxy.upstream.internal import Row, decode_text_row
from proxy.wire.packets import ERR_HEADER, OK_HEADER, frame, read_lenenc_int
from proxy.wire.result_shape import ResultShape
from rewriter.lexer import UnreadableStatement
from rewriter.plan import CallSite, dependencies

#: The most key queries a statement served from the callbacks sends.
MAX_QUERIES = 4
#: The most bytes of key-query results the callback reads (more goes to the task).
QUICK_BYTES = 1 << 16
T = TypeVar("T", str, bytes)
#: The most reads the callback gathers them over: each offer parses what came so far, so
#: results trickling in small reads go to the task (which reads them once) before that
#: parsing adds up.
MAX_READS = 16


@dataclass(frozen=True)
class QuickAnswer:
    """A statement's rewrite (a framed COM_QUERY) and the cached answers it holds."""

    command: bytes
    asked: list[Asked]

    @property
    def calls(self) -> int:
        """The ML calls the statement makes (each answered from the cache)."""
        return sum(len(wanted) for _, _, wanted, _ in self.asked)


class QuickStatement:
    """One ML statement served from the callbacks (module docstring)."""

    def __init__(self, statement: MLStatement, wave: list[CallSite]) -> None:
        self.statement = statement
        self.wave = wave
        #: The row-dependent sites, whose key queries go to the backend in this order
        #: (each text once: calls with the same inputs in the same scope share it).
        self.queried = [site for site in wave if not site.constant]
        #: How often the backend socket's callback offered results (gathered_results).
        self.reads = 0
        #: The key queries to send, and per queried site the index of its own among them.
        self.texts, self.query_of = distinct([site.key_query or "" for site in self.queried])

    @classmethod
    def of(cls, statement: MLStatement) -> QuickStatement | None:
        """The quick form of ``statement`` (its plan built on the built-ins only), or
        None when it needs the task."""
        plan = statement.plan
        if plan.state_calls or len(plan.calls) > MAX_QUERIES:
            return None
        waves = plan.waves()
        if len(waves) != 1:
            return None
        for site in waves[0]:
            if site.constant and site.known_inputs is None:
                return None
            if not site.constant and (site.key_query is None or dependencies(site.key_query)):
                return None
        if not statement.runtime.memory.has_room():
            return None
        return cls(statement, waves[0])

    def queries(self) -> bytes:
        """The key queries, framed, to send at once."""
        backend = self.statement.backend
        return b"".join(
            frame(backend.query_payload(backend.encode(text)), 0) for text in self.texts
        )

    def answer(self, data: bytes) -> QuickAnswer | Partial | None:
        """The rewrite, from the key queries' results in ``data`` and the cache; PARTIAL
        while they are not all in; None to leave the statement to the task (nothing
        counted)."""
        self.reads += 1
        results = gathered_results(data, len(self.texts), self.statement.backend.shape, self.reads)
        if results is None or results is PARTIAL:
            return results
        inputs = CallInputs()
        statement = self.statement
        for site in self.wave:
            if site.known_inputs is not None:
                inputs.by_site[site.index] = [site.known_inputs]
        for site, at in zip(self.queried, self.query_of, strict=True):
            inputs.by_site[site.index] = results[at]
        found = statement.cached_replacements(self.wave, inputs)
        if found is None:
            return None
        replacements, asked = found
        try:
            rewritten = statement.plan.rewrite(replacements)
            command = frame(statement.backend.query_payload(statement.backend.encode(rewritten)), 0)
        except (UnreadableStatement, ProxyError):
            return None
        return QuickAnswer(command, asked)

    def count(self, answer: QuickAnswer) -> None:
        """Count the answers once the rewrite is on its way."""
        self.statement.count_cached(answer.asked)

    def cached(self) -> tuple[CachedAnswers, ...] | None:
        """After ``count``: what proxy.ml.fastpath.memo may keep of the statement."""
        return self.statement.cached_answers()


class Partial(Enum):
    """Key queries' results not all in yet (the backend socket's callback waits for
    the rest: proxy.transport.stream.MORE)."""

    PARTIAL = "partial"


PARTIAL = Partial.PARTIAL


def distinct(texts: list[T]) -> tuple[list[T], list[int]]:
    """Each key query's text once, in order, and per call the index of its own: calls
    with the same inputs in one scope share one run (as MLStatement.collect does)."""
    if len(texts) == 1:  # a point select's usual one call
        return texts, [0]
    unique = list(dict.fromkeys(texts))
    return unique, [unique.index(text) for text in texts]


def gathered_results(
    data: bytes, count: int, shape: ResultShape, reads: int
) -> list[list[Row]] | Partial | None:
    """key_query_results of ``data``, the ``reads``-th offer of them: None past
    QUICK_BYTES, or still PARTIAL at the MAX_READS-th offer."""
    if len(data) > QUICK_BYTES:
        return None
    results = key_query_results(data, count, shape)
    return None if results is PARTIAL and reads >= MAX_READS else results


#: packet_at's offset for a 16 MiB packet, which a key query of a small statement never sends.
_TOO_LONG = -1


def key_query_results(
    data: bytes, count: int, shape: ResultShape
) -> list[list[Row]] | Partial | None:
    """The rows of ``count`` text-protocol result sets (of the connection's negotiated
    ``shape``) that are all of ``data``; PARTIAL when ``data`` is their start (a packet
    not all there); None for anything else (an error, an OK, bytes after them)."""
    results = []
    pos, end = 0, len(data)
    for _ in range(count):
        payload, pos = packet_at(data, pos)
        if payload is None:
            return unfinished(pos)
        if payload[0] in (ERR_HEADER, OK_HEADER):
            return None
        columns, _ = read_lenenc_int(payload, 0)
        pos = _skipped(data, pos, shape.head_size(payload) - 1)  # the definitions, their EOF
        if pos < 0:
            return unfinished(pos)
        rows: list[Row] = []
        while True:
            payload, pos = packet_at(data, pos)
            if payload is None:
                return unfinished(pos)
            if payload[0] == ERR_HEADER:
                return None
            if shape.is_end(payload):
                break
            rows.append(decode_text_row(payload, columns))
        results.append(rows)
    return results if pos == end else None


def unfinished(pos: int) -> Partial | None:
    """PARTIAL for a response cut at ``pos``; None past a 16 MiB packet (packet_at)."""
    return None if pos == _TOO_LONG else PARTIAL


def _skipped(data: bytes, pos: int, count: int) -> int:
    """The offset after ``count`` packets from ``pos``, read without copying them (a
    key query's column definitions); when they are not all there, minus ``pos`` (at
    least 4 here, a column count came first: PARTIAL for unfinished), and _TOO_LONG
    for a 16 MiB one (as packet_at)."""
    for _ in range(count):
        if pos + 4 > len(data):
            return -pos
        length = data[pos] | data[pos + 1] << 8 | data[pos + 2] << 16
        if length >= 0xFFFFFF:
            return _TOO_LONG
        if pos + 4 + length > len(data):
            return -pos
        pos += 4 + length
    return pos


def packet_at(data: bytes, pos: int) -> tuple[bytes | None, int]:
    """The payload of the packet at ``pos`` and the offset after it; None and ``pos``
    when it is not all there, None and _TOO_LONG for a 16 MiB one."""
    if pos + 4 > len(data):
        return None, pos
    length = data[pos] | data[pos + 1] << 8 | data[pos + 2] << 16
    if length >= 0xFFFFFF:
        return None, _TOO_LONG
    start, stop = pos + 4, pos + 4 + length
    if stop > len(data):
        return None, pos
    return data[start:stop], stop
