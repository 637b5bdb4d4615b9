"""A model that answers without end (issue 10): one response body is read up to
``ml_max_answer_bytes``, then the request fails with a clear error and the connection is
dropped; the session goes on, and the proxy neither waits for the end nor holds the body.

A real HTTP server plays the broken model: it answers 200 (or an error status) and keeps
writing, with or without a Content-Length, until the client hangs up, counting what it
managed to send. The count is the oracle: a proxy that read the whole body would keep it
sending (an endless body never ends: the old reader waited for the request timeout, and
held everything it had read).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pymysql
import pytest

from ml_backends.bounded_read import read_answer
from ml_backends.endpoints.openai_chat import OpenAIChatBackend
from ml_backends.endpoints.sagemaker_http import SageMakerHTTPBackend
from ml_backends.engine import BatchPolicy, InferenceEngine
from ml_backends.errors import InferenceFailed
from proxy.config import load_config
from proxy.errors import ConfigError
from tests.conftest import TEST_DB, admin_connect, start_proxy
from tests.support.backend import BackendInfo
from tests.support.local_service import LocalService

LIMIT = 1 << 20
#: What the server may get out before it notices the hang-up: the limit, the two
#: sockets' buffers (a few MiB at most on Linux) and one chunk in flight.
SENT_CEILING = LIMIT + (12 << 20)
#: How far the endless bodies go if nobody hangs up (a reader without a bound reads it all).
ENDLESS = 512 << 20
CHUNK = b"y" * (64 << 10)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        status = 400 if "/error" in self.path else 200
        self.send_response(status)
        self.send_header("Content-Type", "text/csv")
        if "/chunked" in self.path:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(ENDLESS))
        self.end_headers()
        self._send_forever("/chunked" in self.path)

    def _send_forever(self, chunked: bool) -> None:
        piece = b"%x\r\n%s\r\n" % (len(CHUNK), CHUNK) if chunked else CHUNK
        sent = 0
        try:
            while sent < ENDLESS:
                self.wfile.write(piece)
                sent += len(CHUNK)
        except OSError:
            pass  # the client hung up: what this test wants
        finally:
            self.server.record(self.path, sent)
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.sent: dict[str, int] = {}
        self.done = threading.Condition()

    def record(self, path: str, sent: int) -> None:
        with self.done:
            self.sent[path] = sent
            self.done.notify_all()

    def sent_to(self, path: str) -> int:
        """What the handler for ``path`` had sent when the client hung up."""
        with self.done:
            assert self.done.wait_for(lambda: path in self.sent, timeout=30), self.sent
            return self.sent.pop(path)


class EndlessModel(LocalService):
    thread_name = "endless-model"

    def make_server(self) -> ThreadingHTTPServer:
        return _Server()

    @property
    def server(self) -> _Server:
        assert isinstance(self._server, _Server)
        return self._server


@pytest.fixture(scope="module")
def model() -> Iterator[EndlessModel]:
    with EndlessModel() as service:
        yield service


def _infer(backend: Any, inputs: list[Any]) -> list[Any]:
    engine = InferenceEngine(backend, BatchPolicy(max_attempts=3, request_timeout=60))

    async def go() -> list[Any]:
        try:
            return await engine.infer(inputs, namespace="t")
        finally:
            await backend.close()

    return asyncio.run(go())


@pytest.mark.parametrize("path", ["/announced", "/chunked", "/error", "/error-chunked"])
def test_an_endless_http_answer_fails_the_request_at_the_limit(
    model: EndlessModel, path: str
) -> None:
    backend = SageMakerHTTPBackend(f"{model.url}{path}", max_answer_bytes=LIMIT, timeout=30)
    with pytest.raises(InferenceFailed) as failure:
        _infer(backend, [("x",)])
    sent = model.server.sent_to(f"{path}/invocations")
    assert sent < SENT_CEILING, f"the reader took {sent} bytes"
    message = str(failure.value)
    if path.startswith("/error"):
        # the explanation is the body's first bytes, not all of it; not retried
        assert message.startswith("the endpoint refused the request: HTTP 400: yyyy")
        assert len(message) < 400
    else:
        assert "ml_max_answer_bytes" in message and str(LIMIT) in message


@pytest.mark.parametrize("path", ["/announced", "/chunked", "/error-chunked"])
def test_an_endless_chat_answer_fails_the_request_at_the_limit(
    model: EndlessModel, path: str
) -> None:
    backend = OpenAIChatBackend(
        f"openai+{model.url}{path}", "m", max_answer_bytes=LIMIT, timeout=30, environ={}
    )
    with pytest.raises(InferenceFailed, match=r"ml_max_answer_bytes|HTTP 400: yyyy"):
        _infer(backend, [(b"hello",)])
    assert model.server.sent_to(f"{path}/chat/completions") < SENT_CEILING


def test_an_answer_of_exactly_the_limit_is_read_and_one_byte_more_is_not() -> None:
    class Body:
        def __init__(self, size: int) -> None:
            self.left = size

        def read(self, amt: int) -> bytes:
            taken = min(amt, self.left)
            self.left -= taken
            return b"a" * taken

    assert len(read_answer(Body(LIMIT), LIMIT, "m")) == LIMIT
    with pytest.raises(InferenceFailed, match="kept on sending"):
        read_answer(Body(LIMIT + 1), LIMIT, "m")
    with pytest.raises(InferenceFailed, match="announced 2000000 bytes"):
        read_answer(Body(0), LIMIT, "m", declared="2000000")
    assert read_answer(Body(10), LIMIT, "m", declared="not a number") == b"a" * 10


def test_the_setting_has_a_floor() -> None:
    base = {"backend": "mysql://127.0.0.1:3306"}
    assert load_config(base, env={}).ml_max_answer_bytes == 16 << 20
    assert load_config({**base, "ml_max_answer_bytes": 4096}, env={}).ml_max_answer_bytes == 4096
    with pytest.raises(ConfigError, match="ml_max_answer_bytes must be at least 1024"):
        load_config({**base, "ml_max_answer_bytes": 10}, env={})


def test_through_the_proxy_the_statement_fails_and_the_session_goes_on(
    backend: BackendInfo, model: EndlessModel
) -> None:
    """An alias routed to the endless model: its statement fails with the reason, the
    next statement on the same session works, and other sessions never noticed."""
    proxy = start_proxy(
        backend,
        endpoint=(f"endless={model.url}/chunked",),
        ml_max_answer_bytes=LIMIT,
        ml_request_timeout=30,
    )
    admin = admin_connect(backend, database=TEST_DB)
    try:
        with admin.cursor() as cur:
            cur.execute("DROP FUNCTION IF EXISTS endless_model")
        session = proxy.connect()
        with session.cursor() as cur:
            cur.execute(
                "CREATE FUNCTION endless_model(x TEXT) RETURNS VARCHAR(2048)"
                " ALIAS AWS_SAGEMAKER_INVOKE_ENDPOINT ENDPOINT NAME 'endless'"
            )
            with pytest.raises(pymysql.MySQLError) as failure:
                cur.execute("SELECT endless_model('hello')")
            assert "ml_max_answer_bytes" in str(failure.value.args[1])
            cur.execute("SELECT 1 + 1")
            assert cur.fetchone() == (2,)
        session.close()
        assert model.server.sent_to("/chunked/invocations") < SENT_CEILING
    finally:
        with admin.cursor() as cur:
            cur.execute("DROP FUNCTION IF EXISTS endless_model")
        admin.close()
        proxy.stop()
