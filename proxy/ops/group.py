"""The operations endpoint of a ``--workers`` process group, served by the supervisor.

prometheus-client's multiprocess mode: every worker writes its metrics to files in one
directory (``PROMETHEUS_MULTIPROC_DIR``, set here before the workers start: spawned
interpreters read it when prometheus-client is first imported), and a scrape of the
supervisor adds them up. A worker that exits is marked dead, so the connection gauge
counts live workers only; its counters stay (counters never go down).
"""

from __future__ import annotations

import os
import shutil
import tempfile

from prometheus_client import CollectorRegistry, generate_latest, multiprocess

from proxy.config import Config
from proxy.ops.endpoint import OpsEndpoint, Readiness

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


class GroupOps:
    """Nothing at all when ``--metrics-listen`` is off."""

    def __init__(self, config: Config) -> None:
        self._address = config.metrics_address
        self.readiness = Readiness(config.backend_address)
        self.directory: str | None = None
        self.endpoint: OpsEndpoint | None = None

    def prepare(self) -> None:
        """Before the workers start: the directory they write their metrics to."""
        if self._address is None:
            return
        self.directory = tempfile.mkdtemp(prefix="mlproxy-metrics-")
        os.environ[MULTIPROC_ENV] = self.directory

    def serving(self) -> None:
        """Every worker listens: serve the endpoint."""
        if self._address is None or self.directory is None:
            return
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=self.directory)
        self.endpoint = OpsEndpoint(
            self._address, lambda: generate_latest(registry), self.readiness
        )
        self.endpoint.start()
        self.readiness.serving = True

    def worker_exited(self, pid: int | None) -> None:
        if self.directory is not None and pid is not None:
            multiprocess.mark_process_dead(pid, self.directory)

    def stopping(self) -> None:
        self.readiness.stopping = True

    def close(self) -> None:
        if self.endpoint is not None:
            self.endpoint.stop()
        if self.directory is not None:
            os.environ.pop(MULTIPROC_ENV, None)
            shutil.rmtree(self.directory, ignore_errors=True)
