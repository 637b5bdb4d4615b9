"""The image's HEALTHCHECK (proxy/ops/healthcheck.py) against a local HTTP server: it finds
the endpoint through the settings, passes on 200 only, says why otherwise, and never asks
through an HTTP proxy of the environment."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from proxy.ops import healthcheck


class _Handler(BaseHTTPRequestHandler):
    statuses = {"/healthz": 200, "/readyz": 503}

    def do_GET(self) -> None:
        self.send_response(self.statuses.get(self.path, 404))
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    port = int(server.server_address[1])
    for name in ("MLPROXY_CONFIG", "MLPROXY_METRICS_LISTEN"):
        monkeypatch.delenv(name, raising=False)
    # Any HTTP proxy in the environment must be bypassed: this one does not exist.
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")
    monkeypatch.setenv("MLPROXY_METRICS_LISTEN", f"0.0.0.0:{port}")
    try:
        yield port
    finally:
        server.shutdown()
        server.server_close()


def test_healthy_when_the_path_answers_200(endpoint: int) -> None:
    assert healthcheck.check() is None
    assert healthcheck.main([]) == 0


def test_unhealthy_on_any_other_status(endpoint: int, capsys: pytest.CaptureFixture[str]) -> None:
    assert healthcheck.check("/readyz") == f"http://127.0.0.1:{endpoint}/readyz: HTTP 503"
    assert healthcheck.main(["/readyz"]) == 1
    assert "mlproxy healthcheck: " in capsys.readouterr().err


def test_unhealthy_when_nothing_listens(endpoint: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLPROXY_METRICS_LISTEN", "127.0.0.1:9")
    problem = healthcheck.check()
    assert problem is not None and problem.startswith("http://127.0.0.1:9/healthz: ")


def test_says_so_when_the_endpoint_is_off(endpoint: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLPROXY_METRICS_LISTEN")
    assert "metrics_listen is off" in (healthcheck.check() or "")


def test_says_so_when_the_configuration_is_wrong(
    endpoint: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLPROXY_METRICS_LISTEN", "no-port")
    assert (healthcheck.check() or "").startswith("configuration error: ")
