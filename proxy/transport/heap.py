"""The garbage collector's settings for a proxy process, applied once start-up is done.

CPython's cyclic collector makes a young-generation pass every 700 allocations of
container objects and, every hundred or so of those, a pass over everything tracked. An
ML statement allocates tens of thousands of short-lived tuples (key rows, backend
inputs, answers) while the process holds many long-lived objects from start-up
(sqlglot's tables, the model, the modules): with the defaults the collector took about
5% of a 10,000-row local sentiment statement (bench.ml_local: 0.32 s, 0.307 s with the
collector off or tuned as here). So, after start-up:

- the objects alive then are frozen: full passes no longer walk them;
- a young pass runs every 10,000 container allocations: the hot paths make few cycles
  (reference counting frees the rest at once), so rarer passes find as much garbage.

And the C allocator's (glibc's) threshold for giving large blocks pages of their own is
fixed at 1 MiB. glibc raises it each time such a block is freed, up to 32 MiB: after one
16 MiB message, the next ones come from the heap, which keeps what they freed. The
protocol fuzzer's run grew the proxy's RSS from 58 to 100 MiB so (repeated runs swung
between 150 and 245 MiB around 16 MiB messages, while the memory Python tracks stayed
flat: no leak, the allocator's keeping); with the threshold fixed, the same runs stay
within 1 MiB of where they started.
"""

from __future__ import annotations

import ctypes
import gc

#: Container allocations between young-generation passes (CPython's default: 700).
YOUNG_THRESHOLD = 10_000


#: Blocks of this size and more are mapped on their own and unmapped when freed.
MMAP_THRESHOLD = 1 << 20
_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter number


def settle_after_startup() -> None:
    """Freeze what start-up allocated, make young-generation passes rarer, and have
    large blocks returned to the OS when freed."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
    fix_mmap_threshold()


def fix_mmap_threshold(threshold: int = MMAP_THRESHOLD) -> bool:
    """Fix glibc's mmap threshold (module docstring); False where the C library has no
    mallopt (macOS) or refuses it."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, threshold))
