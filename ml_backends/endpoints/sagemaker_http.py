"""A SageMaker-compatible HTTP endpoint: POST text/csv to its /invocations path.

SageMaker inference containers, MLflow model servers and many others accept this. Rows
travel in SageMaker's CSV format (ml_backends.sagemaker_csv); a batch whose CSV would pass
the 6 MB payload limit is sent as several requests, in order.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Sequence
from urllib.parse import urlsplit, urlunsplit

from ml_backends.base import Arguments, Outcome, ThreadedBackend
from ml_backends.bounded_read import DEFAULT_MAX_ANSWER_BYTES, read_answer, read_detail
from ml_backends.errors import BackendNotFound, InferenceFailed, RetryableError, Throttled
from ml_backends.sagemaker_csv import CONTENT_TYPE, decode_answers, encode_rows, split_by_size

DEFAULT_MAX_BATCH_SIZE = 10_000


def invocations_url(url: str) -> str:
    """``url`` with the /invocations path SageMaker containers serve."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise BackendNotFound(f"an HTTP endpoint must be an http:// or https:// URL, not {url!r}")
    path = parts.path.rstrip("/")
    if not path.endswith("/invocations"):
        path += "/invocations"
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))


class SageMakerHTTPBackend(ThreadedBackend[Arguments]):
    """Inputs are argument tuples; answers are the endpoint's first value per row, as text."""

    def __init__(
        self,
        url: str,
        max_batch_size: int = DEFAULT_MAX_BATCH_SIZE,
        timeout: float = 60.0,
        max_answer_bytes: int = DEFAULT_MAX_ANSWER_BYTES,
    ) -> None:
        self.url = invocations_url(url)
        self.name = url
        self.max_batch_size = max_batch_size
        self.timeout = timeout
        self.max_answer_bytes = max_answer_bytes

    def infer_blocking(self, batch: Sequence[Arguments]) -> list[Outcome]:
        rows: list[Sequence[object]] = [tuple(item) for item in batch]
        answers: list[Outcome] = []
        for group in split_by_size(rows):
            answers += self._post(group)
        return answers

    def _post(self, rows: list[Sequence[object]]) -> list[str | None]:
        request = urllib.request.Request(
            self.url,
            data=encode_rows(rows),
            method="POST",
            headers={"Content-Type": CONTENT_TYPE, "Accept": f"{CONTENT_TYPE}, application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                content_type = response.headers.get("Content-Type", "")
                length = response.headers.get("Content-Length")
                body = read_answer(response, self.max_answer_bytes, self.url, length)
        except urllib.error.HTTPError as exc:
            raise _http_error(exc) from exc
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise RetryableError(f"cannot reach {self.url}: {reason}") from exc
        return decode_answers(body, content_type, len(rows))


def _http_error(exc: urllib.error.HTTPError) -> Exception:
    """Throttling (429: the engine slows down for it) and server errors are worth
    retrying; other refusals are final, and the endpoint's own explanation goes with
    them."""
    detail = read_detail(exc)[:300]
    message = f"HTTP {exc.code}" + (f": {detail}" if detail else "")
    if exc.code == 429:
        return Throttled(message)
    if exc.code >= 500:
        return RetryableError(message)
    return InferenceFailed(f"the endpoint refused the request: {message}")
