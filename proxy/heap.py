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
"""

from __future__ import annotations

import gc

#: Container allocations between young-generation passes (CPython's default: 700).
YOUNG_THRESHOLD = 10_000


def settle_after_startup() -> None:
    """Freeze what start-up allocated and make young-generation passes rarer."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
