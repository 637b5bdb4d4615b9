"""Amazon Bedrock's InvokeModel through boto3: CREATE FUNCTION ... ALIAS
AWS_BEDROCK_INVOKE_MODEL with a model id.

Bedrock has no batch call, so ``max_batch_size`` is 1: the engine sends one request per
distinct input, many in flight under its semaphore and rate limit. The function's single
argument is the request body (the caller builds the model's JSON, as in Aurora); the
answer is the response body as text, which SQL reads with JSON_EXTRACT. A NULL argument
is answered NULL without a request.

Errors (see ml_backends.aws.runtime for the transport side):

- ThrottlingException, ServiceQuotaExceededException (HTTP 400), ModelNotReadyException,
  ModelTimeoutException, HTTP 429 and 5xx -> RetryableError (Throttled for throttling);
- ValidationException, AccessDeniedException, ResourceNotFoundException,
  ModelErrorException and the rest -> InferenceFailed naming the model, with the
  service's message.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Unpack

from ml_backends.aws.runtime import (
    AUTH_CODES,
    AWSRuntimeBackend,
    ClientOptions,
    ServiceError,
    credentials_refused,
)
from ml_backends.base import Arguments, Outcome
from ml_backends.errors import InferenceFailed, MLBackendError, RetryableError, Throttled
from ml_backends.sagemaker_csv import encode_field

#: Aurora's defaults for CONTENT_TYPE and ACCEPT.
DEFAULT_CONTENT_TYPE = "application/json"
DEFAULT_ACCEPT = "application/json"

#: Quota and capacity answers: the same request can succeed a little later.
_BUSY_CODES = frozenset(
    {"ServiceQuotaExceededException", "ModelNotReadyException", "ModelTimeoutException"}
)


def request_body(arguments: Arguments) -> bytes | None:
    """The body for one input (a 1-tuple), or None for a NULL argument."""
    if len(arguments) != 1:
        raise InferenceFailed(f"a Bedrock function takes one argument, not {len(arguments)}")
    (value,) = arguments
    return None if value is None else encode_field(value).encode("utf-8")


class BedrockBackend(AWSRuntimeBackend[Arguments]):
    """Inputs are 1-tuples (the request body); answers the response body as text."""

    service = "bedrock-runtime"
    max_batch_size = 1

    def __init__(
        self,
        model_id: str,
        *,
        content_type: str = DEFAULT_CONTENT_TYPE,
        accept: str = DEFAULT_ACCEPT,
        **client: Unpack[ClientOptions],
    ) -> None:
        self.model_id = model_id
        self.name = f"bedrock:{model_id}"
        self.content_type = content_type
        self.accept = accept
        super().__init__(**client)

    @property
    def where(self) -> str:
        return f"Bedrock model {self.model_id!r}"

    def infer_blocking(self, batch: Sequence[Arguments]) -> list[Outcome]:
        """Usually one input (max_batch_size is 1); more are sent one after another."""
        return [self._invoke(request_body(item)) for item in batch]

    def _invoke(self, body: bytes | None) -> str | None:
        if body is None:
            return None
        with self.translated_errors():
            response = self._client.invoke_model(
                modelId=self.model_id, body=body, contentType=self.content_type, accept=self.accept
            )
            answer = self.read_streaming(response, "body")
        return answer.decode("utf-8", "replace")

    def service_error(self, error: ServiceError) -> MLBackendError:
        if error.throttling:
            return Throttled(f"{self.where} throttled the request: {error.describe()}")
        if error.transient or error.code in _BUSY_CODES:
            return RetryableError(f"{self.where} is busy or failing: {error.describe()}")
        if error.code in AUTH_CODES:
            return credentials_refused(self.where, error, "bedrock:InvokeModel on this model")
        return InferenceFailed(f"{self.where} rejected the request: {error.describe()}")
