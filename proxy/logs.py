"""Where the log goes: one record per line on stderr, every logger under the one root
``mlproxy`` (a module's is ``mlproxy.`` + its ``__name__``: ``mlproxy.proxy.server``).

Two formats (``--log-format``): ``text`` for people, ``json`` for log shippers, one JSON
object per line with ``time``, ``level``, ``logger``, ``message``, the ``worker`` (with
``--workers``) and what the record carries: a session's ``connection_id`` and ``user``,
an ML statement's summary (``ml``: calls, backend requests, cache hits, retries, seconds).
The connection id comes from the session that logs (``CONNECTION_ID``, set in its task),
so messages do not write it themselves: the text format shows it as ``[conn 12]``.
Passwords and statement parameters never reach a record at info level.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import MutableMapping
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

#: The root of every logger of the project.
ROOT = "mlproxy"

#: Record attributes a JSON line carries when a record has them (LoggerAdapter extras).
CONTEXT_FIELDS = ("connection_id", "user", "ml")

#: The client connection whose task is running: set once per session, inherited by the
#: tasks and threads it starts, so whatever logs on its behalf (the ML engine, the
#: rewriter) is tagged with it.
CONNECTION_ID: ContextVar[int | None] = ContextVar("mlproxy_connection_id", default=None)


class ConnectionContext(logging.Filter):
    """Gives a record the running session's ``connection_id`` when it has none."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "connection_id", None) is None:
            record.connection_id = CONNECTION_ID.get()
        return True


class TextFormatter(logging.Formatter):
    """``time LEVEL logger[worker N] [conn 12]: message``, the connection's tag only
    on a session's records."""

    def __init__(self, worker: int | None = None) -> None:
        who = "" if worker is None else f"[worker {worker}]"
        super().__init__(f"%(asctime)s %(levelname)s %(name)s{who}%(conn)s: %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:
        connection_id = getattr(record, "connection_id", None)
        record.conn = "" if connection_id is None else f" [conn {connection_id}]"
        return super().formatMessage(record)


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


def log_handler(
    worker: int | None = None, log_format: str = "text", stream: Any = None
) -> logging.Handler:
    """A handler writing records to ``stream`` (stderr) in ``log_format``, each tagged
    with the connection it was logged for."""
    handler = logging.StreamHandler(sys.stderr if stream is None else stream)
    handler.setFormatter(JSONFormatter(worker) if log_format == "json" else TextFormatter(worker))
    handler.addFilter(ConnectionContext())
    return handler


def configure_logging(level: str, worker: int | None = None, log_format: str = "text") -> None:
    """Log records on stderr; a worker process (--workers) says which one it is."""
    handler = log_handler(worker, log_format)
    logging.basicConfig(level=getattr(logging, level.upper(), logging.INFO), handlers=[handler])
