"""A local HTTP service on 127.0.0.1 and a free port, served by a daemon thread: the
lifecycle the fake AWS services share (start/stop, a context manager, its URL)."""

from __future__ import annotations

import threading
from http.server import ThreadingHTTPServer
from typing import Self

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
