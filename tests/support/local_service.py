"""A local HTTP service on 127.0.0.1 and a free port, served by a daemon thread: the
lifecycle the fake AWS services share (start/stop, a context manager, its URL), and the
HTTP side they share (a quiet threaded server, a keep-alive handler answering as AWS)."""

from __future__ import annotations

import hashlib
import sys
import threading
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

#: How often serve_forever checks for shutdown (the default, 0.5 s, slows every test's end).
POLL_INTERVAL = 0.05


class LocalService:
    """Subclasses say how to build their server (``make_server``) and name the thread."""

    thread_name = "local-service"

    def __init__(self) -> None:
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def make_server(self) -> ThreadingHTTPServer:
        """A server bound to ("127.0.0.1", 0), its handler able to reach this service."""
        raise NotImplementedError

    def start(self) -> Self:
        self._server = self.make_server()
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            args=(POLL_INTERVAL,),
            name=self.thread_name,
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``: what boto3 takes as ``endpoint_url``."""
        assert self._server is not None, "start() the service first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"


class QuietServer(ThreadingHTTPServer):
    """A threaded server whose clients may give up on it."""

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that gave up (engine timeout, closed client) is not a test failure."""
        if not isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            super().handle_error(request, client_address)


class AWSHandler(BaseHTTPRequestHandler):
    """Keep-alive HTTP as botocore's connection pool expects; ``read_request`` and
    ``reply`` are what an AWS service's handler does around its own answer."""

    protocol_version = "HTTP/1.1"  # keep-alive, as botocore's connection pool expects
    timeout = 30  # idle keep-alive connections end on their own
    # Headers and body leave in two writes: with Nagle on, the body waits for the client's
    # delayed ACK of the headers (40 ms a request on Linux).
    disable_nagle_algorithm = True

    def read_request(self) -> tuple[dict[str, str], bytes]:
        """The request's headers (names lower-cased) and body."""
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        return {name.lower(): value for name, value in self.headers.items()}, body

    def reply(
        self, status: int, headers: Mapping[str, str], payload: bytes, request: bytes
    ) -> None:
        """Send ``payload`` with a request id derived from the ``request`` body."""
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.send_header(
            "x-amzn-RequestId", hashlib.md5(request, usedforsecurity=False).hexdigest()
        )
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests read the recorded requests instead."""
