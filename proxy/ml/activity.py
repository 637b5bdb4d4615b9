"""An ML statement while the proxy works on it: what KILL stops, what SHOW PROCESSLIST
shows, and the progress reports a MariaDB client asked for (issue 12).

Most of an ML statement's time goes to the model's answers, and then its backend
thread is idle: a KILL QUERY sent to that thread stops nothing, and the process list
shows it as Sleep. So each session keeps its running ML statement here:

- ``interrupt`` (KILL QUERY or CONNECTION of the session, shutdown) cancels the wait for
  answers at once: no request starts after it (ml_backends.control.stop), backoff waits end,
  requests in flight are abandoned; the statement fails with the interruption's error
  (1317 for KILL QUERY) after dropping its lookup tables (proxy.ml.path). A statement
  interrupted while the backend runs one of its own steps (a key query, the rewritten
  statement) is stopped by the backend, which got the same KILL; ``check`` keeps an
  interruption that came between two steps from being lost.
- ``snapshot`` is what SHOW PROCESSLIST shows for the session's backend thread (proxy.
  processlist): the client's statement, and while the proxy waits on the model, State
  ``Batched machine learning`` and Progress.
- Progress follows MariaDB's stages: each wave of calls (proxy.ml.path; usually one) is
  a stage, whose progress is the share of its backend requests answered (the requests
  the engine estimated before sending). A client that asked for progress reports gets
  one every ``progress_report_time`` seconds (MariaDB's session variable, 5 by default)
  while the proxy waits, as for ALTER TABLE.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

from ml_backends.control.stop import start_stoppable
from ml_backends.counters import MLCounters
from proxy.errors import Interrupted
from proxy.transport.stream import PacketStream
from proxy.wire.packets import Progress, make_progress
from proxy.wire.seq_shift import SequenceShift

T = TypeVar("T")

#: The State a waiting ML statement shows, and its progress reports' stage name.
PROGRESS_STATE = "Batched machine learning"
#: CLIENT_PROGRESS_OBSOLETE: a client that sets it reads progress reports.
CLIENT_PROGRESS = 1 << 29


@dataclass(frozen=True)
class MLSnapshot:
    """One running ML statement as SHOW PROCESSLIST shows its backend thread."""

    thread_id: int
    command: str  # Query, or Execute for a prepared statement
    seconds: int
    waiting: bool  # on the model's answers
    percent: float
    info: str


class ProgressReports:
    """The progress report packets one client gets during one statement, from the
    response's first sequence id on; ``sent`` of them shift what follows."""

    def __init__(self, client: PacketStream, first_seq: int, interval: float) -> None:
        self.client = client
        self.interval = interval
        self.sent = 0
        self._seq = first_seq
        self.due = time.monotonic() + interval

    def send(self, progress: Progress) -> None:
        self.due = time.monotonic() + self.interval
        if self.client.is_closing():
            return
        try:
            self._seq = self.client.write(make_progress(progress), self._seq)
        except (OSError, RuntimeError):  # a client gone: its read says so
            return
        self.sent += 1


class RunningML:
    """One session's ML statement, from its plan to the end of its result."""

    def __init__(self, info: str, command: str, counters: MLCounters) -> None:
        self.info = info
        self.command = command
        self.started = time.monotonic()
        #: Progress reports, for a client that asked for them (proxy.session.ml_handlers).
        self.reports: ProgressReports | None = None
        self.interruption: Interrupted | None = None
        self.waiting = False
        self._counters = counters
        self._stage = 0
        self._stages = 1
        self._expected = 0
        self._answered_before = 0
        self._inference: asyncio.Task[Any] | None = None

    # -- progress -----------------------------------------------------------------------

    def begin_stage(self, index: int, stages: int, expected_requests: int) -> None:
        """Stage ``index`` (from 0) of ``stages`` starts; it expects this many requests,
        answered as the session's actual_response_cnt counts them."""
        self._stage, self._stages = index, max(stages, 1)
        self._expected = expected_requests
        self._answered_before = self._counters.actual_response_cnt

    def stage_percent(self) -> float:
        if self._expected <= 0:
            return 0.0
        answered = self._counters.actual_response_cnt - self._answered_before
        return min(100.0, 100.0 * answered / self._expected)

    def percent(self) -> float:
        """The whole statement's progress as MariaDB computes its Progress column:
        the stages done, plus the current stage's share, over the stages."""
        return (self._stage + self.stage_percent() / 100) / self._stages * 100

    def shift(self) -> SequenceShift | None:
        """How the response relayed after the progress reports is renumbered."""
        sent = self.reports.sent if self.reports is not None else 0
        return SequenceShift(sent) if sent else None

    def progress(self) -> Progress:
        return Progress(self._stage + 1, self._stages, self.stage_percent(), PROGRESS_STATE)

    def snapshot(self, thread_id: int) -> MLSnapshot:
        seconds = int(time.monotonic() - self.started)
        return MLSnapshot(thread_id, self.command, seconds, self.waiting, self.percent(), self.info)

    # -- interruption -------------------------------------------------------------------

    def interrupt(self, error: Interrupted) -> None:
        """Stop the statement with ``error`` (a KILL CONNECTION after a KILL QUERY wins)."""
        if self.interruption is None or (error.ends_session and not self.interruption.ends_session):
            self.interruption = error
        if self._inference is not None:
            self._inference.cancel()

    def check(self) -> None:
        """Raise the interruption, if any: called between the statement's steps."""
        if self.interruption is not None:
            raise self.interruption

    async def infer(self, work: Coroutine[Any, Any, T]) -> T:
        """``work``'s result (the model's answers), unless the statement is interrupted
        first; sends the progress reports that fall due meanwhile."""
        if self.interruption is not None:
            work.close()
            raise self.interruption
        task = start_stoppable(work, lambda: self.interruption is not None)
        task.add_done_callback(_retrieve)
        self._inference, self.waiting = task, True
        try:
            while not task.done():
                await asyncio.wait({task}, timeout=self._until_report())
                reports = self.reports
                if not task.done() and reports is not None and time.monotonic() >= reports.due:
                    reports.send(self.progress())
        finally:
            self._inference, self.waiting = None, False
            if not task.done():  # this task was cancelled (the client left): stop the work
                task.cancel()
        if task.cancelled() or task.exception() is not None:
            self.check()  # interrupted: whatever the work made of its cancellation
        if task.cancelled():
            raise asyncio.CancelledError  # cancelled by no one of ours: pass it on
        return task.result()

    def _until_report(self) -> float | None:
        if self.reports is None:
            return None
        return max(0.0, self.reports.due - time.monotonic())


def _retrieve(task: asyncio.Task[Any]) -> None:
    """Mark the inference's exception as seen: the session that left (its client gone)
    no longer waits for it, and its failure is no news (asyncio would log it)."""
    if not task.cancelled():
        task.exception()
