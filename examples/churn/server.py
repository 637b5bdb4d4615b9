"""A SageMaker-compatible inference endpoint for the churn model (stdlib only).

It speaks the subset of the SageMaker container contract that Aurora ML (and so mlproxy's
SageMaker backend) uses, so the example runs with no AWS account::

    python -m examples.churn.server --port 8080 [--host 127.0.0.1]   # --port 0: any free port

* ``GET /ping`` answers 200: the container health check.
* ``POST /invocations`` with ``Content-Type: text/csv``: one line per SQL row, the 20
  ``will_churn`` arguments in order, RFC 4180 quoting (commas, quotes and newlines inside
  quoted fields), an empty field for NULL. The answer is ``text/csv`` with one prediction
  per line in the same order, or ``{"predictions": [...]}`` for ``Accept: application/json``.

Client mistakes get a 4xx with a plain-text message saying what was wrong (Aurora's opaque
"Internal error in processing ML request" is what we want to do better than): 415 for a
content type other than text/csv, 400 for malformed CSV, a wrong column count or a
non-numeric number, 406 for an Accept we cannot produce, 413 above SageMaker's 6 MB limit.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import logging
from collections.abc import Callable, Sequence
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from examples.churn.model import predict
from examples.churn.schema import N_FEATURES

logger = logging.getLogger(__name__)

#: SageMaker's real-time payload limit; larger requests are refused before being read.
MAX_BODY = 6 * 1024 * 1024
CHARSETS = {"utf-8", "utf8", "us-ascii"}
#: What an Accept entry may ask for, and which format that selects.
ACCEPTED = {"text/csv": "csv", "text/*": "csv", "*/*": "csv", "application/json": "json"}

Predictor = Callable[[list[list[str | None]]], list[str]]


class RequestError(Exception):
    """A client mistake: the HTTP status and a message safe to send back."""

    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _media_type(header: str) -> tuple[str, dict[str, str]]:
    """Split ``text/csv; charset=utf-8`` into the lowercase type and its parameters."""
    kind, *params = header.split(";")
    pairs = (param.partition("=") for param in params)
    return kind.strip().lower(), {k.strip().lower(): v.strip().strip('"') for k, _, v in pairs}


def check_content_type(header: str | None) -> None:
    """Refuse (415) anything but text/csv in UTF-8 (or its ASCII subset)."""
    kind, params = _media_type(header or "")
    if kind != "text/csv":
        raise RequestError(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, f"expected text/csv, got {kind!r}")
    if params.get("charset", "utf-8").lower() not in CHARSETS:
        raise RequestError(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "text/csv must be UTF-8")


def response_format(header: str | None) -> str:
    """'csv' or 'json' from an Accept header (csv when absent); highest q first, ties in
    the client's order; 406 if nothing offered is something we can produce."""
    entries = []
    for entry in (header or "*/*").split(","):
        kind, params = _media_type(entry)
        try:
            quality = float(params.get("q", "1"))
        except ValueError:
            quality = 0.0
        if quality > 0 and kind in ACCEPTED:
            entries.append((-quality, ACCEPTED[kind]))
    if not entries:
        raise RequestError(HTTPStatus.NOT_ACCEPTABLE, "can answer text/csv or application/json")
    return min(entries, key=lambda entry: entry[0])[1]


def parse_rows(body: bytes) -> list[list[str | None]]:
    """The CSV body as rows of exactly 20 fields, empty fields as None (SQL NULL)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RequestError(HTTPStatus.BAD_REQUEST, f"body is not UTF-8: {exc.reason}") from exc
    if not text:
        raise RequestError(HTTPStatus.BAD_REQUEST, "empty body: expected one CSV line per row")
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    rows: list[list[str | None]] = []
    try:
        for record in reader:
            if len(record) != N_FEATURES:
                message = f"row {len(rows) + 1}: expected {N_FEATURES} fields, got {len(record)}"
                raise RequestError(HTTPStatus.BAD_REQUEST, message)
            rows.append([field if field else None for field in record])
    except csv.Error as exc:
        message = f"malformed CSV at line {reader.line_num}: {exc}"
        raise RequestError(HTTPStatus.BAD_REQUEST, message) from exc
    return rows


def render(predictions: Sequence[str], fmt: str) -> tuple[str, bytes]:
    """(content type, body) for the answers: one CSV line each, or a JSON document."""
    if fmt == "json":
        return "application/json", json.dumps({"predictions": list(predictions)}).encode()
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows([p] for p in predictions)
    return "text/csv", buffer.getvalue().encode("utf-8")


class ChurnServer(ThreadingHTTPServer):
    """The HTTP server, carrying the predictor its handlers call."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], predictor: Predictor = predict) -> None:
        super().__init__(address, InvocationHandler)
        self.predictor = predictor


class InvocationHandler(BaseHTTPRequestHandler):
    """``GET /ping`` and ``POST /invocations``; everything else is 404."""

    server: ChurnServer
    protocol_version = "HTTP/1.1"  # keep-alive: the proxy sends many batches per connection
    server_version = "mlproxy-churn/0.1"

    def do_GET(self) -> None:
        """Health check."""
        if self.path.split("?")[0] == "/ping":
            self._send(HTTPStatus.OK, "text/plain", b"")
        else:
            self._send_error(RequestError(HTTPStatus.NOT_FOUND, "try GET /ping"))

    def do_POST(self) -> None:
        """Inference: CSV rows in, one prediction per row out."""
        try:
            body = self._read_body()
            if self.path.split("?")[0] != "/invocations":
                raise RequestError(HTTPStatus.NOT_FOUND, "try POST /invocations")
            check_content_type(self.headers.get("Content-Type"))
            fmt = response_format(self.headers.get("Accept"))
            content_type, payload = render(self._predict(parse_rows(body)), fmt)
        except RequestError as exc:
            self._send_error(exc)
        else:
            self._send(HTTPStatus.OK, content_type, payload)

    def _read_body(self) -> bytes:
        """The request body, bounded; refuses (and drops the connection) when it is too
        large or has no length, since the rest of the stream cannot be trusted then."""
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit():
            self.close_connection = True
            raise RequestError(HTTPStatus.LENGTH_REQUIRED, "Content-Length required")
        if int(length) > MAX_BODY:
            self.close_connection = True
            raise RequestError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"body over {MAX_BODY} bytes")
        return self.rfile.read(int(length))

    def _predict(self, rows: list[list[str | None]]) -> list[str]:
        """Run the model; its ValueErrors (bad values) are the client's; anything else is
        logged with its traceback and reported generically."""
        try:
            return self.server.predictor(rows)
        except ValueError as exc:
            raise RequestError(HTTPStatus.BAD_REQUEST, str(exc)) from exc
        except Exception as exc:
            logger.exception("prediction failed")
            raise RequestError(HTTPStatus.INTERNAL_SERVER_ERROR, "prediction failed") from exc

    def _send_error(self, error: RequestError) -> None:
        """A plain-text error answer."""
        self._send(error.status, "text/plain; charset=utf-8", (error.message + "\n").encode())

    def _send(self, status: HTTPStatus, content_type: str, body: bytes) -> None:
        """One complete response with its length (required for keep-alive)."""
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Access log through logging instead of stderr."""
        logger.info("%s %s", self.address_string(), format % args)


def main(argv: Sequence[str] | None = None) -> None:
    """Command line: serve until interrupted, after saying where."""
    parser = argparse.ArgumentParser(description="SageMaker-style endpoint for the churn model")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080, help="0 picks a free port")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    with ChurnServer((args.host, args.port)) as server:
        host, port = server.server_address[:2]
        logger.info("serving the churn model on http://%s:%s/invocations", host, port)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            logger.info("stopped")


if __name__ == "__main__":
    main()
