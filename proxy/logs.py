"""Where the log goes: one line per record on stderr, under the ``mlproxy`` logger and the
packages' own (``proxy``, ``rewriter``, ``ml_backends``)."""

from __future__ import annotations

import logging
import sys


def configure_logging(level: str, worker: int | None = None) -> None:
    """Log lines on stderr; a worker process (--workers) says which one it is."""
    who = "" if worker is None else f"[worker {worker}]"
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format=f"%(asctime)s %(levelname)s %(name)s{who}: %(message)s",
        stream=sys.stderr,
    )
