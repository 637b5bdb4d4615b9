"""An OpenAI-compatible chat server as the local alternative to Bedrock: llama.cpp's
server, vLLM, Ollama's ``/v1`` and the like, through the standard library's HTTP client.

Target: ``openai+http://host:port/v1`` (or ``openai+https://``), the API's base URL;
requests go to ``<base>/chat/completions``. Like Bedrock's InvokeModel, one request per
input (``max_batch_size`` 1, the engine keeps many in flight), and the answer is the
response body as text, so SQL reads it the way Aurora users read Bedrock's:
``JSON_EXTRACT(f(...), '$.choices[0].message.content')``.

The request: an argument that is a JSON object with ``messages`` is sent as the body
(``model`` added when absent); any other argument becomes one user message. A NULL
argument is answered NULL without a request. An API key, when the server wants one,
comes from the environment variable ``MLPROXY_OPENAI_API_KEY`` (``Authorization: Bearer``).

Errors: HTTP 429, 5xx and connection failures -> RetryableError (Throttled for 429);
other refusals -> InferenceFailed with the first 300 characters of the server's answer.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from ml_backends.aws.bedrock import request_body
from ml_backends.base import Arguments, Outcome
from ml_backends.bounded_read import DEFAULT_MAX_ANSWER_BYTES, read_answer, read_detail
from ml_backends.errors import (
    BackendNotFound,
    InferenceFailed,
    MLBackendError,
    RetryableError,
    Throttled,
)
from ml_backends.pooled import MAX_CONCURRENCY, PooledBackend

PREFIX = "openai+"
API_KEY_ENV = "MLPROXY_OPENAI_API_KEY"
#: How much of an error answer goes into the message for the SQL user.
DETAIL_CHARS = 300


def completions_url(target: str) -> str:
    """``<base>/chat/completions`` for an ``openai+http(s)://host[:port]/base`` target."""
    url = target.removeprefix(PREFIX)
    parts = urlsplit(url)
    if not target.startswith(PREFIX) or parts.scheme not in ("http", "https") or not parts.netloc:
        raise BackendNotFound(
            f"an OpenAI-compatible target is openai+http://host:port/v1 or "
            f"openai+https://..., not {target!r}"
        )
    return url.rstrip("/") + "/chat/completions"


def chat_request(argument: str, model_id: str) -> dict[str, Any]:
    """The chat/completions body for one SQL argument (see the module docstring)."""
    try:
        parsed = json.loads(argument)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict) and "messages" in parsed:
        parsed.setdefault("model", model_id)
        return parsed
    return {"model": model_id, "messages": [{"role": "user", "content": argument}]}


class OpenAIChatBackend(PooledBackend[Arguments]):
    """Inputs are 1-tuples; answers the chat/completions response body as text."""

    max_batch_size = 1

    def __init__(
        self,
        target: str,
        model_id: str,
        *,
        timeout: float = 60.0,
        max_concurrency: int = MAX_CONCURRENCY,
        max_answer_bytes: int = DEFAULT_MAX_ANSWER_BYTES,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.url = completions_url(target)
        self.model_id = model_id
        self.name = f"{target}#{model_id}"
        self.timeout = timeout
        self.max_answer_bytes = max_answer_bytes
        self._api_key = (os.environ if environ is None else environ).get(API_KEY_ENV)
        super().__init__(max_concurrency, thread_name="openai-chat")

    def infer_blocking(self, batch: Sequence[Arguments]) -> list[Outcome]:
        """Usually one input (max_batch_size is 1); more are sent one after another."""
        return [self._complete(request_body(item)) for item in batch]

    def _complete(self, argument: bytes | None) -> str | None:
        if argument is None:
            return None
        body = chat_request(argument.decode("utf-8"), self.model_id)
        request = urllib.request.Request(
            self.url, data=json.dumps(body).encode("utf-8"), method="POST", headers=self._headers()
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                length = response.headers.get("Content-Length")
                answer = read_answer(response, self.max_answer_bytes, self.url, length)
        except urllib.error.HTTPError as exc:
            raise self._http_error(exc) from exc
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise RetryableError(f"cannot reach {self.url}: {reason}") from exc
        return answer.decode("utf-8", "replace")

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        return headers

    def _http_error(self, exc: urllib.error.HTTPError) -> MLBackendError:
        """Throttling and server errors are worth retrying; other refusals are final,
        with the server's own explanation."""
        detail = read_detail(exc)[:DETAIL_CHARS]
        message = f"{self.url} answered HTTP {exc.code}" + (f": {detail}" if detail else "")
        if exc.code == 429:
            return Throttled(message)
        if exc.code >= 500:
            return RetryableError(message)
        return InferenceFailed(message)
