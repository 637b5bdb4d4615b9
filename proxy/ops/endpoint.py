"""The operations endpoint (``--metrics-listen HOST:PORT``): ``/metrics`` for Prometheus,
``/healthz`` (the process serves: liveness) and ``/readyz`` (it listens and its backend
answers a TCP connection: readiness; 503 otherwise, and from the start of a shutdown so
a load balancer stops sending new clients before the listener closes).

A small threaded HTTP server, as prometheus-client's own ``start_http_server`` is: it
answers whatever the event loop is doing, a scrape never waits behind a statement, and
the supervisor of ``--workers`` (which runs no event loop) serves it the same way.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST

from proxy.upstream.backend import BackendAddress

log = logging.getLogger(f"mlproxy.{__name__}")

#: Seconds a readiness answer is reused (a probe every second must not open a backend
#: connection every second per prober).
READY_CACHE_SECONDS = 1.0
#: Seconds the backend gets to accept a TCP connection before the proxy is not ready.
BACKEND_CHECK_TIMEOUT = 1.0

#: The endpoint's paths (deploy/: the image's HEALTHCHECK, the Kubernetes probes, the
#: Prometheus scrape and the HAProxy check name them).
METRICS_PATH = "/metrics"
HEALTH_PATH = "/healthz"
READY_PATH = "/readyz"


class Readiness:
    """Ready: serving, not stopping, and the backend accepts TCP connections."""

    def __init__(self, backend: BackendAddress) -> None:
        self.backend = backend
        self.serving = False
        self.stopping = False
        self._checked_at = -READY_CACHE_SECONDS
        self._reachable = False
        self._lock = threading.Lock()

    def why_not(self) -> str | None:
        """None when ready, else the reason (the 503's body)."""
        if self.stopping:
            return "shutting down"
        if not self.serving:
            return "not listening yet"
        if not self._backend_reachable():
            return f"backend {self.backend} unreachable"
        return None

    def _backend_reachable(self) -> bool:
        with self._lock:
            now = time.monotonic()
            if now - self._checked_at >= READY_CACHE_SECONDS:
                self._reachable = _accepts(self.backend)
                self._checked_at = now
            return self._reachable


def _accepts(address: BackendAddress) -> bool:
    try:
        if address.unix_socket:
            with socket.socket(socket.AF_UNIX) as sock:
                sock.settimeout(BACKEND_CHECK_TIMEOUT)
                sock.connect(address.unix_socket)
        else:
            where = (address.host, address.port)
            socket.create_connection(where, timeout=BACKEND_CHECK_TIMEOUT).close()
    except OSError:
        return False
    return True


class OpsEndpoint:
    """The HTTP server on its own daemon thread."""

    def __init__(
        self, address: tuple[str, int], exposition: Callable[[], bytes], readiness: Readiness
    ) -> None:
        self.exposition = exposition
        self.readiness = readiness
        self._server = _Server(address, _Handler, self)
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.2,), name="mlproxy-ops", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> OpsEndpoint:
        self._thread.start()
        log.info("metrics and health on http://%s:%d/metrics", *self._server.server_address[:2])
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: Any, endpoint: OpsEndpoint) -> None:
        self.endpoint = endpoint
        super().__init__(address, handler)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        endpoint = self.server.endpoint
        path = self.path.split("?", 1)[0]
        if path == METRICS_PATH:
            self._reply(200, CONTENT_TYPE_LATEST, endpoint.exposition())
        elif path == HEALTH_PATH:
            self._reply(200, "text/plain; charset=utf-8", b"ok\n")
        elif path == READY_PATH:
            reason = endpoint.readiness.why_not()
            status, body = (200, "ready") if reason is None else (503, reason)
            self._reply(status, "text/plain; charset=utf-8", f"{body}\n".encode())
        else:
            self._reply(
                404, "text/plain; charset=utf-8", b"not found: /metrics, /healthz, /readyz\n"
            )

    def _reply(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # a scrape every few seconds is not news
