"""Lookup tables filled while the model is still answering.

A row-dependent call site with many distinct inputs gets its answers through a session
temporary table. Its INSERTs go out as the engine's batches come back, without waiting
for each OK: the backend stores one part of the answers (on its own core) while the
proxy scores the next, and the replies are read once inference is over. On a 2-core
machine the INSERTs were 20 ms of a 330 ms statement of 10,000 distinct texts
(bench.ml_local), all of it spent after the model had finished.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Hashable, Mapping, Sequence

from ml_backends.base import ItemError
from ml_backends.slices import LoopSlices
from proxy.errors import BackendRejected
from proxy.ml import answers as ml_answers
from proxy.ml.answers import KEY_COLUMN, TEMP_PREFIX, VALUE_COLUMN, table_row
from proxy.upstream.backend import BackendConnection
from proxy.upstream.internal import Row
from proxy.wire.packets import ERR_HEADER, parse_err
from rewriter.plan import CallSite

#: Bytes of VALUES per INSERT: small enough that the first ones are stored while the
#: model still works, large enough that each statement's own cost stays negligible.
INSERT_BYTES = 1 << 16


class PipelinedStatements:
    """Statements that answer OK or ERR, sent on the session's backend connection
    without waiting for their replies (the backend runs them in order)."""

    def __init__(self, backend: BackendConnection) -> None:
        self.backend = backend
        self._unread = 0

    def send(self, sql: str) -> None:
        self.backend.stream.write(self.backend.query_payload(self.backend.encode(sql)), 0)
        self._unread += 1

    async def finish(self) -> None:
        """Read every reply; raise the first ERR's BackendRejected (after reading all,
        so the connection is ready for the next statement either way)."""
        first_error = None
        while self._unread:
            reply = (await self.backend.read()).payload
            self._unread -= 1
            if reply[:1] == bytes((ERR_HEADER,)) and first_error is None:
                first_error = parse_err(reply)
        if first_error is not None:
            raise BackendRejected(first_error)

    async def abandon(self) -> None:
        """Read the replies after a failure elsewhere: the connection must be in step
        for the client's next statement; their own errors no longer matter."""
        with contextlib.suppress(BackendRejected):
            await self.finish()


class LookupTable:
    """One call site's temporary table: the key columns, then the answer."""

    def __init__(self, site: CallSite, statements: PipelinedStatements) -> None:
        self.site = site
        self.name = f"{TEMP_PREFIX}{site.index}"
        self._statements = statements
        self._stored: set[Row] = set()
        self._pending: list[str] = []
        self._pending_bytes = 0

    def create(self) -> None:
        keys = [f"{KEY_COLUMN}{i}" for i in range(len(self.site.inputs))]
        columns = ", ".join(f"{k} LONGBLOB" for k in keys)
        self._statements.send(f"DROP TEMPORARY TABLE IF EXISTS {self.name}")
        self._statements.send(
            f"CREATE TEMPORARY TABLE {self.name} ({columns}, "
            f"{VALUE_COLUMN} {self.site.function.column_type}, KEY ({KEY_COLUMN}0(255)))"
        )

    def add_batch(
        self,
        rows_of: Mapping[Hashable, Sequence[Row]],
        inputs: Sequence[Hashable],
        outcomes: Sequence[object],
    ) -> None:
        """Store the answers of one engine batch (``rows_of``: this site's key rows by
        backend input); failed items are left to the statement's error handling."""
        for value, outcome in zip(inputs, outcomes, strict=True):
            if outcome is None or isinstance(outcome, ItemError):
                continue
            for row in rows_of.get(value, ()):
                self._add(row, outcome)
        if self._pending_bytes >= INSERT_BYTES:
            self._flush()

    async def complete(self, answers: Mapping[Row, object]) -> None:
        """Store the answers no batch brought (cached ones); start over if the final
        answers turned stored ones to NULL (a failure under @mlproxy_on_error='null').
        Many rows go out in INSERTs of INSERT_BYTES, yielding to the loop between them."""
        slices = LoopSlices()
        if [row async for row in slices.each(self._stored) if answers.get(row) is None]:
            self._pending, self._pending_bytes = [], 0
            self._stored.clear()
            self._statements.send(f"DELETE FROM {self.name}")
        async for row, answer in slices.each(answers.items()):
            if answer is not None:
                self._add(row, answer)
            if self._pending_bytes >= INSERT_BYTES:
                self._flush()
        self._flush()

    def _add(self, row: Row, answer: object) -> None:
        if row in self._stored:  # a batch brought it already
            return
        self._stored.add(row)
        value = table_row(self.site.function, row, answer)
        self._pending.append(value)
        self._pending_bytes += len(value) + 2

    def _flush(self) -> None:
        if self._pending:
            self._statements.send(f"INSERT INTO {self.name} VALUES " + ", ".join(self._pending))
            self._pending, self._pending_bytes = [], 0


async def rows_by_input(keyed: Mapping[Row, Hashable | None]) -> dict[Hashable, list[Row]]:
    """Key rows grouped by the backend input they become (several rows may share one)."""
    rows_of: dict[Hashable, list[Row]] = {}
    async for row, value in LoopSlices().each(keyed.items()):
        if value is not None:
            rows_of.setdefault(value, []).append(row)
    return rows_of


def needs_table(keyed: Mapping[Row, Hashable | None]) -> bool:
    """More inputs to answer than a statement can carry inline: the table is certain
    before any answer, so it can be filled as answers come. (The limit is read at each
    call, as inline_lookup reads it.)"""
    limit = ml_answers.INLINE_MAX_ANSWERS
    answered = (value for value in keyed.values() if value is not None)
    return next(itertools.islice(answered, limit, None), None) is not None
