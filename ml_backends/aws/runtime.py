"""What the Comprehend, SageMaker and Bedrock backends share: a boto3 client built the way the
engine needs it, and the translation of botocore's errors at this boundary.

The client comes from the standard boto3 chain (credentials and region from the
environment, config files, SSO, container or instance roles); the region falls back to
``us-east-1`` only when neither the ``region`` argument nor the chain names one.
botocore's own retries are off (one attempt per call): the engine owns retries, backs off
and counts them (Aurora_ml_retry_request_cnt).

    botocore failure                          becomes
    ClientError (the service answered)        the backend's ``service_error`` verdict
    connection failure, connect/read timeout  RetryableError
    missing credentials, TLS failure, other   InferenceFailed, with the fix when known
"""

from __future__ import annotations

import abc
import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypedDict

from ml_backends.base import Input
from ml_backends.bounded_read import DEFAULT_MAX_ANSWER_BYTES, read_answer
from ml_backends.errors import BackendNotFound, InferenceFailed, MLBackendError, RetryableError
from ml_backends.pooled import MAX_CONCURRENCY, PooledBackend

#: The region used when neither the ``region`` argument nor the boto3 chain names one.
DEFAULT_REGION = "us-east-1"
CONNECT_TIMEOUT = 5.0
#: SageMaker gives a model 60 s to answer; the engine's default request timeout is 60 s.
READ_TIMEOUT = 60.0

THROTTLING_CODES = frozenset(
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
TRANSIENT_CODES = frozenset(
    {
        "InternalFailure",
        "InternalServerException",
        "InternalServerError",
        "InternalDependencyException",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "RequestTimeout",
        "RequestTimeoutException",
    }
)
AUTH_CODES = frozenset(
    {
        "AccessDeniedException",
        "UnrecognizedClientException",
        "InvalidSignatureException",
        "InvalidClientTokenId",
        "ExpiredTokenException",
        "MissingAuthenticationTokenException",
    }
)
_CREDENTIALS_HINT = (
    "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE), "
    "or give the proxy's host an IAM role"
)


@dataclass(frozen=True)
class ServiceError:
    """A service's error answer, as botocore parsed it."""

    code: str
    #: None when the service sent none: SageMaker's throttling quirk is HTTP 400 with
    #: ``{"message": null}``.
    message: str | None
    status: int
    #: The error's modeled fields (SageMaker's ModelError: OriginalMessage, LogStreamArn).
    fields: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_client_error(cls, exc: Any) -> ServiceError:
        """The parts of a botocore ClientError the backends decide on."""
        response: dict[str, Any] = exc.response
        error = response.get("Error", {})
        message = error.get("Message")
        extra = {k: v for k, v in response.items() if k not in ("Error", "ResponseMetadata")}
        return cls(
            code=str(error.get("Code") or "Unknown"),
            message=str(message) if message else None,
            status=int(response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)),
            fields=extra,
        )

    @property
    def throttling(self) -> bool:
        return self.code in THROTTLING_CODES or self.status == 429

    @property
    def transient(self) -> bool:
        return self.code in TRANSIENT_CODES or self.status >= 500

    def describe(self) -> str:
        return f"{self.code}: {self.message or 'no message'} (HTTP {self.status})"


def make_client(
    service: str,
    region: str | None,
    endpoint_url: str | None,
    read_timeout: float = READ_TIMEOUT,
    max_pool_connections: int = MAX_CONCURRENCY,
    *,
    connect_timeout: float = CONNECT_TIMEOUT,
) -> Any:
    """A boto3 client for ``service`` with botocore's retries off and explicit timeouts.

    ``total_max_attempts=1``, not ``max_attempts=1``: the latter counts retries, so it
    would still send a throttled request twice behind the engine's back."""
    try:
        import boto3
    except ImportError as exc:
        raise BackendNotFound(f"the {service} backend needs boto3: pip install boto3") from exc
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
            service,
            region_name=region or session.region_name or DEFAULT_REGION,
            endpoint_url=endpoint_url,
            config=config,
        )
    except (BotoCoreError, ValueError) as exc:
        raise InferenceFailed(f"cannot create the {service} client: {exc}") from exc


def transport_error(exc: Exception, where: str) -> MLBackendError:
    """A failure before or around the HTTP exchange: retry network trouble only."""
    from botocore import exceptions as bce

    if isinstance(exc, bce.NoCredentialsError | bce.PartialCredentialsError):
        return InferenceFailed(f"no AWS credentials found for {where}: {_CREDENTIALS_HINT} ({exc})")
    if isinstance(exc, bce.CredentialRetrievalError):
        return InferenceFailed(f"cannot load AWS credentials for {where}: {exc}")
    if isinstance(exc, bce.SSLError):
        return InferenceFailed(f"TLS failure talking to {where}: {exc}")
    if isinstance(exc, bce.ConnectTimeoutError | bce.ReadTimeoutError):
        return RetryableError(f"{where} timed out: {exc}")
    if isinstance(exc, bce.ConnectionError | bce.HTTPClientError | bce.ResponseStreamingError):
        return RetryableError(f"{where} unreachable: {exc}")
    return InferenceFailed(f"{where}: {type(exc).__name__}: {exc}")


def credentials_refused(where: str, error: ServiceError, action: str) -> InferenceFailed:
    """The error for an authentication or authorization refusal, with what to check."""
    return InferenceFailed(
        f"{where} refused the credentials: {error.describe()}; check the proxy's AWS "
        f"credentials and that they allow {action}"
    )


class ClientOptions(TypedDict, total=False):
    """How an AWSRuntimeBackend reaches its service: the options every one of them takes."""

    region: str | None
    endpoint_url: str | None
    connect_timeout: float
    read_timeout: float
    max_concurrency: int
    max_answer_bytes: int


class AWSRuntimeBackend(PooledBackend[Input]):
    """A pooled backend calling one AWS runtime service through one shared boto3 client
    (clients are thread-safe; sessions are not, so the session only builds the client)."""

    #: The boto3 service name.
    service: str = ""

    def __init__(
        self,
        region: str | None = None,
        endpoint_url: str | None = None,
        *,
        connect_timeout: float = CONNECT_TIMEOUT,
        read_timeout: float = READ_TIMEOUT,
        max_concurrency: int = MAX_CONCURRENCY,
        max_answer_bytes: int = DEFAULT_MAX_ANSWER_BYTES,
    ) -> None:
        self.max_answer_bytes = max_answer_bytes
        self._client = make_client(
            self.service,
            region,
            endpoint_url,
            read_timeout,
            max_concurrency,
            connect_timeout=connect_timeout,
        )
        super().__init__(max_concurrency, thread_name=self.service)

    @property
    def region(self) -> str:
        """The region the client signs for."""
        return str(self._client.meta.region_name)

    @property
    @abc.abstractmethod
    def where(self) -> str:
        """What is being called, for messages (``SageMaker endpoint 'churn'``)."""

    @abc.abstractmethod
    def service_error(self, error: ServiceError) -> MLBackendError:
        """The ml_backends error for the service's error answer."""

    def read_streaming(self, response: Mapping[str, Any], key: str) -> bytes:
        """The streaming body ``response[key]`` (InvokeEndpoint's, InvokeModel's), at most
        ``max_answer_bytes`` of it (ml_backends.bounded_read). Bodies botocore parses
        itself (Comprehend's, error answers) come from AWS, which bounds them."""
        body = response[key]
        headers = response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
        try:
            return read_answer(
                body, self.max_answer_bytes, self.where, headers.get("content-length")
            )
        finally:
            body.close()  # a refused body's connection is dropped, not reused half-read

    @contextlib.contextmanager
    def translated_errors(self) -> Iterator[None]:
        """Around a call and the reading of its body: botocore errors leave as
        ml_backends errors, chained."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            yield
        except ClientError as exc:
            raise self.service_error(ServiceError.from_client_error(exc)) from exc
        except BotoCoreError as exc:
            raise transport_error(exc, self.where) from exc

    async def close(self) -> None:
        """Stop the pool and close the HTTP connections."""
        await super().close()
        self._client.close()
