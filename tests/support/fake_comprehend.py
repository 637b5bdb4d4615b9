"""A local Amazon Comprehend for tests and benchmarks: BatchDetectSentiment only.

It speaks the wire protocol boto3 uses for Comprehend (AWS JSON 1.1: ``POST /`` with
``X-Amz-Target: Comprehend_20171127.BatchDetectSentiment`` and ``Content-Type:
application/x-amz-json-1.1``), checks the SigV4 signature when given the secret keys, and
validates requests as the service does (1 to 25 non-empty documents of at most 5,000 UTF-8
bytes, a supported LanguageCode), answering errors in the service's shape
(``{"__type": ..., "message": ...}`` with its HTTP status).

Answers come from a tiny deterministic model (``model``): keywords choose the label, a
hash of (language, text) chooses the scores. Every request is recorded for assertions.
Faults can be injected: latency, a fraction of requests throttled, a scripted sequence of
throttles and 5xx answers, and per-document ErrorList entries for texts containing
``error_marker``. A quota makes it throttle as AWS does: a token bucket of ``quota``
requests per second holding at most ``burst`` (default: ``quota``) tokens, one taken by
each request it serves; a request that finds the bucket empty is answered
ThrottlingException and takes nothing.

Use it as a context manager (``with FakeComprehend() as fake: ... fake.url``), or run it
as ``python -m tests.support.fake_comprehend --latency 0.05``, which prints its URL.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import random
import re
import sys
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tests.support.local_service import AWSHandler, LocalService, QuietServer
from tests.support.sigv4 import check_sigv4, scope_region

TARGET_PREFIX = "Comprehend_20171127."
OPERATION = "BatchDetectSentiment"
CONTENT_TYPE = "application/x-amz-json-1.1"
LANGUAGES = frozenset({"en", "es", "fr", "de", "it", "pt", "ar", "hi", "ja", "ko", "zh", "zh-TW"})
MAX_DOCUMENTS = 25
MAX_DOCUMENT_BYTES = 5000
SCORE_KEYS = {
    "POSITIVE": "Positive",
    "NEGATIVE": "Negative",
    "NEUTRAL": "Neutral",
    "MIXED": "Mixed",
}

#: Test credentials the fake accepts by default (access key id -> secret key).
ACCESS_KEY = "AKIDFAKECOMPREHEND"
SECRET_KEY = "fake-comprehend-secret"

POSITIVE_WORDS = frozenset({"good", "great", "love", "excellent", "happy", "bueno", "bon", "gut"})
NEGATIVE_WORDS = frozenset({"bad", "awful", "hate", "terrible", "sad", "malo", "mauvais"})

#: How often the serving thread checks for stop(): its longest delay.

#: Scripted fault names, besides HTTP status codes such as 500 or 503.
THROTTLE = "throttle"
OK = "ok"


@dataclass(frozen=True)
class Verdict:
    """The model's answer for one document."""

    label: str
    scores: dict[str, float]

    @property
    def confidence(self) -> float:
        """The chosen label's score (what aws_comprehend_detect_sentiment_confidence says)."""
        return self.scores[SCORE_KEYS[self.label]]


def model(text: str, language: str = "en") -> Verdict:
    """Keywords choose the label; sha256(language, text) spreads the scores, the chosen
    label's in [0.5, 0.99], each different, summing to about 1."""
    words = set(re.findall(r"\w+", text.lower()))
    positive, negative = bool(words & POSITIVE_WORDS), bool(words & NEGATIVE_WORDS)
    label = "MIXED" if positive and negative else "POSITIVE" if positive else "NEGATIVE"
    if not positive and not negative:
        label = "NEUTRAL"
    digest = hashlib.sha256(f"{language}\0{text}".encode()).digest()
    top = 0.5 + digest[0] / 255 * 0.49
    others = [key for key in SCORE_KEYS if key != label]
    weights = [1 + digest[1 + i] for i in range(3)]
    scores = {SCORE_KEYS[label]: round(top, 6)}
    for key, weight in zip(others, weights, strict=True):
        scores[SCORE_KEYS[key]] = round((1 - top) * weight / sum(weights), 6)
    return Verdict(label, scores)


@dataclass(frozen=True)
class Recorded:
    """One request as the fake received it, and how it answered."""

    target: str
    language: str | None
    documents: tuple[str, ...]
    region: str | None
    status: int
    error: str | None


class ServiceError(Exception):
    """An error answer: HTTP status, the ``__type`` and the message."""

    def __init__(self, status: int, kind: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.kind = kind
        self.message = message


@dataclass
class Faults:
    """What to get wrong, applied in this order: quota, script, throttle_rate, latency."""

    latency: float = 0.0
    throttle_rate: float = 0.0
    script: list[str | int] = field(default_factory=list)
    error_marker: str = "<<item-error>>"
    #: Requests per second the token bucket serves (0: no quota), and its capacity.
    quota: float = 0.0
    burst: float | None = None


class TokenBucket:
    """``rate`` tokens per second, at most ``capacity``, starting full (not thread-safe:
    the fake takes its lock around it)."""

    def __init__(self, rate: float, capacity: float) -> None:
        self.rate = rate
        self.capacity = capacity
        self.tokens = capacity
        self.updated = time.monotonic()

    def take(self) -> bool:
        """Take a token if there is one."""
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


class FakeComprehend(LocalService):
    """The server; thread-safe; faults may be changed while it runs."""

    def __init__(
        self,
        *,
        credentials: Mapping[str, str] | None = None,
        seed: int = 0,
        **faults: Any,
    ) -> None:
        super().__init__()
        self.credentials = dict(credentials or {ACCESS_KEY: SECRET_KEY})
        self.faults = Faults(**faults)
        self.requests: list[Recorded] = []
        self._lock = threading.Lock()
        self._seed = seed
        self._rng = random.Random(seed)
        self._bucket = _bucket(self.faults)

    # -- lifecycle (LocalService) ----------------------------------------------------------

    thread_name = "fake-comprehend"

    def make_server(self) -> _Server:
        server = _Server(("127.0.0.1", 0), _Handler)
        server.fake = self
        return server

    # -- inspection ---------------------------------------------------------------------

    def reset(self, **faults: Any) -> None:
        """Forget the recorded requests, set new faults, restart the random sequence."""
        with self._lock:
            self.requests.clear()
            self.faults = Faults(**faults)
            self._rng = random.Random(self._seed)
            self._bucket = _bucket(self.faults)

    def answered(self) -> list[Recorded]:
        """The requests answered with results (status 200)."""
        with self._lock:
            return [r for r in self.requests if r.status == 200]

    def count(self, error: str | None = None) -> int:
        """Requests received, or those answered with the error ``error``."""
        with self._lock:
            return sum(1 for r in self.requests if error is None or r.error == error)

    # -- the service --------------------------------------------------------------------

    def handle(self, headers: Mapping[str, str], body: bytes) -> tuple[int, dict[str, Any]]:
        """Answer one request: (status, JSON body). Records it."""
        target = headers.get("x-amz-target", "")
        language: str | None = None
        documents: tuple[str, ...] = ()
        region = scope_region(headers.get("authorization", ""))
        try:
            self._check_protocol(headers, body)
            request = _decode(body)
            language = request.get("LanguageCode")
            documents = tuple(d for d in request.get("TextList") or () if isinstance(d, str))
            self._inject_faults()
            answer = self._answer(request)
        except ServiceError as exc:
            self._record(Recorded(target, language, documents, region, exc.status, exc.kind))
            return exc.status, {"__type": exc.kind, "message": exc.message}
        self._record(Recorded(target, language, documents, region, 200, None))
        return 200, answer

    def _record(self, recorded: Recorded) -> None:
        with self._lock:
            self.requests.append(recorded)

    def _check_protocol(self, headers: Mapping[str, str], body: bytes) -> None:
        if headers.get("x-amz-target") != TARGET_PREFIX + OPERATION:
            raise ServiceError(
                400, "UnknownOperationException", f"unknown target {headers.get('x-amz-target')}"
            )
        if headers.get("content-type", "").split(";")[0] != CONTENT_TYPE:
            raise ServiceError(400, "SerializationException", "expected " + CONTENT_TYPE)
        problem = check_signature("POST", headers, body, self.credentials)
        if problem is not None:
            raise ServiceError(400 if problem[0] != "AccessDeniedException" else 403, *problem)

    def _inject_faults(self) -> None:
        with self._lock:
            faults = self.faults
            if self._bucket is not None and not self._bucket.take():
                raise ServiceError(400, "ThrottlingException", "Rate exceeded")
            step: str | int = faults.script.pop(0) if faults.script else OK
            if step == OK and faults.throttle_rate > 0:
                step = THROTTLE if self._rng.random() < faults.throttle_rate else OK
        if faults.latency:
            time.sleep(faults.latency)
        if step == THROTTLE:
            raise ServiceError(400, "ThrottlingException", "Rate exceeded")
        if isinstance(step, int):
            kind = "ServiceUnavailableException" if step == 503 else "InternalServerException"
            raise ServiceError(step, kind, f"injected HTTP {step}")

    def _answer(self, request: Mapping[str, Any]) -> dict[str, Any]:
        documents, language = _validate(request)
        results: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        for index, text in enumerate(documents):
            if self.faults.error_marker and self.faults.error_marker in text:
                errors.append(
                    {
                        "Index": index,
                        "ErrorCode": "INTERNAL_SERVER_ERROR",
                        "ErrorMessage": "injected per-document failure",
                    }
                )
                continue
            verdict = model(text, language)
            results.append(
                {"Index": index, "Sentiment": verdict.label, "SentimentScore": verdict.scores}
            )
        return {"ResultList": results, "ErrorList": errors}


def _bucket(faults: Faults) -> TokenBucket | None:
    if faults.quota <= 0:
        return None
    return TokenBucket(faults.quota, faults.quota if faults.burst is None else faults.burst)


def _decode(body: bytes) -> dict[str, Any]:
    """The JSON request body (strict UTF-8)."""
    try:
        request = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ServiceError(400, "SerializationException", f"malformed JSON: {exc}") from exc
    if not isinstance(request, dict):
        raise ServiceError(400, "SerializationException", "expected a JSON object")
    return request


def _validate(request: Mapping[str, Any]) -> tuple[list[str], str]:
    """The documents and language of a valid request, or the service's error."""
    documents = request.get("TextList")
    language = request.get("LanguageCode")
    if not isinstance(documents, list) or not documents:
        raise ServiceError(400, "InvalidRequestException", "TextList must hold 1 to 25 documents")
    if len(documents) > MAX_DOCUMENTS:
        raise ServiceError(
            400,
            "BatchSizeLimitExceededException",
            f"The number of documents in the request exceeds the limit of {MAX_DOCUMENTS}.",
        )
    if not isinstance(language, str) or language not in LANGUAGES:
        raise ServiceError(
            400, "UnsupportedLanguageException", f"Unsupported language code: {language!r}"
        )
    for document in documents:
        _validate_document(document)
    return documents, language


def _validate_document(document: object) -> None:
    if not isinstance(document, str) or not document:
        raise ServiceError(400, "InvalidRequestException", "documents must be non-empty strings")
    try:
        size = len(document.encode("utf-8"))
    except UnicodeEncodeError as exc:
        raise ServiceError(400, "InvalidRequestException", "document is not valid UTF-8") from exc
    if size > MAX_DOCUMENT_BYTES:
        raise ServiceError(
            400,
            "TextSizeLimitExceededException",
            f"Input text size exceeds limit. Max length of request text allowed is "
            f"{MAX_DOCUMENT_BYTES} bytes while in this request the text size is {size} bytes",
        )


def check_signature(
    method: str, headers: Mapping[str, str], body: bytes, credentials: Mapping[str, str]
) -> tuple[str, str] | None:
    """None when the request carries a valid SigV4 signature for the comprehend service
    by a known key, else the service's (__type, message)."""
    return check_sigv4(method, "/", headers, body, credentials, "comprehend", None)


# -- HTTP -----------------------------------------------------------------------------------


class _Server(QuietServer):
    fake: FakeComprehend


class _Handler(AWSHandler):
    server: _Server

    def do_POST(self) -> None:
        headers, body = self.read_request()
        status, answer = self.server.fake.handle(headers, body)
        self.reply(status, {"Content-Type": CONTENT_TYPE}, json.dumps(answer).encode(), body)


def main(argv: Iterable[str] | None = None) -> int:
    """Serve until stdin closes (or Ctrl-C), printing the URL on the first line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added per request")
    parser.add_argument("--throttle-rate", type=float, default=0.0, help="fraction throttled")
    parser.add_argument("--quota", type=float, default=0.0, help="requests/s (0: none)")
    parser.add_argument("--burst", type=float, default=None, help="bucket size (default: quota)")
    args = parser.parse_args(list(argv) if argv is not None else None)
    with FakeComprehend(
        latency=args.latency, throttle_rate=args.throttle_rate, quota=args.quota, burst=args.burst
    ) as fake:
        print(fake.url, flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            sys.stdin.read()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
