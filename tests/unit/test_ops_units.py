"""The pieces of proxy/ops and proxy/logs on their own: counter copying across a FLUSH
STATUS, the metered backend's outcomes, the JSON log line."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections.abc import Hashable, Sequence

import pytest
from prometheus_client import CollectorRegistry

from ml_backends.base import Backend, Outcome
from ml_backends.counters import MLCounters
from ml_backends.errors import InferenceFailed, RetryableError, Throttled
from proxy.logs import ContextLog, JSONFormatter
from proxy.ops.metrics import MeteredBackend, Metrics


def sample(metrics: Metrics, name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


def test_ml_counters_are_copied_as_deltas_and_a_reset_is_a_new_start() -> None:
    metrics, counters = Metrics(CollectorRegistry()), MLCounters()
    counters.cache_hit_cnt, counters.actual_request_cnt = 3, 2
    metrics.sync_ml_counters(counters)
    metrics.sync_ml_counters(counters)  # nothing new
    counters.reset()  # FLUSH STATUS
    counters.cache_hit_cnt = 1
    metrics.sync_ml_counters(counters)
    assert sample(metrics, "mlproxy_aurora_ml_cache_hit_cnt_total") == 4
    assert sample(metrics, "mlproxy_ml_cache_hits_total") == 4
    assert sample(metrics, "mlproxy_aurora_ml_actual_request_cnt_total") == 2


class Scripted(Backend[Hashable]):
    name = "scripted"
    max_batch_size = 7

    def __init__(self, error: BaseException | None) -> None:
        self.error = error

    def batch_key(self, item: Hashable) -> Hashable:
        return "key"

    async def infer(self, batch: Sequence[Hashable]) -> list[Outcome]:
        if self.error is not None:
            raise self.error
        return list(batch)


@pytest.mark.parametrize(
    ("error", "outcome"),
    [
        (None, "ok"),
        (Throttled("slow down"), "throttled"),
        (RetryableError("503"), "retryable"),
        (InferenceFailed("no"), "failed"),
        (asyncio.CancelledError(), "abandoned"),
    ],
)
def test_the_metered_backend_records_each_outcome(
    error: BaseException | None, outcome: str
) -> None:
    metrics = Metrics(CollectorRegistry())
    backend = MeteredBackend(Scripted(error), metrics)
    assert (backend.name, backend.max_batch_size, backend.batch_key(1)) == ("scripted", 7, "key")
    if error is None:
        assert asyncio.run(backend.infer([1, 2])) == [1, 2]
    else:
        with pytest.raises(type(error)):
            asyncio.run(backend.infer([1]))
    labels = {"backend": "scripted", "outcome": outcome}
    assert sample(metrics, "mlproxy_ml_backend_requests_total", **labels) == 1
    assert sample(metrics, "mlproxy_ml_request_duration_seconds_count", backend="scripted") == 1
    throttled = sample(metrics, "mlproxy_ml_throttled_total", backend="scripted")
    assert throttled == (1 if outcome == "throttled" else 0)


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_a_json_line_has_the_context_and_no_more() -> None:
    handler = Collect()
    records = handler.records
    logger = logging.getLogger("tests.json_line")
    logger.addHandler(handler)
    logger.propagate = False
    log = ContextLog(logger, {"connection_id": 7})
    log.add_context(user="ana")
    log.warning("hello %s", "there", extra={"ml": {"calls": 2}})
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("failed")
    logger.removeHandler(handler)
    first, second = (json.loads(JSONFormatter(worker=1).format(r)) for r in records)
    assert first.keys() == {
        "time",
        "level",
        "logger",
        "message",
        "worker",
        "connection_id",
        "user",
        "ml",
    }
    assert (first["message"], first["level"], first["worker"]) == ("hello there", "warning", 1)
    assert (first["connection_id"], first["user"], first["ml"]) == (7, "ana", {"calls": 2})
    assert "ml" not in second and "ValueError: boom" in second["exception"]
    assert sys.exc_info() == (None, None, None)
