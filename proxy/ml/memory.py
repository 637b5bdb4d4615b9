"""What ML statements may hold in the proxy: a budget per statement and one per process.

An ML statement brings its key rows (each call's distinct inputs) and the model's answers
into the proxy. Both are counted as they arrive, before more is read or kept:

- ``ml_statement_memory``: one statement over it fails with 1041 (ER_OUT_OF_RESOURCES),
  its key query read to the end and dropped so the session stays usable;
- ``ml_memory``: every ML statement of the process together. A statement whose growth
  would take the process over it fails the same way; a new statement waits (at most
  ``ml_memory_wait`` seconds) while the process is near it, then fails with 1041.

Sizes are estimates of what Python holds (the values' bytes plus a fixed cost per row for
the tuples and dictionaries each row passes through), not exact allocations.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from proxy.errors import ErrorCode, MLStatementError

ER_OUT_OF_RESOURCES = ErrorCode.OUT_OF_RESOURCES

#: The settings' defaults: 64 MiB per statement (about 65,000 distinct inputs of 100
#: bytes), 512 MiB for the process (eight such statements at once).
DEFAULT_STATEMENT_MEMORY = 64 << 20
DEFAULT_PROCESS_MEMORY = 512 << 20
DEFAULT_WAIT = 5.0

#: Bytes one key row costs besides its values: the row tuple and the dictionaries and
#: lists that key it, group it and hold its answer. tracemalloc measured a peak of
#: 5.2 MiB for 10,000 rows of 12-byte keys through a whole statement (about 530 bytes a
#: row); counted higher, so a budget errs on the safe side.
ROW_COST = 700
#: Each value's bytes are held about this many times (the row's bytes, the decoded text
#: sent to the model, and its hex form in an INSERT being built).
VALUE_COPIES = 3

#: A new statement waits while the process holds this share of ml_memory or more.
ADMIT_BELOW = 0.9
#: How often a waiting statement looks again.
WAIT_STEP = 0.02


def row_cost(payload_bytes: int) -> int:
    """What one key row of ``payload_bytes`` (its text-protocol payload) costs."""
    return ROW_COST + VALUE_COPIES * payload_bytes


@dataclass
class ProcessMemory:
    """The ML memory every statement of this process holds together."""

    limit: int = DEFAULT_PROCESS_MEMORY
    #: Seconds a new statement waits for memory before it is refused.
    wait: float = DEFAULT_WAIT
    used: int = 0

    def has_room(self) -> bool:
        """Whether a new statement would be admitted at once."""
        return self.used < self.limit * ADMIT_BELOW

    async def admit(self, statement_limit: int) -> StatementMemory:
        """A new statement's budget, once the process has room for it."""
        deadline = time.monotonic() + self.wait
        while self.used >= self.limit * ADMIT_BELOW:
            if time.monotonic() >= deadline:
                raise MLStatementError(
                    f"out of ML memory: other statements hold {self.used} bytes of the "
                    f"proxy's ml_memory ({self.limit}); none was released within "
                    f"{self.wait:g} s (ml_memory_wait)",
                    ER_OUT_OF_RESOURCES,
                )
            await asyncio.sleep(WAIT_STEP)
        return StatementMemory(statement_limit, self)


@dataclass
class StatementMemory:
    """What one ML statement holds; ``release()`` gives it back to the process."""

    limit: int
    process: ProcessMemory | None = None
    used: int = field(default=0)

    def charge(self, size: int, what: str) -> None:
        """Count ``size`` more bytes of ``what`` (key rows, answers); raise 1041 when
        the statement or the process goes over its budget."""
        self.used += size
        process = self.process
        if process is not None:
            process.used += size
        if self.used > self.limit:
            raise MLStatementError(
                f"out of ML memory: the statement's {what} need more than "
                f"ml_statement_memory ({self.limit} bytes) in the proxy; narrow it "
                "(fewer distinct inputs, shorter answers) or raise the setting",
                ER_OUT_OF_RESOURCES,
            )
        if process is not None and process.used > process.limit:
            raise MLStatementError(
                f"out of ML memory: the proxy's ML statements hold more than ml_memory "
                f"({process.limit} bytes); try again when others have finished",
                ER_OUT_OF_RESOURCES,
            )

    def release(self) -> None:
        if self.process is not None:
            self.process.used -= self.used
        self.used = 0
