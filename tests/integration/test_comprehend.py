"""The aws backend: the real boto3 client (signing, JSON 1.1, error parsing) against a
local fake Comprehend, through the batching engine and through the proxy."""

from __future__ import annotations

import asyncio
import math
import random
import socket
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pymysql
import pytest

from ml_backends.aws.comprehend import ComprehendBackend, translate_error
from ml_backends.base import ItemError, Outcome
from ml_backends.control.budget import TimeBudget
from ml_backends.engine import BatchPolicy, InferenceEngine
from ml_backends.errors import BudgetExhausted, InferenceFailed, RetryableError, Throttled
from ml_backends.sentiment import Sentiment, SentimentInput, truncate_utf8
from tests.conftest import TEST_DB, admin_connect, start_proxy
from tests.support.aws_env import fake_aws_env
from tests.support.backend import BackendInfo
from tests.support.fake_comprehend import FakeComprehend, model

FAST = {"base_backoff": 0.001, "max_backoff": 0.01}


@pytest.fixture(scope="module")
def module_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The fake's test credentials in the environment, and nothing else from the host:
    no region, no profile, no config files, no instance metadata lookups."""
    empty = tmp_path_factory.mktemp("aws")
    with fake_aws_env(empty):
        yield


@pytest.fixture
def aws_env(module_env: None, monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """For tests that change the environment further (undone after each test)."""
    return monkeypatch


@pytest.fixture(scope="module")
def module_fake(module_env: None) -> Iterator[FakeComprehend]:
    with FakeComprehend(seed=7) as server:
        yield server


@pytest.fixture
def fake(module_fake: FakeComprehend) -> FakeComprehend:
    """The module's fake, without faults or recorded requests."""
    module_fake.reset()
    return module_fake


@pytest.fixture(scope="module")
def aws(module_fake: FakeComprehend) -> Iterator[ComprehendBackend]:
    """A ComprehendBackend with default options, shared (creating a client takes ~0.2 s)."""
    backend = ComprehendBackend(endpoint_url=module_fake.url)
    yield backend
    asyncio.run(backend.close())


@pytest.fixture
def make_backend(
    aws_env: pytest.MonkeyPatch, fake: FakeComprehend
) -> Iterator[Callable[..., ComprehendBackend]]:
    """ComprehendBackend factory for special options or environments; closes what it made."""
    made: list[ComprehendBackend] = []

    def make(**options: Any) -> ComprehendBackend:
        options.setdefault("endpoint_url", fake.url)
        made.append(ComprehendBackend(**options))
        return made[-1]

    yield make
    for backend in made:
        asyncio.run(backend.close())


def run_engine(
    backend: ComprehendBackend, inputs: Sequence[SentimentInput], **policy: Any
) -> tuple[list[Outcome], InferenceEngine]:
    engine = InferenceEngine(backend, BatchPolicy(**policy), rng=random.Random(3))
    return asyncio.run(engine.infer(inputs, namespace="sentiment")), engine


def expected(inputs: Sequence[SentimentInput]) -> list[Sentiment]:
    """What the fake's model says, truncated as the backend must truncate."""
    verdicts = [model(truncate_utf8(text), language) for text, language in inputs]
    return [Sentiment(v.label, v.confidence) for v in verdicts]


def texts(n: int, language: str = "en", prefix: str = "text") -> list[SentimentInput]:
    words = ["good", "bad", "good and bad", "plain", "great", "awful"]
    return [SentimentInput(f"{prefix} {i} {words[i % 6]}", language) for i in range(n)]


def wait_for(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


# -- batching, languages, truncation, per-document errors --------------------------------


def test_forty_texts_take_two_requests_of_25_and_15(
    fake: FakeComprehend, aws: ComprehendBackend
) -> None:
    inputs = texts(40)
    outcomes, engine = run_engine(aws, inputs)
    assert outcomes == expected(inputs)
    assert sorted(len(r.documents) for r in fake.requests) == [15, 25]
    assert sorted(d for r in fake.requests for d in r.documents) == sorted(t for t, _ in inputs)
    assert engine.counters.actual_request_cnt == 2
    assert {r.region for r in fake.requests} == {"us-east-1"}


def test_mixed_languages_go_one_request_per_language_and_come_back_in_order(
    fake: FakeComprehend, aws: ComprehendBackend
) -> None:
    languages = ["en", "es", "fr", "es", "en"]
    inputs = [
        SentimentInput(f"{lang} review {i} {'bueno' if i % 2 else 'malo'}", lang)
        for i, lang in enumerate(languages * 4)
    ]
    outcomes, _ = run_engine(aws, inputs)
    assert outcomes == expected(inputs)  # the model's scores depend on the language
    assert sorted(r.language or "" for r in fake.requests) == ["en", "es", "fr"]
    for request in fake.requests:
        assert all(doc.startswith(f"{request.language} ") for doc in request.documents)


def test_an_unsupported_language_fails_only_its_own_inputs(
    fake: FakeComprehend, aws: ComprehendBackend
) -> None:
    inputs = [
        SentimentInput("good", "en"),
        SentimentInput("bon", "xx"),
        SentimentInput("bad", "en"),
    ]
    outcomes, _ = run_engine(aws, inputs)
    assert outcomes[0::2] == expected(inputs[0::2])
    assert isinstance(outcomes[1], ItemError) and "'xx'" in outcomes[1].message
    assert fake.count("UnsupportedLanguageException") == 1


def test_a_6000_byte_text_reaches_comprehend_as_5000_bytes_of_whole_characters(
    fake: FakeComprehend, aws: ComprehendBackend
) -> None:
    text = "good " + "€" * 2000  # 6,005 bytes; a 5,000-byte cut would split a euro sign
    outcomes, _ = run_engine(aws, [SentimentInput(text, "en")])
    (request,) = fake.answered()
    (document,) = request.documents
    sent = document.encode("utf-8")  # strict: a split character would not encode
    assert 5000 - 3 < len(sent) <= 5000
    assert text.startswith(document)
    assert outcomes == [Sentiment(model(document).label, model(document).confidence)]


def test_errorlist_entries_become_item_errors_in_place(
    fake: FakeComprehend, aws: ComprehendBackend
) -> None:
    inputs = texts(30)
    inputs[3] = SentimentInput("broken <<item-error>>", "en")
    inputs[27] = SentimentInput("also <<item-error>> broken", "en")
    outcomes, engine = run_engine(aws, inputs)
    for i, (outcome, want) in enumerate(zip(outcomes, expected(inputs), strict=True)):
        if i in (3, 27):
            assert isinstance(outcome, ItemError)
            assert "INTERNAL_SERVER_ERROR" in outcome.message
        else:
            assert outcome == want
    assert engine.counters.retry_request_cnt == 0


def test_an_empty_text_is_answered_without_a_request(
    fake: FakeComprehend, aws: ComprehendBackend
) -> None:
    outcomes, _ = run_engine(aws, [SentimentInput("", "en")])
    assert outcomes == [ItemError("empty text")]
    assert fake.count() == 0


# -- retries: throttling, 5xx, timeouts -----------------------------------------------------


def test_throttling_30_percent_changes_nothing_but_the_retry_count(
    fake: FakeComprehend, aws: ComprehendBackend
) -> None:
    inputs = texts(200)
    clean, _ = run_engine(aws, inputs)
    fake.reset(throttle_rate=0.3)
    throttled, engine = run_engine(aws, inputs, max_attempts=1)  # throttling has no count
    assert throttled == clean == expected(inputs)
    retries = engine.counters.retry_request_cnt
    assert retries == engine.counters.throttled_cnt == fake.count("ThrottlingException") > 0
    # botocore's own retries are off: every request the fake saw, the engine sent.
    assert fake.count() == engine.counters.actual_request_cnt == 8 + retries


def test_5xx_answers_are_retried(fake: FakeComprehend, aws: ComprehendBackend) -> None:
    fake.reset(script=[500, 503])
    inputs = texts(5)
    outcomes, engine = run_engine(aws, inputs, **FAST)
    assert outcomes == expected(inputs)
    assert fake.count("InternalServerException") == fake.count("ServiceUnavailableException") == 1
    assert engine.counters.retry_request_cnt == 2
    assert fake.count() == 3


def test_retries_of_5xx_run_out_into_a_clear_failure(
    fake: FakeComprehend, aws: ComprehendBackend
) -> None:
    fake.reset(script=[500, 503, 500])
    with pytest.raises(InferenceFailed, match=r"gave up after 3 attempts .*InternalServer"):
        run_engine(aws, texts(3), max_attempts=3, **FAST)
    assert fake.count() == 3


def test_throttling_is_retried_until_the_budget_is_spent(
    fake: FakeComprehend, aws: ComprehendBackend
) -> None:
    fake.reset(throttle_rate=1.0)
    engine = InferenceEngine(aws, BatchPolicy(max_attempts=1))
    budget = TimeBudget(2.0, "ml_statement_timeout")
    with pytest.raises(BudgetExhausted, match=r"budget of 2s .*ThrottlingException"):
        asyncio.run(engine.infer(texts(3), namespace="sentiment", budget=budget))
    assert fake.count() >= 2  # more than max_attempts: throttling is not counted
    assert engine.counters.throttled_cnt == fake.count()


def test_latency_beyond_the_request_timeout_is_retried_then_fails(
    fake: FakeComprehend, aws: ComprehendBackend
) -> None:
    fake.reset(latency=0.5)
    with pytest.raises(InferenceFailed, match=r"gave up after 2 attempts \(no answer in 0.1s\)"):
        run_engine(aws, texts(3), request_timeout=0.1, max_attempts=2, **FAST)
    wait_for(lambda: fake.count() == 2)


def test_a_botocore_read_timeout_is_retried(
    fake: FakeComprehend, make_backend: Callable[..., ComprehendBackend]
) -> None:
    fake.reset(latency=0.5)
    backend = make_backend(read_timeout=0.1)
    with pytest.raises(InferenceFailed, match=r"gave up after 2 attempts .*timed out"):
        run_engine(backend, texts(3), max_attempts=2, **FAST)
    wait_for(lambda: fake.count() == 2)


def test_an_unreachable_endpoint_is_retried_then_reported(
    make_backend: Callable[..., ComprehendBackend],
) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    backend = make_backend(endpoint_url=f"http://127.0.0.1:{port}")
    with pytest.raises(InferenceFailed, match=r"gave up after 2 attempts .*unreachable"):
        run_engine(backend, texts(1), max_attempts=2, **FAST)


# -- credentials and region -----------------------------------------------------------------


def test_wrong_credentials_fail_at_once_with_a_clear_message(
    fake: FakeComprehend,
    make_backend: Callable[..., ComprehendBackend],
    aws_env: pytest.MonkeyPatch,
) -> None:
    aws_env.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    with pytest.raises(InferenceFailed, match=r"refused the credentials: InvalidSignature"):
        run_engine(make_backend(), texts(1))
    assert fake.count() == 1


def test_missing_credentials_say_how_to_configure_them(
    fake: FakeComprehend,
    make_backend: Callable[..., ComprehendBackend],
    aws_env: pytest.MonkeyPatch,
) -> None:
    aws_env.delenv("AWS_ACCESS_KEY_ID")
    aws_env.delenv("AWS_SECRET_ACCESS_KEY")
    with pytest.raises(InferenceFailed, match="set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"):
        run_engine(make_backend(), texts(1))
    assert fake.count() == 0


def test_the_region_comes_from_the_argument_then_the_chain_then_us_east_1(
    fake: FakeComprehend,
    make_backend: Callable[..., ComprehendBackend],
    aws_env: pytest.MonkeyPatch,
) -> None:
    assert make_backend().region == "us-east-1"
    assert make_backend(region="ap-south-1").region == "ap-south-1"
    aws_env.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    backend = make_backend()
    run_engine(backend, texts(1))
    assert fake.requests[-1].region == "eu-west-1"  # the signature's credential scope


# -- the fake itself, and error translation --------------------------------------------


@pytest.mark.parametrize(
    ("documents", "language", "error"),
    [
        (["x"] * 26, "en", "BatchSizeLimitExceededException"),
        (["é" * 2501], "en", "TextSizeLimitExceededException"),
        (["x"], "xx", "UnsupportedLanguageException"),
    ],
)
def test_the_fake_rejects_what_comprehend_rejects(
    fake: FakeComprehend, documents: list[str], language: str, error: str
) -> None:
    import boto3
    from botocore.exceptions import ClientError

    client = boto3.client("comprehend", region_name="us-east-1", endpoint_url=fake.url)
    try:
        with pytest.raises(ClientError) as caught:
            client.batch_detect_sentiment(TextList=documents, LanguageCode=language)
    finally:
        client.close()
    assert caught.value.response["Error"]["Code"] == error
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


@pytest.mark.parametrize(
    ("code", "status", "kind"),
    [
        ("ThrottlingException", 400, Throttled),
        ("TooManyRequestsException", 429, Throttled),
        ("Whatever", 429, Throttled),
        ("InternalServerException", 500, RetryableError),
        ("Unknown", 502, RetryableError),
        ("AccessDeniedException", 403, InferenceFailed),
        ("InvalidRequestException", 400, InferenceFailed),
        ("SomethingNew", 400, InferenceFailed),
    ],
)
def test_service_errors_are_classified_by_code_and_status(
    code: str, status: int, kind: type[Exception]
) -> None:
    from botocore.exceptions import ClientError

    response: Any = {
        "Error": {"Code": code, "Message": "m"},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    error = translate_error(ClientError(response, "BatchDetectSentiment"))
    assert type(error) is kind
    assert code in str(error)


# -- through the proxy ----------------------------------------------------------------------

SQL = (
    "SELECT id, aws_comprehend_detect_sentiment(txt, 'en'), "
    "aws_comprehend_detect_sentiment_confidence(txt, 'en') FROM {table} ORDER BY id"
)


def _create_table(backend: BackendInfo, table: str, rows: Sequence[str | None]) -> None:
    with admin_connect(backend, database=TEST_DB) as conn, conn.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS {table}")
        cur.execute(f"CREATE TABLE {table} (id INT PRIMARY KEY, txt TEXT) CHARACTER SET utf8mb4")
        cur.executemany(f"INSERT INTO {table} VALUES (%s, %s)", list(enumerate(rows)))


def test_sql_through_the_proxy_answers_what_comprehend_says_in_few_requests(
    backend: BackendInfo, fake: FakeComprehend
) -> None:
    distinct = [t for t, _ in texts(60, prefix="row")] + ["très bon 👍", "great"]
    rows: list[str | None] = [*distinct, *distinct[:10], None]
    _create_table(backend, "comprehend_e2e", rows)
    proxy = start_proxy(
        backend, comprehend_backend="aws", aws_endpoint_url=fake.url, aws_region="us-east-1"
    )
    try:
        with proxy.connect() as conn, conn.cursor() as cur:
            cur.execute(SQL.format(table="comprehend_e2e"))
            got = cur.fetchall()
    finally:
        proxy.stop()
    for (row_id, label, confidence), text in zip(got, rows, strict=True):
        want = (None, None) if text is None else (model(text).label, model(text).confidence)
        assert (label, confidence) == want, row_id
    assert fake.count() == math.ceil(len(distinct) / 25)
    assert sorted(d for r in fake.requests for d in r.documents) == sorted(distinct)


def test_sql_through_the_proxy_fails_clearly_when_comprehend_throttles(
    backend: BackendInfo, fake: FakeComprehend
) -> None:
    _create_table(backend, "comprehend_e2e_fail", ["good", "bad"])
    fake.reset(throttle_rate=1.0)
    proxy = start_proxy(
        backend,
        comprehend_backend="aws",
        aws_endpoint_url=fake.url,
        aws_region="us-east-1",
        ml_statement_timeout=1,
    )
    sql = "SELECT aws_comprehend_detect_sentiment(txt, 'en') FROM comprehend_e2e_fail ORDER BY id"
    try:
        with proxy.connect() as conn, conn.cursor() as cur:
            with pytest.raises(pymysql.MySQLError) as caught:
                cur.execute(sql)
            errno, message = caught.value.args
            assert errno == 1105
            assert "aws_comprehend_detect_sentiment" in message
            assert "time budget of 1s (ml_statement_timeout)" in message
            assert "requests throttled" in message and "ThrottlingException" in message
            cur.execute("SELECT 1")
            assert cur.fetchall() == ((1,),)
            fake.reset()
            cur.execute(sql)
            assert [label for (label,) in cur.fetchall()] == ["POSITIVE", "NEGATIVE"]
    finally:
        proxy.stop()
