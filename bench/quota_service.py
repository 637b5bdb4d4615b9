"""A Comprehend with a quota, for bench.ml_quota: BatchDetectSentiment only, served from a
token bucket of ``quota`` requests per second (holding at most ``burst``), and
ThrottlingException above it, as AWS answers a request over an API's quota. Without a
quota it answers every request, each after ``latency`` seconds (bench.ml_batching).

It is the benchmark's own (bench/ does not import tests/): no signature checks and no
validation, a fixed model (``verdict``), and two counters, the requests it answered and
those it throttled. tests/support/fake_comprehend.py is the faithful fake the tests use.
``python -m bench.quota_service [--quota Q] [--latency S]`` serves until its standard
input closes, after printing its URL.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

CONTENT_TYPE = "application/x-amz-json-1.1"


def verdict(text: str) -> tuple[str, float]:
    """The model: (label, confidence) from the text alone."""
    label = "POSITIVE" if "good" in text else "NEGATIVE" if "bad" in text else "NEUTRAL"
    return label, 0.5 + (len(text) % 50) / 100


class QuotaService:
    """The service; ``reset`` refills the bucket and zeroes the counters."""

    def __init__(
        self, quota: float | None, burst: float | None = None, latency: float = 0.0
    ) -> None:
        self.quota = quota
        self.burst = (quota or 0.0) if burst is None else burst
        self.latency = latency
        self._lock = threading.Lock()
        self.reset()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.service = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,))

    def reset(self) -> None:
        with self._lock:
            self.tokens = self.burst
            self.updated = time.monotonic()
            self.answered = 0
            self.throttled = 0

    def admit(self) -> bool:
        """Take a token, or count a throttled request."""
        with self._lock:
            if self.quota is None:
                self.answered += 1
                return True
            now = time.monotonic()
            self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.quota)
            self.updated = now
            if self.tokens >= 1:
                self.tokens -= 1
                self.answered += 1
                return True
            self.throttled += 1
            return False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        service: QuotaService = self.server.service  # type: ignore[attr-defined]
        time.sleep(service.latency)  # in this request's own thread: requests overlap
        if service.admit():
            status, answer = 200, _answer(json.loads(body))
        else:
            status, answer = 400, {"__type": "ThrottlingException", "message": "Rate exceeded"}
        payload = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", CONTENT_TYPE)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


def _answer(request: dict[str, Any]) -> dict[str, Any]:
    results = []
    for index, text in enumerate(request["TextList"]):
        label, confidence = verdict(text)
        scores = dict.fromkeys(("Positive", "Negative", "Neutral", "Mixed"), 0.0)
        scores[label.title()] = confidence
        results.append({"Index": index, "Sentiment": label, "SentimentScore": scores})
    return {"ResultList": results, "ErrorList": []}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quota", type=float, help="requests per second (default: no quota)")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds per request")
    args = parser.parse_args(argv)
    with QuotaService(args.quota, latency=args.latency) as service:
        print(service.url, flush=True)
        sys.stdin.read()  # until the parent closes it
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
