"""Amazon Comprehend's BatchDetectSentiment through boto3: the ``aws`` backend.

The client (credentials and region from the boto3 chain, ``us-east-1`` when none is
named; botocore's retries off, the engine owns them) and the transport errors are
ml_backends.aws.runtime's; ``endpoint_url`` points the client at another endpoint (a VPC
endpoint, or a local fake in the tests). The service's own error answers become:

- throttling (ThrottlingException and the like, HTTP 429) -> Throttled;
- 5xx (InternalServerException, ServiceUnavailable, ...) -> RetryableError;
- UnsupportedLanguageException -> an ItemError for each document of that language only;
- refused credentials, validation errors and the rest -> InferenceFailed.

Per-document failures (BatchDetectSentiment's ErrorList) are ItemErrors in place.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

from ml_backends.aws.runtime import (
    AUTH_CODES,
    AWSRuntimeBackend,
    ServiceError,
    credentials_refused,
    transport_error,
)
from ml_backends.base import Arguments, ItemError, Outcome
from ml_backends.errors import InferenceFailed, MLBackendError, RetryableError, Throttled
from ml_backends.sentiment import (
    LABELS,
    MAX_DOCUMENTS,
    Sentiment,
    SentimentInput,
    truncate_utf8,
)

#: What is being called, in error messages.
WHERE = "Comprehend"
_UNSUPPORTED_LANGUAGE = "UnsupportedLanguageException"


def translate_error(exc: Exception) -> MLBackendError:
    """The ml_backends error for a botocore failure (see the module docstring)."""
    from botocore.exceptions import ClientError

    if isinstance(exc, ClientError):
        return service_error(ServiceError.from_client_error(exc))
    return transport_error(exc, WHERE)


def service_error(error: ServiceError) -> MLBackendError:
    """A service's error answer: retry throttling and 5xx, fail on the others."""
    if error.throttling:
        return Throttled(f"{WHERE} throttled the request: {error.describe()}")
    if error.transient:
        return RetryableError(f"{WHERE} failed transiently: {error.describe()}")
    if error.code in AUTH_CODES:
        return credentials_refused(WHERE, error, "comprehend:BatchDetectSentiment")
    return InferenceFailed(f"{WHERE} rejected the request: {error.describe()}")


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


class ComprehendBackend(AWSRuntimeBackend[Arguments]):
    """Sentiment of (text, language) inputs through BatchDetectSentiment.

    Each batch may mix languages, but one request takes one LanguageCode: the batch is
    grouped by language, one call is made per group (in turn, in this worker thread),
    and the answers are put back in input order. Texts are cut to their first 5,000
    UTF-8 bytes at a character boundary (``truncate_utf8``), Comprehend's limit per
    document. Empty texts and documents in a language the service rejects answer an
    ItemError without failing the rest of the batch.
    """

    name = "aws"
    service = "comprehend"
    max_batch_size = MAX_DOCUMENTS
    where = WHERE

    def batch_key(self, item: Arguments) -> Hashable:
        """BatchDetectSentiment takes one language per call."""
        return item[1]

    def service_error(self, error: ServiceError) -> MLBackendError:
        return service_error(error)

    def infer_blocking(self, batch: Sequence[Arguments]) -> list[Outcome]:
        inputs = [SentimentInput(str(item[0]), str(item[1])) for item in batch]
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
        """One BatchDetectSentiment request; a language the service does not support
        fails only these documents, other errors are translated (``translated_errors``)."""
        from botocore.exceptions import ClientError

        with self.translated_errors():
            try:
                response = self._client.batch_detect_sentiment(
                    TextList=documents, LanguageCode=language
                )
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != _UNSUPPORTED_LANGUAGE:
                    raise
                message = f"{WHERE} does not support language {language!r}"
                return [ItemError(message)] * len(documents)
        return parse_response(response, len(documents))
