"""The alias backends (CREATE FUNCTION ... ALIAS): SageMaker and Bedrock through the real
boto3 client (signing, rest-json, error parsing) against a local fake of both services,
the OpenAI-compatible chat backend against the fake's chat route, all through the
batching engine; and the registry's choice of backend by target."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import random
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Hashable, Iterator, Sequence
from decimal import Decimal
from typing import Any

import pytest

from ml_backends.aws.bedrock import BedrockBackend
from ml_backends.aws.runtime import ServiceError
from ml_backends.aws.sagemaker import SageMakerBackend
from ml_backends.base import Backend, Outcome
from ml_backends.control.budget import TimeBudget
from ml_backends.endpoints.openai_chat import OpenAIChatBackend
from ml_backends.endpoints.sagemaker_http import SageMakerHTTPBackend
from ml_backends.engine import BatchPolicy, InferenceEngine
from ml_backends.errors import (
    BackendNotFound,
    BudgetExhausted,
    InferenceFailed,
    RetryableError,
    Throttled,
)
from ml_backends.python_callable import PythonCallableBackend
from ml_backends.registry import alias_backend
from tests.support.aws_env import fake_aws_env
from tests.support.fake_aws_ml import (
    ACCESS_KEY,
    NULL_400,
    PAYLOAD_LIMIT,
    SECRET_KEY,
    THROTTLE,
    FakeAWSML,
    check_sigv4,
)

FAST: dict[str, Any] = {"base_backoff": 0.001, "max_backoff": 0.01}
CLAUDE = "anthropic.claude-3-haiku-20240307-v1:0"  # the ':' travels as %3A, signed as %253A


def first_values(rows: list[list[str]]) -> list[str]:
    return [row[0] for row in rows]


def second_values(rows: list[list[str]]) -> list[str]:
    return [row[1] for row in rows]


def broken(rows: list[list[str]]) -> list[str]:
    raise ValueError("bad row")


def sixteen_kib(_: object) -> bytes:
    """A model whose answer is bigger than the tests' ml_max_answer_bytes."""
    return b"z" * (16 << 10)


def echo_body(body: bytes) -> bytes:
    """A Bedrock-like model: the body it got, wrapped in JSON."""
    return json.dumps({"completion": body.decode("utf-8")}).encode()


def upper_first(inputs: list[tuple[Any, ...]]) -> list[str]:
    """A python: target (whole batches)."""
    return [str(item[0]).upper() for item in inputs]


@pytest.fixture(scope="module")
def module_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The fake's test credentials in the environment, and nothing else from the host."""
    empty = tmp_path_factory.mktemp("aws")
    with fake_aws_env(empty):
        yield


@pytest.fixture(scope="module")
def module_fake(module_env: None) -> Iterator[FakeAWSML]:
    with FakeAWSML(seed=7) as server:
        server.add_endpoint("echo", first_values)
        server.add_endpoint("second", second_values)
        server.add_endpoint("echo-json", first_values, "application/json")
        server.add_endpoint("broken", broken)
        server.add_endpoint("oversized", sixteen_kib)
        server.add_model(CLAUDE, echo_body)
        server.add_model("oversized.model-v1", sixteen_kib)
        yield server


@pytest.fixture
def fake(module_fake: FakeAWSML) -> FakeAWSML:
    """The module's fake, without faults or recorded requests."""
    module_fake.reset()
    module_fake.openai_api_key = None
    return module_fake


@pytest.fixture(scope="module")
def make(module_fake: FakeAWSML) -> Iterator[Callable[..., Any]]:
    """Builds backends (AWS ones pointed at the fake), shared by the module's tests when
    the arguments are the same (a boto3 client takes a while to create) unless
    ``fresh=True``; closes them at the end."""
    made: dict[str, Backend[Any]] = {}

    def build(cls: type[Backend[Any]], *args: Any, fresh: bool = False, **options: Any) -> Any:
        if issubclass(cls, SageMakerBackend | BedrockBackend):
            options.setdefault("endpoint_url", module_fake.url)
        key = f"fresh {len(made)}" if fresh else repr((cls, args, sorted(options.items())))
        if key not in made:
            made[key] = cls(*args, **options)
        return made[key]

    yield build
    for backend in made.values():
        asyncio.run(backend.close())


def run(
    backend: Backend[Any],
    inputs: Sequence[Hashable],
    *,
    batch_size: int | None = None,
    **policy: Any,
) -> tuple[list[Outcome], InferenceEngine]:
    engine = InferenceEngine(backend, BatchPolicy(**policy), rng=random.Random(3))
    outcomes = asyncio.run(engine.infer(inputs, namespace="f", batch_size=batch_size))
    return outcomes, engine


def csv_rows(body: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(body.decode("utf-8"), newline="")))


# -- SageMaker: the request, batching, the payload limit, answers ---------------------------


def test_a_batch_is_one_signed_csv_request_to_the_endpoint(
    fake: FakeAWSML, make: Callable[..., Any]
) -> None:
    inputs = [(f"row {i}", i, 0.5) for i in range(7)]
    outcomes, engine = run(make(SageMakerBackend, "echo"), inputs)
    assert outcomes == [f"row {i}" for i in range(7)]
    (request,) = fake.requests
    assert (request.service, request.path, request.status) == (
        "sagemaker",
        "/endpoints/echo/invocations",
        200,
    )
    assert request.headers["content-type"] == "text/csv"
    assert request.headers["accept"] == "text/csv"
    assert "/us-east-1/sagemaker/aws4_request" in request.headers["authorization"]
    assert request.body.count(b"\n") == 7
    assert csv_rows(request.body)[3] == ["row 3", "3", "0.5"]
    assert engine.counters.actual_request_cnt == 1


def test_max_batch_size_bounds_every_request(fake: FakeAWSML, make: Callable[..., Any]) -> None:
    inputs = [(f"r{i}",) for i in range(25)]
    backend = make(SageMakerBackend, "echo")
    outcomes, engine = run(backend, inputs, max_batch_size=10)
    assert outcomes == [f"r{i}" for i in range(25)]
    assert sorted(r.body.count(b"\n") for r in fake.requests) == [5, 10, 10]
    assert engine.counters.actual_request_cnt == 3
    fake.reset()
    run(backend, inputs, max_batch_size=10_000, batch_size=6)  # the function's MAX_BATCH_SIZE
    assert sorted(r.body.count(b"\n") for r in fake.requests) == [1, 6, 6, 6, 6]
    fake.reset()
    run(make(SageMakerBackend, "echo", max_batch_size=12), inputs, max_batch_size=10_000)
    assert sorted(r.body.count(b"\n") for r in fake.requests) == [1, 12, 12]


def test_a_batch_over_6_mb_goes_as_several_requests_in_order(
    fake: FakeAWSML, make: Callable[..., Any]
) -> None:
    inputs = [(f"{i:03d}", "x" * 100_000) for i in range(70)]  # about 7 MB of CSV
    outcomes, engine = run(make(SageMakerBackend, "echo"), inputs, max_batch_size=10_000)
    assert outcomes == [f"{i:03d}" for i in range(70)]
    sizes = [len(r.body) for r in fake.answered()]
    assert len(sizes) == 2 and max(sizes) <= PAYLOAD_LIMIT
    sent = [row[0] for r in fake.answered() for row in csv_rows(r.body)]
    assert sent == [f"{i:03d}" for i in range(70)]
    assert engine.counters.actual_request_cnt == 1  # one engine request, split inside


def test_the_fake_enforces_the_payload_limit(fake: FakeAWSML, make: Callable[..., Any]) -> None:
    """The control for the split test: unsplit, the same rows are refused."""
    backend = make(SageMakerBackend, "echo", max_payload=8 * 1024 * 1024)
    inputs = [(f"{i:03d}", "x" * 100_000) for i in range(70)]
    with pytest.raises(InferenceFailed, match="'echo' rejected the request: ValidationError"):
        run(backend, inputs, max_batch_size=10_000)


def test_json_answers_and_several_values_per_row(fake: FakeAWSML, make: Callable[..., Any]) -> None:
    outcomes, _ = run(make(SageMakerBackend, "echo-json"), [("a",), ("0.25",), ("",)])
    assert outcomes == ["a", "0.25", ""]  # a JSON "" stays an empty string
    fake.add_endpoint("predictions", lambda rows: json.dumps({"predictions": [0.5, None]}).encode())
    outcomes, _ = run(make(SageMakerBackend, "predictions"), [("x",), ("y",)])
    assert outcomes == ["0.5", None]
    fake.add_endpoint("multi", lambda rows: [(r[0], "0.97", "extra") for r in rows])
    outcomes, _ = run(make(SageMakerBackend, "multi"), [("True.",), ("False.",)])
    assert outcomes == ["True.", "False."]


def test_a_wrong_row_count_fails_clearly_without_retries(
    fake: FakeAWSML, make: Callable[..., Any]
) -> None:
    fake.add_endpoint("short", lambda rows: b"only-one\n")
    with pytest.raises(InferenceFailed, match=r"SageMaker endpoint 'short': .*1 rows for 3"):
        run(make(SageMakerBackend, "short"), [("a",), ("b",), ("c",)])
    assert fake.count() == 1


HOSTILE: list[tuple[object, str]] = [  # (value, the CSV field text the endpoint must read)
    ("comma, inside", "comma, inside"),
    ('quote " inside', 'quote " inside'),
    ('""', '""'),
    ("line\nbreak", "line\nbreak"),
    ("cr\r\nlf", "cr\r\nlf"),
    ("nul\x00byte", "nul\x00byte"),
    ("emoji 😀 ü", "emoji 😀 ü"),
    (" spaces ", " spaces "),
    (None, ""),
    ("", ""),
    (0, "0"),
    (2**64, "18446744073709551616"),
    (-(10**40), "-10000000000000000000000000000000000000000"),
    (Decimal("12345678901234567890.123456789012345678"), "12345678901234567890.123456789012345678"),
    (Decimal("-0.000000000000000000000001"), "-1E-24"),
    (0.1, "0.1"),
    (1e308, "1e+308"),
    (5e-324, "5e-324"),
]


def test_hostile_values_reach_the_endpoint_intact_and_come_back(
    fake: FakeAWSML, make: Callable[..., Any]
) -> None:
    inputs = [(i, value) for i, (value, _) in enumerate(HOSTILE)]
    outcomes, _ = run(make(SageMakerBackend, "second"), inputs)
    (request,) = fake.requests
    assert csv_rows(request.body) == [[str(i), text] for i, (_, text) in enumerate(HOSTILE)]
    for (value, text), outcome in zip(HOSTILE, outcomes, strict=True):
        assert outcome == (text or None)
        if isinstance(value, float | Decimal | int):
            assert type(value)(text) == value  # no precision lost on the way
    null, empty = HOSTILE.index((None, "")), HOSTILE.index(("", ""))
    assert f"\n{null},\n".encode() in request.body  # NULL: an empty field
    assert f'\n{empty},""\n'.encode() in request.body  # '': a quoted empty string


# -- SageMaker: throttling, 5xx, final failures ---------------------------------------------


def test_throttling_changes_nothing_but_the_retry_count(
    fake: FakeAWSML, make: Callable[..., Any]
) -> None:
    inputs = [(f"r{i}", i) for i in range(60)]
    backend = make(SageMakerBackend, "echo")
    clean, _ = run(backend, inputs, max_batch_size=5)
    fake.reset(throttle_rate=0.4, throttle_style="alternate")
    throttled, engine = run(backend, inputs, max_batch_size=5, max_attempts=15, **FAST)
    assert throttled == clean == [f"r{i}" for i in range(60)]
    retries = engine.counters.retry_request_cnt
    assert retries == fake.count("ThrottlingException") > 0
    assert fake.count(status=429) > 0 and fake.count(status=400) > 0  # both shapes seen
    assert fake.count() == engine.counters.actual_request_cnt == 12 + retries


def test_the_bare_400_quirk_and_5xx_are_retried(fake: FakeAWSML, make: Callable[..., Any]) -> None:
    fake.reset(script=[NULL_400, 500, 503], throttle_count=0)
    outcomes, engine = run(make(SageMakerBackend, "echo"), [("a",), ("b",)], **FAST)
    assert outcomes == ["a", "b"]
    assert [r.status for r in fake.requests] == [400, 500, 503, 200]
    assert engine.counters.retry_request_cnt == 3


def test_retries_run_out_into_a_clear_failure(fake: FakeAWSML, make: Callable[..., Any]) -> None:
    fake.reset(script=[500, 503, 500], throttle_count=0)
    with pytest.raises(InferenceFailed, match=r"gave up after 3 attempts .*'echo'"):
        run(make(SageMakerBackend, "echo"), [("a",)], max_attempts=3, **FAST)
    assert fake.count() == 3


def test_throttling_is_retried_until_the_budget_is_spent(
    fake: FakeAWSML, make: Callable[..., Any]
) -> None:
    fake.reset(throttle_rate=1.0, throttle_style="400-null")
    engine = InferenceEngine(make(SageMakerBackend, "echo"), BatchPolicy(max_attempts=1))
    budget = TimeBudget(2.0, "ml_statement_timeout")
    with pytest.raises(BudgetExhausted, match=r"budget of 2s .*'echo' throttled"):
        asyncio.run(engine.infer([("a",)], namespace="f", budget=budget))
    assert fake.count() >= 2  # more than max_attempts: throttling is not counted


def test_a_missing_endpoint_and_a_failing_model_are_final(
    fake: FakeAWSML, make: Callable[..., Any]
) -> None:
    with pytest.raises(
        InferenceFailed,
        match=r"endpoint 'nope' rejected the request: ValidationError: Endpoint nope of account",
    ):
        run(make(SageMakerBackend, "nope"), [("a",)], **FAST)
    with pytest.raises(InferenceFailed, match=r"'broken': the model failed: .*ValueError: bad row"):
        run(make(SageMakerBackend, "broken"), [("a",)], **FAST)
    assert fake.count() == 2  # neither was retried
    assert [r.error for r in fake.requests] == ["ValidationError", "ModelError"]


@pytest.mark.parametrize(
    ("code", "status", "message", "kind"),
    [
        ("ThrottlingException", 400, None, Throttled),
        ("400", 400, None, Throttled),  # the quirk without an error type header
        ("ModelNotReadyException", 429, "loading", Throttled),
        ("InternalDependencyException", 530, "x", RetryableError),
        ("ValidationError", 400, "bad input", InferenceFailed),
        ("AccessDeniedException", 403, "no", InferenceFailed),
    ],
)
def test_sagemaker_errors_are_classified(
    module_fake: FakeAWSML,
    make: Callable[..., Any],
    code: str,
    status: int,
    message: str | None,
    kind: type[Exception],
) -> None:
    backend = make(SageMakerBackend, "echo")
    error = backend.service_error(ServiceError(code, message, status))
    assert type(error) is kind
    assert "'echo'" in str(error) and code in str(error)


def test_wrong_credentials_and_a_wrong_region_are_refused(
    fake: FakeAWSML, make: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(InferenceFailed, match=r"refused the credentials: .*valid region"):
        run(make(SageMakerBackend, "echo", region="eu-west-1"), [("a",)])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    with pytest.raises(InferenceFailed, match=r"refused the credentials: .*does not match"):
        run(make(SageMakerBackend, "echo", fresh=True), [("a",)])
    assert fake.count() == 2 and fake.count(status=403) == 2


def test_the_fake_checks_the_signing_service() -> None:
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    request = AWSRequest("POST", "http://h/endpoints/e/invocations", data=b"1\n")
    request.headers["Host"] = "h"
    SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), "bedrock", "us-east-1").add_auth(request)
    headers = {k.lower(): v for k, v in request.headers.items()}
    creds = {ACCESS_KEY: SECRET_KEY}
    args = ("POST", "/endpoints/e/invocations", headers, b"1\n", creds)
    assert check_sigv4(*args, "bedrock", "us-east-1") is None
    assert "correct service" in str(check_sigv4(*args, "sagemaker", "us-east-1"))
    assert "does not match" in str(check_sigv4(*args[:3], b"2\n", creds, "bedrock", "us-east-1"))


def test_an_unreachable_endpoint_is_retryable(make: Callable[..., Any]) -> None:
    backend = make(SageMakerBackend, "echo", endpoint_url=f"http://127.0.0.1:{free_port()}")
    with pytest.raises(RetryableError, match="'echo' unreachable"):
        backend.infer_blocking([("a",)])


def free_port() -> int:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


# -- Bedrock ----------------------------------------------------------------------------------


def test_bedrock_sends_one_request_per_row_with_many_in_flight(
    fake: FakeAWSML, make: Callable[..., Any]
) -> None:
    fake.reset(latency=0.25)
    bodies = [json.dumps({"prompt": f"question {i}", "max_tokens": 20}) for i in range(40)]
    backend = make(BedrockBackend, CLAUDE)
    started = time.monotonic()
    outcomes, engine = run(backend, [(b,) for b in bodies], max_batch_size=25, max_in_flight=16)
    elapsed = time.monotonic() - started
    assert outcomes == [json.dumps({"completion": b}) for b in bodies]
    assert sorted(r.body.decode() for r in fake.requests) == sorted(bodies)
    assert engine.counters.single_request_cnt == engine.counters.actual_request_cnt == 40
    assert fake.peak_in_flight >= 10
    assert elapsed < 40 * 0.25 / 2  # one at a time would take 10 s
    request = fake.requests[0]
    assert request.path == "/model/anthropic.claude-3-haiku-20240307-v1%3A0/invoke"
    assert (request.headers["content-type"], request.headers["accept"]) == (
        "application/json",
        "application/json",
    )
    assert "/us-east-1/bedrock/aws4_request" in request.headers["authorization"]


def test_bedrock_null_is_not_sent_and_numbers_are_sent_as_text(
    fake: FakeAWSML, make: Callable[..., Any]
) -> None:
    backend = make(BedrockBackend, CLAUDE, content_type="text/plain", accept="*/*")
    outcomes, _ = run(backend, [(None,), (42,), (None,)])
    assert outcomes == [None, json.dumps({"completion": "42"}), None]
    (request,) = fake.requests
    assert request.body == b"42"
    assert (request.headers["content-type"], request.headers["accept"]) == ("text/plain", "*/*")


def test_bedrock_throttling_and_busy_answers_are_retried(
    fake: FakeAWSML, make: Callable[..., Any]
) -> None:
    fake.reset(
        script=[
            THROTTLE,
            (400, "ServiceQuotaExceededException"),
            (429, "ModelNotReadyException"),
            (408, "ModelTimeoutException"),
            503,
        ]
    )
    outcomes, engine = run(make(BedrockBackend, CLAUDE), [("{}",)], max_attempts=6, **FAST)
    assert outcomes == [json.dumps({"completion": "{}"})]
    assert engine.counters.retry_request_cnt == 5
    assert fake.count("ThrottlingException") == 1
    assert fake.count("ServiceUnavailableException") == 1


@pytest.mark.parametrize(
    ("model_id", "script", "match"),
    [
        ("nope.model", [], "'nope.model' rejected the request: ValidationException: The provided"),
        (CLAUDE, [(403, "AccessDeniedException")], "refused the credentials: AccessDenied"),
        (CLAUDE, [(404, "ResourceNotFoundException")], "rejected the request: ResourceNotFound"),
        (CLAUDE, [(424, "ModelErrorException")], "rejected the request: ModelErrorException"),
    ],
)
def test_bedrock_refusals_are_final(
    fake: FakeAWSML,
    make: Callable[..., Any],
    model_id: str,
    script: list[Any],
    match: str,
) -> None:
    fake.reset(script=script)
    with pytest.raises(InferenceFailed, match=match):
        run(make(BedrockBackend, model_id), [("{}",)], **FAST)
    assert fake.count() == 1


def test_an_answer_over_max_answer_bytes_fails_without_retries(
    fake: FakeAWSML, make: Callable[..., Any]
) -> None:
    """The body of InvokeEndpoint and InvokeModel is read up to the bound, then refused;
    the same backend still answers requests under it."""
    for backend, ok in (
        (make(SageMakerBackend, "oversized", max_answer_bytes=4096), "echo"),
        (make(BedrockBackend, "oversized.model-v1", max_answer_bytes=4096), CLAUDE),
    ):
        with pytest.raises(InferenceFailed, match=r"more than 4096 bytes .*ml_max_answer_bytes"):
            run(backend, [("a",)], **FAST)
        assert fake.count() == 1
        fake.reset()
        assert len(run(make(type(backend), ok, max_answer_bytes=4096), [("a",)])[0]) == 1
        fake.reset()


def test_bedrock_rejects_more_than_one_argument(make: Callable[..., Any]) -> None:
    with pytest.raises(InferenceFailed, match="one argument, not 2"):
        make(BedrockBackend, CLAUDE).infer_blocking([("a", "b")])


# -- OpenAI-compatible chat -----------------------------------------------------------------


def test_plain_text_becomes_one_user_message_and_the_body_comes_back_whole(
    fake: FakeAWSML, make: Callable[..., Any]
) -> None:
    fake.chat_model = lambda request: "echo: " + request["messages"][-1]["content"]
    backend = make(OpenAIChatBackend, fake.openai_target, "llama-3")
    outcomes, _ = run(backend, [("hello",), (None,), ('["not", "a chat"]',)])
    assert outcomes[1] is None
    assert json.loads(outcomes[0])["choices"][0]["message"]["content"] == "echo: hello"
    assert json.loads(outcomes[2])["choices"][0]["message"]["content"] == 'echo: ["not", "a chat"]'
    sent = [json.loads(r.body) for r in fake.requests]
    assert sorted(sent, key=json.dumps) == sorted(
        (
            {"model": "llama-3", "messages": [{"role": "user", "content": text}]}
            for text in ("hello", '["not", "a chat"]')
        ),
        key=json.dumps,
    )
    assert fake.requests[0].path == "/v1/chat/completions"


def test_a_json_chat_body_is_sent_as_is_with_the_model_added_when_absent(
    fake: FakeAWSML, make: Callable[..., Any]
) -> None:
    backend = make(OpenAIChatBackend, fake.openai_target, "llama-3")
    mine = {"messages": [{"role": "system", "content": "be brief"}], "max_tokens": 5}
    theirs = {**mine, "model": "other"}
    run(backend, [(json.dumps(mine),), (json.dumps(theirs),)])
    sent = [json.loads(r.body) for r in fake.requests]
    assert {**mine, "model": "llama-3"} in sent and theirs in sent


def test_the_api_key_comes_from_the_environment(fake: FakeAWSML, make: Callable[..., Any]) -> None:
    fake.openai_api_key = "sk-test"
    keyed = make(
        OpenAIChatBackend, fake.openai_target, "m", environ={"MLPROXY_OPENAI_API_KEY": "sk-test"}
    )
    run(keyed, [("hi",)])
    assert fake.requests[0].headers["authorization"] == "Bearer sk-test"
    with pytest.raises(InferenceFailed, match=r"HTTP 401: .*Incorrect API key"):
        run(make(OpenAIChatBackend, fake.openai_target, "m", environ={}), [("hi",)])


def test_openai_429_and_5xx_are_retried_other_refusals_final_and_short(
    fake: FakeAWSML, make: Callable[..., Any]
) -> None:
    backend = make(OpenAIChatBackend, fake.openai_target, "m")
    fake.reset(script=[THROTTLE, 500])
    outcomes, engine = run(backend, [("hi",)], **FAST)
    assert json.loads(outcomes[0])["model"] == "m"
    assert engine.counters.retry_request_cnt == 2
    fake.reset(script=[(400, "invalid_request_error" + "!" * 1000)])
    with pytest.raises(InferenceFailed) as caught:
        run(backend, [("hi",)], **FAST)
    assert "HTTP 400: {" in str(caught.value) and "!" * 200 in str(caught.value)
    assert len(str(caught.value)) < 300 + 100
    assert fake.count() == 1
    unreachable = make(OpenAIChatBackend, f"openai+http://127.0.0.1:{free_port()}/v1", "m")
    with pytest.raises(RetryableError, match="cannot reach"):
        unreachable.infer_blocking([("hi",)])


# -- the registry -----------------------------------------------------------------------------


def test_alias_backend_chooses_by_target(fake: FakeAWSML) -> None:
    made = [
        alias_backend("sagemaker", "churn", endpoint_url=fake.url, max_batch_size=50, timeout=5),
        alias_backend("sagemaker", "http://127.0.0.1:1/m", max_batch_size=7),
        alias_backend("sagemaker", "python:tests.services.test_alias_backends:upper_first"),
        alias_backend("bedrock", CLAUDE, content_type="text/plain", endpoint_url=fake.url),
        alias_backend("bedrock", "arn:aws:bedrock:us-east-1::foundation-model/a.b-v1:0"),
        alias_backend("bedrock", fake.openai_target, model_id="llama-3", timeout=3),
        alias_backend(
            "bedrock", "python:tests.services.test_alias_backends:upper_first", max_batch_size=9
        ),
        alias_backend("sagemaker", "http://127.0.0.1:1/m", max_answer_bytes=5000),
    ]
    try:
        sagemaker, http, python, bedrock, arn, openai, python_bedrock, bounded = made
        assert isinstance(sagemaker, SageMakerBackend)
        assert (sagemaker.endpoint_name, sagemaker.max_batch_size) == ("churn", 50)
        assert sagemaker._client.meta.config.read_timeout == 5
        assert isinstance(http, SageMakerHTTPBackend) and http.url.endswith("/m/invocations")
        assert isinstance(python, PythonCallableBackend) and python.max_batch_size == 10_000
        assert isinstance(bedrock, BedrockBackend) and bedrock.max_batch_size == 1
        assert (bedrock.content_type, bedrock.accept) == ("text/plain", "application/json")
        assert isinstance(arn, BedrockBackend) and arn.model_id.startswith("arn:aws:bedrock")
        assert isinstance(openai, OpenAIChatBackend) and openai.model_id == "llama-3"
        assert openai.url == f"{fake.url}/v1/chat/completions" and openai.timeout == 3
        assert isinstance(python_bedrock, PythonCallableBackend)
        assert python_bedrock.max_batch_size == 9
        assert isinstance(bounded, SageMakerHTTPBackend) and bounded.max_answer_bytes == 5000
        assert sagemaker.max_answer_bytes == openai.max_answer_bytes == 16 << 20
    finally:
        for backend in made:
            asyncio.run(backend.close())


def test_a_python_target_gets_whole_batches(fake: FakeAWSML) -> None:
    backend = alias_backend("bedrock", "python:tests.services.test_alias_backends:upper_first")
    outcomes, engine = run(backend, [(f"t{i}",) for i in range(30)], max_batch_size=10_000)
    assert outcomes == [f"T{i}" for i in range(30)]
    assert engine.counters.actual_request_cnt == 1


@pytest.mark.parametrize(
    ("kind", "target", "options", "match"),
    [
        ("sagemaker", "ftp://host/x", {}, "accepted forms: an endpoint name; http"),
        ("sagemaker", "my_endpoint", {}, "unknown sagemaker target 'my_endpoint'"),
        ("sagemaker", "openai+http://h/v1", {}, "unknown sagemaker target"),
        ("bedrock", "http://h/v1", {}, "accepted forms: a model id .*openai\\+http"),
        ("bedrock", "openai+ftp://h/v1", {}, "unknown bedrock target"),
        ("bedrock", "openai+http://h/v1", {}, "needs the function's MODEL ID"),
        ("comprehend", "x", {}, "unknown alias kind 'comprehend'; known: sagemaker, bedrock"),
        ("sagemaker", "python:no_such_module_xyz:f", {}, "cannot import 'no_such_module_xyz'"),
    ],
)
def test_unknown_targets_say_what_is_accepted(
    kind: str, target: str, options: dict[str, Any], match: str
) -> None:
    with pytest.raises(BackendNotFound, match=match):
        alias_backend(kind, target, **options)


def test_boto3_is_imported_only_for_aws_targets() -> None:
    code = (
        "import sys\n"
        "from ml_backends.registry import alias_backend\n"
        "alias_backend('sagemaker', 'http://127.0.0.1:1')\n"
        "alias_backend('bedrock', 'openai+http://127.0.0.1:1/v1', model_id='m')\n"
        "assert 'boto3' not in sys.modules and 'botocore' not in sys.modules\n"
        "alias_backend('bedrock', 'm.x', region='us-east-1')\n"
        "assert 'boto3' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=30)
