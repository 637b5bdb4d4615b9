"""Amazon Comprehend's BatchDetectSentiment through boto3: the ``aws`` backend.

One boto3 ``comprehend`` client is created per backend and shared by its worker threads
(boto3 clients are thread-safe; sessions are not, so the session is used only to build the
client). Credentials come from the standard boto3 chain (environment variables, shared
config and credentials files, SSO, container or instance roles); so does the region, which
falls back to ``us-east-1`` only when neither the ``region`` argument nor the chain names
one. ``endpoint_url`` points the client at another endpoint (a VPC endpoint, or a local
fake in the tests).

botocore's own retries are off (one attempt per call): the engine owns retries, backs off
and counts them (Aurora_ml_retry_request_cnt). Errors are translated where they leave
botocore: throttling, HTTP 429 and 5xx, connection failures and timeouts become
RetryableError/Throttled; everything else (validation, access denied, missing
credentials, unknown errors) becomes InferenceFailed with a message for the SQL user.

Calls run in a thread pool owned by this backend rather than the event loop's default
executor, whose size (``min(32, CPUs + 4)``: 6 threads on 2 CPUs) would otherwise cap the
requests in flight below the engine's ``max_in_flight``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Hashable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ml_backends.base import ItemError, Outcome, ThreadedBackend
from ml_backends.errors import (
    BackendNotFound,
    InferenceFailed,
    MLBackendError,
    RetryableError,
    Throttled,
)
from ml_backends.sentiment import (
    LABELS,
    MAX_DOCUMENTS,
    Sentiment,
    SentimentInput,
    truncate_utf8,
)

#: The region used when neither the ``region`` argument nor the boto3 chain names one.
DEFAULT_REGION = "us-east-1"
CONNECT_TIMEOUT = 5.0
#: Matches the engine's default request timeout (ml_request_timeout), so a worker thread
#: is not left waiting much longer than the engine does.
READ_TIMEOUT = 60.0
#: Worker threads and pooled HTTP connections; the engine bounds the requests in flight,
#: this only has to be at least that bound (with room for calls the engine abandoned).
MAX_CONCURRENCY = 32

_THROTTLING_CODES = frozenset(
    {
        "ThrottlingException",
        "TooManyRequestsException",
        "Throttling",
        "ThrottledException",
        "RequestThrottled",
        "RequestThrottledException",
        "RequestLimitExceeded",
        "ProvisionedThroughputExceededException",
        "SlowDown",
    }
)
_TRANSIENT_CODES = frozenset(
    {
        "InternalServerException",
        "InternalFailure",
        "InternalServerError",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "RequestTimeout",
        "RequestTimeoutException",
    }
)
_AUTH_CODES = frozenset(
    {
        "AccessDeniedException",
        "UnrecognizedClientException",
        "InvalidSignatureException",
        "InvalidClientTokenId",
        "ExpiredTokenException",
        "MissingAuthenticationTokenException",
    }
)
_UNSUPPORTED_LANGUAGE = "UnsupportedLanguageException"
_CREDENTIALS_HINT = (
    "no AWS credentials found for the aws comprehend backend: set AWS_ACCESS_KEY_ID and "
    "AWS_SECRET_ACCESS_KEY (or AWS_PROFILE), or give the proxy's host an IAM role"
)


def _boto3() -> Any:
    """Import boto3 lazily (botocore too, in the functions that use it): without it, the
    registry then reports BackendNotFound with the fix instead of an ImportError."""
    try:
        import boto3
    except ImportError as exc:
        raise BackendNotFound("the aws comprehend backend needs boto3: pip install boto3") from exc
    return boto3


def make_client(
    region: str | None,
    endpoint_url: str | None,
    connect_timeout: float = CONNECT_TIMEOUT,
    read_timeout: float = READ_TIMEOUT,
    max_pool_connections: int = MAX_CONCURRENCY,
) -> Any:
    """A Comprehend client with botocore's retries off and explicit timeouts.

    ``total_max_attempts=1``, not ``max_attempts=1``: the latter counts retries, so it
    would still send a throttled request twice behind the engine's back."""
    boto3 = _boto3()
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError

    config = Config(
        retries={"total_max_attempts": 1, "mode": "standard"},
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        max_pool_connections=max_pool_connections,
        user_agent_extra="mlproxy",
    )
    try:
        session = boto3.session.Session()
        return session.client(
            "comprehend",
            region_name=region or session.region_name or DEFAULT_REGION,
            endpoint_url=endpoint_url,
            config=config,
        )
    except (BotoCoreError, ValueError) as exc:
        raise InferenceFailed(f"cannot create the Comprehend client: {exc}") from exc


def translate_error(exc: Exception) -> MLBackendError:
    """The ml_backends error for a botocore failure (see the module docstring)."""
    from botocore.exceptions import ClientError

    if isinstance(exc, ClientError):
        return _client_error(exc)
    return _botocore_error(exc)


def _client_error(exc: Any) -> MLBackendError:
    """A service's error answer: retry throttling and 5xx, fail on the others."""
    error = exc.response.get("Error", {})
    code = str(error.get("Code", "Unknown"))
    message = str(error.get("Message", "")) or "no message"
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
    detail = f"{code}: {message} (HTTP {status})"
    if code in _THROTTLING_CODES or status == 429:
        return Throttled(f"Comprehend throttled the request: {detail}")
    if code in _TRANSIENT_CODES or status >= 500:
        return RetryableError(f"Comprehend failed transiently: {detail}")
    if code in _AUTH_CODES:
        return InferenceFailed(
            f"Comprehend refused the credentials: {detail}; check the proxy's AWS "
            "credentials and that they allow comprehend:BatchDetectSentiment"
        )
    return InferenceFailed(f"Comprehend rejected the request: {detail}")


def _botocore_error(exc: Exception) -> MLBackendError:
    """A failure before or around the HTTP exchange: retry network trouble only."""
    from botocore import exceptions as bce

    if isinstance(exc, bce.NoCredentialsError | bce.PartialCredentialsError):
        return InferenceFailed(f"{_CREDENTIALS_HINT} ({exc})")
    if isinstance(exc, bce.CredentialRetrievalError):
        return InferenceFailed(f"cannot load AWS credentials: {exc}")
    if isinstance(exc, bce.SSLError):
        return InferenceFailed(f"TLS failure talking to Comprehend: {exc}")
    if isinstance(exc, bce.ConnectTimeoutError | bce.ReadTimeoutError):
        return RetryableError(f"Comprehend timed out: {exc}")
    if isinstance(exc, bce.ConnectionError | bce.HTTPClientError):
        return RetryableError(f"Comprehend unreachable: {exc}")
    return InferenceFailed(f"Comprehend call failed: {type(exc).__name__}: {exc}")


def group_by_language(batch: Sequence[SentimentInput]) -> dict[str, list[int]]:
    """Input positions per language code, in first-seen order (one API call each)."""
    groups: dict[str, list[int]] = {}
    for position, item in enumerate(batch):
        groups.setdefault(item.language, []).append(position)
    return groups


def parse_response(response: dict[str, Any], count: int) -> list[Outcome]:
    """One outcome per document of a BatchDetectSentiment answer, by its Index."""
    outcomes: list[Outcome] = [ItemError("Comprehend returned no result")] * count
    for result in response.get("ResultList", []):
        outcomes[result["Index"]] = _sentiment(result)
    for error in response.get("ErrorList", []):
        code = error.get("ErrorCode", "error")
        outcomes[error["Index"]] = ItemError(
            f"Comprehend {code}: {error.get('ErrorMessage', 'no message')}"
        )
    return outcomes


def _sentiment(result: dict[str, Any]) -> Outcome:
    """Sentiment(label, the label's own score) from one ResultList entry."""
    label = str(result.get("Sentiment", ""))
    scores = result.get("SentimentScore", {})
    score = scores.get(label.title())  # POSITIVE -> Positive
    if label not in LABELS or score is None:
        return ItemError(f"Comprehend returned an unexpected result: {result!r}")
    return Sentiment(label, float(score))


class ComprehendBackend(ThreadedBackend):
    """Sentiment of (text, language) inputs through BatchDetectSentiment.

    Each batch may mix languages, but one request takes one LanguageCode: the batch is
    grouped by language, one call is made per group (in turn, in this worker thread),
    and the answers are put back in input order. Texts are cut to their first 5,000
    UTF-8 bytes at a character boundary (``truncate_utf8``), Comprehend's limit per
    document. Empty texts and documents in a language the service rejects answer an
    ItemError without failing the rest of the batch.
    """

    name = "aws"
    max_batch_size = MAX_DOCUMENTS

    def __init__(
        self,
        region: str | None = None,
        endpoint_url: str | None = None,
        *,
        connect_timeout: float = CONNECT_TIMEOUT,
        read_timeout: float = READ_TIMEOUT,
        max_concurrency: int = MAX_CONCURRENCY,
    ) -> None:
        self._client = make_client(
            region, endpoint_url, connect_timeout, read_timeout, max_concurrency
        )
        self._executor = ThreadPoolExecutor(max_concurrency, thread_name_prefix="comprehend")

    @property
    def region(self) -> str:
        """The region the client signs for."""
        return str(self._client.meta.region_name)

    def batch_key(self, item: Hashable) -> Hashable:
        """BatchDetectSentiment takes one language per call."""
        language: Hashable = item[1]  # type: ignore[index]
        return language

    async def infer(self, batch: Sequence[Hashable]) -> list[Outcome]:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self.infer_blocking, list(batch))

    def infer_blocking(self, batch: Sequence[Hashable]) -> list[Outcome]:
        inputs = [SentimentInput(str(item[0]), str(item[1])) for item in batch]  # type: ignore[index]
        outcomes: list[Outcome] = [None] * len(inputs)
        for language, positions in group_by_language(inputs).items():
            texts = [inputs[p].text for p in positions]
            for position, outcome in zip(positions, self._detect(texts, language), strict=True):
                outcomes[position] = outcome
        return outcomes

    def _detect(self, texts: list[str], language: str) -> list[Outcome]:
        """Outcomes for texts of one language; empty texts are answered without a call."""
        documents = [truncate_utf8(text) for text in texts]
        sendable = [i for i, doc in enumerate(documents) if doc]
        outcomes: list[Outcome] = [ItemError("empty text")] * len(documents)
        if sendable:
            answers = self._call([documents[i] for i in sendable], language)
            for i, answer in zip(sendable, answers, strict=True):
                outcomes[i] = answer
        return outcomes

    def _call(self, documents: list[str], language: str) -> list[Outcome]:
        """One BatchDetectSentiment request, its errors translated at this boundary."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            response = self._client.batch_detect_sentiment(
                TextList=documents, LanguageCode=language
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == _UNSUPPORTED_LANGUAGE:
                message = f"Comprehend does not support language {language!r}"
                return [ItemError(message)] * len(documents)
            raise translate_error(exc) from exc
        except BotoCoreError as exc:
            raise translate_error(exc) from exc
        return parse_response(response, len(documents))

    async def close(self) -> None:
        """Close the HTTP connections; abandon (do not wait for) calls still running."""
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._client.close()
