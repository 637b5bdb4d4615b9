"""Amazon SageMaker's InvokeEndpoint through boto3: CREATE FUNCTION ... ALIAS
AWS_SAGEMAKER_INVOKE_ENDPOINT with an AWS endpoint name.

Rows travel in SageMaker's CSV format (ml_backends.sagemaker_csv), one line per input; a
batch whose CSV would pass the 6 MB payload limit goes as several requests, in order,
within one engine request. The answer is the first value of each returned row, as text.

Errors (see ml_backends.aws.runtime for the transport side):

- throttling (ThrottlingException, HTTP 429, ModelNotReadyException, and SageMaker's
  quirk of HTTP 400 with ``{"message": null}``) -> Throttled;
- 5xx (InternalFailure, ServiceUnavailable, InternalDependencyException) -> RetryableError;
- ModelError (the container failed), ValidationError (e.g. no such endpoint), refused
  credentials, a wrong number of answered rows -> InferenceFailed naming the endpoint.
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
from ml_backends.sagemaker_csv import (
    CONTENT_TYPE,
    MAX_PAYLOAD,
    decode_answers,
    encode_rows,
    split_by_size,
)

#: Aurora's default MAX_BATCH_SIZE for SageMaker functions.
DEFAULT_MAX_BATCH_SIZE = 10_000
#: One type, not a list: model containers compare Accept with the types they produce,
#: and not all of them parse a list. JSON answers are understood anyway.
DEFAULT_ACCEPT = CONTENT_TYPE


class SageMakerBackend(AWSRuntimeBackend[Arguments]):
    """Inputs are argument tuples; answers the endpoint's first value per row (str, or
    None for an empty value)."""

    service = "sagemaker-runtime"

    def __init__(
        self,
        endpoint_name: str,
        *,
        max_batch_size: int = DEFAULT_MAX_BATCH_SIZE,
        accept: str = DEFAULT_ACCEPT,
        max_payload: int = MAX_PAYLOAD,
        **client: Unpack[ClientOptions],
    ) -> None:
        self.endpoint_name = endpoint_name
        self.name = f"sagemaker:{endpoint_name}"
        self.max_batch_size = max_batch_size
        self.accept = accept
        self.max_payload = max_payload
        super().__init__(**client)

    @property
    def where(self) -> str:
        return f"SageMaker endpoint {self.endpoint_name!r}"

    def infer_blocking(self, batch: Sequence[Arguments]) -> list[Outcome]:
        rows: list[Sequence[object]] = [tuple(item) for item in batch]
        answers: list[Outcome] = []
        for group in split_by_size(rows, self.max_payload):
            answers += self._invoke(group)
        return answers

    def _invoke(self, rows: list[Sequence[object]]) -> list[str | None]:
        """One InvokeEndpoint request for ``rows``."""
        with self.translated_errors():
            response = self._client.invoke_endpoint(
                EndpointName=self.endpoint_name,
                ContentType=CONTENT_TYPE,
                Accept=self.accept,
                Body=encode_rows(rows),
            )
            body = self.read_streaming(response, "Body")
        try:
            return decode_answers(body, str(response.get("ContentType", "")), len(rows))
        except InferenceFailed as exc:
            raise InferenceFailed(f"{self.where}: {exc}") from exc

    def service_error(self, error: ServiceError) -> MLBackendError:
        if error.throttling or (error.status == 400 and error.message is None):
            reason = (
                error.describe()
                if error.message
                else f"{error.code}, HTTP {error.status} with no message"
            )
            return Throttled(f"{self.where} throttled the request ({reason})")
        if error.transient:
            return RetryableError(f"{self.where} failed transiently: {error.describe()}")
        if error.code == "ModelError":
            return InferenceFailed(f"{self.where}: the model failed: {_model_error(error)}")
        if error.code in AUTH_CODES:
            return credentials_refused(self.where, error, "sagemaker:InvokeEndpoint")
        return InferenceFailed(f"{self.where} rejected the request: {error.describe()}")


def _model_error(error: ServiceError) -> str:
    """ModelError's message, with the container's own status and message when SageMaker
    sent them apart from it (its Message usually quotes them already)."""
    detail = error.message or "no message"
    original = error.fields.get("OriginalMessage")
    if original and str(original) not in detail:
        detail += f" (the model said: {original})"
    status = error.fields.get("OriginalStatusCode")
    if status and f"({status})" not in detail:
        detail += f" (model HTTP status {status})"
    return detail
