"""The proxy's Prometheus metrics (``--metrics-listen``), with prometheus-client.

What moves them: sessions opening and closing, statements by path (``plain``: relayed as
they are; ``ml``: with ML calls), logins refused, every backend request (its outcome and
duration, through ``MeteredBackend``), and the Aurora_ml counters, copied as deltas
(``sync_ml_counters``) so one definition serves one process and ``--workers``.

With ``--workers N`` each worker writes its values to files in the directory named by
``PROMETHEUS_MULTIPROC_DIR`` (prometheus-client's multiprocess mode, set by the supervisor
before the workers start) and the supervisor's endpoint adds them up; the connection
gauge then sums the live workers only.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Hashable, Sequence
from dataclasses import fields

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from ml_backends.base import Backend, Input, Outcome
from ml_backends.counters import MLCounters
from ml_backends.errors import RetryableError, Throttled

#: Request durations: from a cached local answer (ms) to a slow model (a minute).
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class Metrics:
    """Every metric of one process, on ``registry``."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.client_connections = Gauge(
            "mlproxy_client_connections",
            "client sessions open (logged in or logging in)",
            registry=registry,
            multiprocess_mode="livesum",
        )
        statements = Counter(
            "mlproxy_statements",
            "statements by path: plain (relayed as they are) or ml (with ML calls)",
            ["path"],
            registry=registry,
        )
        self.plain_statements = statements.labels(path="plain")
        self.ml_statements = statements.labels(path="ml")
        self.login_failures = Counter(
            "mlproxy_login_failures",
            "logins refused (wrong credentials, a refused method, too many connections)",
            registry=registry,
        )
        self.backend_requests = Counter(
            "mlproxy_ml_backend_requests",
            "requests to model backends, by outcome (ok, throttled, retryable, failed, abandoned)",
            ["backend", "outcome"],
            registry=registry,
        )
        self.request_duration = Histogram(
            "mlproxy_ml_request_duration_seconds",
            "seconds one model backend request took",
            ["backend"],
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        self.throttled = Counter(
            "mlproxy_ml_throttled",
            "model backend requests the service throttled",
            ["backend"],
            registry=registry,
        )
        self.cache_hits = Counter(
            "mlproxy_ml_cache_hits",
            "ML calls answered from the result cache or by de-duplication",
            registry=registry,
        )
        self.aurora = {
            f.name: Counter(
                f"mlproxy_aurora_ml_{f.name}",
                f"Aurora_ml_{f.name}, as SHOW GLOBAL STATUS shows it",
                registry=registry,
            )
            for f in fields(MLCounters)
        }
        self._copied = MLCounters()
        self._copy_lock = threading.Lock()

    def sync_ml_counters(self, counters: MLCounters) -> None:
        """Add what ``counters`` gained since the last call (FLUSH STATUS resets them: a
        reset is a new start, never a negative step)."""
        with self._copy_lock:
            for f in fields(MLCounters):
                now, before = getattr(counters, f.name), getattr(self._copied, f.name)
                gained = now - before if now >= before else now
                if gained:
                    self.aurora[f.name].inc(gained)
                    if f.name == "cache_hit_cnt":
                        self.cache_hits.inc(gained)
                setattr(self._copied, f.name, now)

    def observe_request(self, backend: str, outcome: str, seconds: float) -> None:
        self.backend_requests.labels(backend=backend, outcome=outcome).inc()
        self.request_duration.labels(backend=backend).observe(seconds)
        if outcome == "throttled":
            self.throttled.labels(backend=backend).inc()


class MeteredBackend(Backend[Input]):
    """``inner`` with each request's outcome and duration recorded; everything else is
    ``inner``'s (its name, batch size and batch keys)."""

    def __init__(self, inner: Backend[Input], metrics: Metrics) -> None:
        self.inner = inner
        self.metrics = metrics
        self.name = inner.name
        self.max_batch_size = inner.max_batch_size
        self.metered = inner.metered

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)  # what a backend adds to the interface

    def batch_key(self, item: Input) -> Hashable:
        return self.inner.batch_key(item)

    async def infer(self, batch: Sequence[Input]) -> list[Outcome]:
        started = time.perf_counter()
        outcome = "failed"
        try:
            answers = await self.inner.infer(batch)
            outcome = "ok"
            return answers
        except Throttled:
            outcome = "throttled"
            raise
        except RetryableError:
            outcome = "retryable"
            raise
        except asyncio.CancelledError:
            outcome = "abandoned"
            raise
        finally:
            self.metrics.observe_request(self.name, outcome, time.perf_counter() - started)

    async def close(self) -> None:
        await self.inner.close()
