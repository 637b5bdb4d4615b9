"""Where the log goes: one record per line on stderr, under the ``mlproxy`` logger and the
packages' own (``proxy``, ``rewriter``, ``ml_backends``).

Two formats (``--log-format``): ``text`` for people, ``json`` for log shippers, one JSON
object per line with ``time``, ``level``, ``logger``, ``message``, the ``worker`` (with
``--workers``) and what the record carries: a session's ``connection_id`` and ``user``,
an ML statement's summary (``ml``: calls, backend requests, cache hits, retries, seconds).
Passwords and statement parameters never reach a record at info level.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import MutableMapping
from datetime import UTC, datetime
from typing import Any

#: Record attributes a JSON line carries when a record has them (LoggerAdapter extras).
CONTEXT_FIELDS = ("connection_id", "user", "ml")


class JSONFormatter(logging.Formatter):
    """One JSON object per record."""

    def __init__(self, worker: int | None = None) -> None:
        super().__init__()
        self.worker = worker

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if self.worker is not None:
            line["worker"] = self.worker
        for name in CONTEXT_FIELDS:
            value = record.__dict__.get(name)
            if value is not None:
                line[name] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


class ContextLog(logging.LoggerAdapter[logging.Logger]):
    """A session's logger: its context (``connection_id``, then ``user``) joins each
    call's own ``extra`` instead of replacing it (the standard adapter's rule)."""

    def process(self, msg: str, kwargs: MutableMapping[str, Any]) -> tuple[str, Any]:
        kwargs["extra"] = {**(self.extra or {}), **kwargs.get("extra", {})}
        return msg, kwargs

    def add_context(self, **values: object) -> None:
        self.extra = {**(self.extra or {}), **values}


def configure_logging(level: str, worker: int | None = None, log_format: str = "text") -> None:
    """Log records on stderr; a worker process (--workers) says which one it is."""
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JSONFormatter(worker))
    else:
        who = "" if worker is None else f"[worker {worker}]"
        handler.setFormatter(
            logging.Formatter(f"%(asctime)s %(levelname)s %(name)s{who}: %(message)s")
        )
    logging.basicConfig(level=getattr(logging, level.upper(), logging.INFO), handlers=[handler])
