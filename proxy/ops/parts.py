"""The operations parts of one proxy process, built from the settings: its metrics, and
(when it is the only process) the endpoint that serves them with its readiness; a
``--workers`` worker copies its ML counters into its metrics every second instead, and
its supervisor serves the endpoint (proxy.ops.group)."""

from __future__ import annotations

import asyncio
import contextlib

from prometheus_client import CollectorRegistry, generate_latest

from ml_backends.counters import MLCounters
from proxy.config import Config
from proxy.ops.endpoint import OpsEndpoint, Readiness
from proxy.ops.metrics import Metrics
from proxy.upstream.backend import BackendAddress

#: How often a worker copies its ML counters into the shared metrics files.
SYNC_INTERVAL = 1.0


class OpsParts:
    """Nothing at all when ``--metrics-listen`` is off."""

    def __init__(self, metrics: Metrics | None, endpoint_address: tuple[str, int] | None) -> None:
        self.metrics = metrics
        self._address = endpoint_address
        self.endpoint: OpsEndpoint | None = None
        self.readiness: Readiness | None = None
        self._sync: asyncio.Task[None] | None = None

    @classmethod
    def for_process(cls, config: Config, is_worker: bool) -> OpsParts:
        address = config.metrics_address
        if address is None:
            return cls(None, None)
        return cls(Metrics(CollectorRegistry()), None if is_worker else address)

    def serving(self, counters: MLCounters, backend: BackendAddress) -> None:
        """The listener serves: start the endpoint (or, in a worker, the copying of the
        process's ML ``counters``); ready while ``backend`` accepts connections."""
        metrics = self.metrics
        if metrics is None:
            return
        if self._address is None:
            copying = _copy_counters(metrics, counters)
            self._sync = asyncio.create_task(copying, name="mlproxy-metrics")
            return
        self.readiness = Readiness(backend)

        def exposition() -> bytes:
            metrics.sync_ml_counters(counters)
            return generate_latest(metrics.registry)

        self.endpoint = OpsEndpoint(self._address, exposition, self.readiness).start()
        self.readiness.serving = True

    def stopping(self) -> None:
        if self.readiness is not None:
            self.readiness.stopping = True

    async def close(self) -> None:
        if self._sync is not None:
            self._sync.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sync
        if self.endpoint is not None:
            await asyncio.to_thread(self.endpoint.stop)


async def _copy_counters(metrics: Metrics, counters: MLCounters) -> None:
    try:
        while True:
            await asyncio.sleep(SYNC_INTERVAL)
            metrics.sync_ml_counters(counters)
    finally:
        metrics.sync_ml_counters(counters)  # the last second's counts too
