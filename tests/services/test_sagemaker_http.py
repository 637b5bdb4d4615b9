"""SageMaker's CSV wire format and the HTTP endpoint backend, against real HTTP servers:
the churn example's model server, and an echo endpoint that returns each row's first field
as it parsed it (so hostile values make the full round trip)."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import threading
from collections.abc import Iterator
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from examples.churn import model, server
from examples.churn.schema import FEATURE_NAMES
from ml_backends.endpoints.sagemaker_http import SageMakerHTTPBackend, invocations_url
from ml_backends.engine import BatchPolicy, InferenceEngine
from ml_backends.errors import BackendNotFound, InferenceFailed, RetryableError, Throttled
from ml_backends.sagemaker_csv import decode_answers, encode_rows, split_by_size


class EchoHandler(BaseHTTPRequestHandler):
    """Answers each CSV row with its first field; the path picks a failure or a format."""

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.requests.append(body)  # type: ignore[attr-defined]
        status = {
            "/fail400/invocations": 400,
            "/fail503/invocations": 503,
            "/fail429/invocations": 429,
        }
        if self.path in status:
            self._reply(status[self.path], "text/plain", b"model says no")
            return
        rows = list(csv.reader(io.StringIO(body.decode("utf-8"))))
        if self.path == "/json/invocations":
            self._reply(
                200,
                "application/json",
                json.dumps({"predictions": [[r[0]] for r in rows]}).encode(),
            )
        elif self.path == "/short/invocations":
            self._reply(200, "text/csv", b"only-one\n")
        else:
            out = io.StringIO()
            csv.writer(out, lineterminator="\n").writerows([[r[0]] for r in rows])
            self._reply(200, "text/csv", out.getvalue().encode())

    def _reply(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def serve(httpd: ThreadingHTTPServer) -> Iterator[str]:
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


@pytest.fixture(scope="module")
def echo() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), EchoHandler)
    httpd.requests = []  # type: ignore[attr-defined]
    yield from serve(httpd)


@pytest.fixture(scope="module")
def churn() -> Iterator[str]:
    yield from serve(server.ChurnServer(("127.0.0.1", 0)))


HOSTILE = [
    ("plain",),
    ("comma, inside",),
    ('quote " inside',),
    ("line\nbreak",),
    ("emoji 😀 ü",),
    (" leading and trailing spaces ",),
    (2**64,),
    (-(2**70),),
    (0.1,),
    (1e-300,),
    (Decimal("12345678901234567890.123456789"),),
    (True,),
]


def test_hostile_values_make_the_round_trip(echo: str) -> None:
    backend = SageMakerHTTPBackend(echo)
    answers = backend.infer_blocking(HOSTILE)
    expected = ["plain", "comma, inside", 'quote " inside', "line\nbreak", "emoji 😀 ü"]
    expected += [" leading and trailing spaces ", str(2**64), str(-(2**70)), "0.1", "1e-300"]
    expected += ["12345678901234567890.123456789", "1"]
    assert answers == expected


def test_null_is_an_empty_field_and_an_empty_string_is_quoted() -> None:
    assert encode_rows([(None, "", "x")]) == b',"",x\n'


def test_json_answers_and_their_first_values() -> None:
    assert decode_answers(b'{"predictions": [["a", 1], ["b", 2]]}', "application/json", 2) == [
        "a",
        "b",
    ]
    assert decode_answers(b"[0.5, null, true]", "application/json", 3) == ["0.5", None, "1"]
    assert decode_answers(b"x,1\ny,2\n", "text/csv", 2) == ["x", "y"]


def test_json_from_the_endpoint(echo: str) -> None:
    assert SageMakerHTTPBackend(f"{echo}/json").infer_blocking([("a",), ("b",)]) == ["a", "b"]


def test_a_wrong_row_count_is_an_error(echo: str) -> None:
    with pytest.raises(InferenceFailed, match="1 rows for 2"):
        SageMakerHTTPBackend(f"{echo}/short").infer_blocking([("a",), ("b",)])


def test_refusals_are_final_and_throttling_or_5xx_retryable(echo: str) -> None:
    with pytest.raises(InferenceFailed, match="HTTP 400: model says no"):
        SageMakerHTTPBackend(f"{echo}/fail400").infer_blocking([("a",)])
    with pytest.raises(RetryableError) as unavailable:
        SageMakerHTTPBackend(f"{echo}/fail503").infer_blocking([("a",)])
    assert not isinstance(unavailable.value, Throttled)
    with pytest.raises(Throttled, match="HTTP 429"):  # the engine slows down for it
        SageMakerHTTPBackend(f"{echo}/fail429").infer_blocking([("a",)])


def test_an_unreachable_endpoint_is_retryable() -> None:
    with pytest.raises(RetryableError, match="cannot reach"):
        SageMakerHTTPBackend("http://127.0.0.1:9/", timeout=2).infer_blocking([("a",)])


def test_urls_get_the_invocations_path_and_only_http_is_accepted() -> None:
    assert invocations_url("http://h:8080") == "http://h:8080/invocations"
    assert invocations_url("https://h/model/invocations") == "https://h/model/invocations"
    with pytest.raises(BackendNotFound):
        invocations_url("tuning-job-123")


def test_rows_are_split_under_the_payload_limit() -> None:
    rows = [("x" * 100,)] * 50
    groups = split_by_size(rows, limit=1000)
    assert sum(len(g) for g in groups) == 50
    assert all(len(encode_rows(g)) <= 1000 for g in groups)
    with pytest.raises(InferenceFailed, match="over the"):
        split_by_size([("x" * 2000,)], limit=1000)


def test_the_churn_model_through_its_http_server(churn: str) -> None:
    rows = [tuple(row) for row in model_rows(40)]
    engine = InferenceEngine(SageMakerHTTPBackend(churn), BatchPolicy(max_batch_size=10_000))
    answers = asyncio.run(engine.infer(rows, namespace="will_churn", batch_size=15))
    assert answers == model.predict([list(row) for row in rows])
    assert engine.counters.actual_request_cnt == 3  # 40 rows, MAX_BATCH_SIZE 15


def model_rows(count: int) -> list[list[str | None]]:
    """The first rows of the shipped data set, as will_churn's arguments (CSV text)."""
    path = Path(server.__file__).with_name("customers.csv")
    with path.open(encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        rows = [row for _, row in zip(range(count), reader, strict=False)]
    return [[row[name] for name in FEATURE_NAMES] for row in rows]
