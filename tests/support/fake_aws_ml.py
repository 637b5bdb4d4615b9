"""A local Amazon SageMaker Runtime and Amazon Bedrock Runtime (plus an OpenAI-compatible
chat server) in one HTTP service, for tests of the alias backends through real clients.

Routes, in the REST protocols of botocore's service models (sagemaker-runtime
2017-05-13 and bedrock-runtime 2023-09-30, both ``rest-json``):

    POST /endpoints/{EndpointName}/invocations   InvokeEndpoint, SigV4 signing name sagemaker
    POST /model/{modelId}/invoke                 InvokeModel, SigV4 signing name bedrock
    POST /v1/chat/completions                    OpenAI chat completions (optional bearer key)

Every AWS request must carry a valid SigV4 signature by a known key, scoped to the
route's service and to the fake's region. Errors come in the services' shape: the
``x-amzn-ErrorType`` header names the error, the JSON body holds ``message`` (and, for
SageMaker's ModelError, OriginalStatusCode/OriginalMessage/LogStreamArn).

Models are Python callables: a SageMaker endpoint's gets the parsed CSV rows (lists of
str) and returns one value per row (or the raw body as bytes); a Bedrock model's gets the
body bytes and returns the answer body; the chat model gets the request JSON and returns
the assistant's text. Faults (``Faults``): latency, throttling by fraction or count
(SageMaker as HTTP 429, as its HTTP 400 ``{"message": null}`` quirk, or alternating),
a count of 5xx answers, and a per-request script. Every request is recorded, and the
peak number handled at once is kept.

    with FakeAWSML() as fake:
        fake.add_endpoint("churn", lambda rows: [r[0] for r in rows])
        fake.reset(throttle_count=2)
        ... boto3 client with endpoint_url=fake.url ...
"""

from __future__ import annotations

import csv
import functools
import io
import itertools
import json
import random
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

from tests.support.fake_comprehend import ACCESS_KEY, SECRET_KEY
from tests.support.local_service import AWSHandler, LocalService, QuietServer
from tests.support.sigv4 import check_sigv4, scope_region

__all__ = ["ACCESS_KEY", "SECRET_KEY", "FakeAWSML", "Faults", "Recorded", "check_sigv4"]

REGION = "us-east-1"
ACCOUNT = "123456789012"
#: SageMaker's request payload limit (6 MB), enforced as the service does.
PAYLOAD_LIMIT = 6 * 1024 * 1024

SageMakerModel = Callable[[list[list[str]]], "Sequence[object] | bytes"]
BedrockModel = Callable[[bytes], "bytes | str"]
ChatModel = Callable[[dict[str, Any]], str]

#: Script steps besides HTTP status codes (5xx) and (status, error code) pairs.
OK = "ok"
THROTTLE = "throttle"  # the service's usual throttling answer (HTTP 429)
THROTTLE_400 = "throttle-400"  # SageMaker: HTTP 400, ThrottlingException, {"message": null}
NULL_400 = "null-400"  # the same quirk without an error type header
Step = str | int | tuple[int, str]


@dataclass
class Endpoint:
    """A SageMaker endpoint: its model and the content type it answers in."""

    model: SageMakerModel
    content_type: str = "text/csv"


@dataclass
class BedrockModelSpec:
    model: BedrockModel
    content_type: str = "application/json"


@dataclass
class Faults:
    """What to get wrong, in this order: script, throttle_count, server_errors,
    throttle_rate; latency applies to every request."""

    latency: float = 0.0
    throttle_rate: float = 0.0
    throttle_count: int = 0
    #: How SageMaker throttles: "429", "400-null" (its quirk) or "alternate".
    throttle_style: str = "429"
    server_errors: int = 0
    script: list[Step] = field(default_factory=list)


@dataclass(frozen=True)
class Recorded:
    """One request as the fake received it, and how it answered."""

    service: str  # sagemaker, bedrock or openai
    name: str  # the endpoint name or model id ("" for openai)
    path: str
    headers: Mapping[str, str]
    body: bytes
    region: str | None
    status: int
    error: str | None


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)


class ServiceError(Exception):
    """An error answer in the AWS rest-json shape (or OpenAI's, for that route)."""

    def __init__(self, status: int, code: str, message: str | None, **fields: Any) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.fields = status, code, message, fields
        self.typed = True  # False: no x-amzn-ErrorType header (SageMaker's bare 400)

    def reply(self, service: str) -> Reply:
        if service == "openai":
            error = {"message": self.message, "type": self.code}
            return _json_reply(self.status, {"error": error})
        headers = {"x-amzn-ErrorType": f"{self.code}:http://internal.amazon.com/coral/"}
        body = {"message": self.message, **self.fields}
        return _json_reply(self.status, body, headers if self.typed else {})


def _json_reply(status: int, body: object, headers: Mapping[str, str] | None = None) -> Reply:
    return Reply(
        status, json.dumps(body).encode(), {"Content-Type": "application/json", **(headers or {})}
    )


class FakeAWSML(LocalService):
    """The server; thread-safe; models and faults may change while it runs."""

    def __init__(
        self,
        *,
        region: str = REGION,
        credentials: Mapping[str, str] | None = None,
        seed: int = 0,
        **faults: Any,
    ) -> None:
        super().__init__()
        self.region = region
        self.credentials = dict(credentials or {ACCESS_KEY: SECRET_KEY})
        self.endpoints: dict[str, Endpoint] = {}
        self.models: dict[str, BedrockModelSpec] = {}
        self.chat_model: ChatModel = lambda request: "ok"
        self.openai_api_key: str | None = None
        self.payload_limit = PAYLOAD_LIMIT
        self.faults = Faults(**faults)
        self.requests: list[Recorded] = []
        self.peak_in_flight = 0
        self._in_flight = 0
        self._lock = threading.Lock()
        self._seed = seed
        self._rng = random.Random(seed)
        self._ids = itertools.count(1)

    # -- lifecycle (LocalService) ----------------------------------------------------------

    thread_name = "fake-aws-ml"

    def make_server(self) -> _Server:
        server = _Server(("127.0.0.1", 0), _Handler)
        server.fake = self
        return server

    @property
    def openai_target(self) -> str:
        """The alias target of the chat route."""
        return f"openai+{self.url}/v1"

    # -- configuration and inspection ---------------------------------------------------

    def add_endpoint(
        self, name: str, model: SageMakerModel, content_type: str = "text/csv"
    ) -> None:
        self.endpoints[name] = Endpoint(model, content_type)

    def add_model(
        self, model_id: str, model: BedrockModel, content_type: str = "application/json"
    ) -> None:
        self.models[model_id] = BedrockModelSpec(model, content_type)

    def reset(self, **faults: Any) -> None:
        """Forget the recorded requests and the peak, set new faults, restart the random
        sequence (models stay)."""
        with self._lock:
            self.requests.clear()
            self.peak_in_flight = 0
            self.faults = Faults(**faults)
            self._rng = random.Random(self._seed)

    def count(self, error: str | None = None, *, status: int | None = None) -> int:
        """Requests received, or those answered with error code ``error`` / ``status``."""
        with self._lock:
            return sum(
                1
                for r in self.requests
                if (error is None or r.error == error) and (status is None or r.status == status)
            )

    def answered(self) -> list[Recorded]:
        """The requests answered with results (status 200), in arrival order."""
        with self._lock:
            return [r for r in self.requests if r.status == 200]

    # -- the services -------------------------------------------------------------------

    def handle(self, method: str, raw_path: str, headers: Mapping[str, str], body: bytes) -> Reply:
        """Route, check, inject faults, answer, record."""
        service, name, answer = _route(self, raw_path)
        region = scope_region(headers.get("authorization", ""))
        with self._lock:
            self._in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self._in_flight)
        try:
            self._check_auth(service, method, raw_path, headers, body)
            self._inject_faults(service)
            reply = answer(headers, body)
            error = None
        except ServiceError as exc:
            reply, error = exc.reply(service), exc.code
        finally:
            with self._lock:
                self._in_flight -= 1
        recorded = Recorded(
            service, name, raw_path, dict(headers), body, region, reply.status, error
        )
        with self._lock:
            self.requests.append(recorded)
        return reply

    def _check_auth(
        self, service: str, method: str, raw_path: str, headers: Mapping[str, str], body: bytes
    ) -> None:
        if service == "openai":
            if (
                self.openai_api_key
                and headers.get("authorization") != f"Bearer {self.openai_api_key}"
            ):
                raise ServiceError(401, "invalid_api_key", "Incorrect API key provided")
            return
        problem = check_sigv4(
            method, raw_path, headers, body, self.credentials, service, self.region
        )
        if problem is not None:
            raise ServiceError(403, *problem)

    def _inject_faults(self, service: str) -> None:
        step = self._next_step()
        if self.faults.latency:
            time.sleep(self.faults.latency)
        if step == OK:
            return
        if step in (THROTTLE, THROTTLE_400, NULL_400):
            raise _throttled(service, str(step))
        if isinstance(step, tuple):
            raise ServiceError(step[0], step[1], f"injected {step[1]}")
        status = int(step)
        code = _SERVER_ERRORS[service].get(status, "InternalFailure")
        raise ServiceError(status, code, f"injected HTTP {status}")

    def _next_step(self) -> Step:
        """The fault for this request (see Faults for the order)."""
        with self._lock:
            faults = self.faults
            if faults.script:
                return faults.script.pop(0)
            if faults.throttle_count > 0:
                faults.throttle_count -= 1
                return self._throttle_step()
            if faults.server_errors > 0:
                faults.server_errors -= 1
                return 500
            if faults.throttle_rate and self._rng.random() < faults.throttle_rate:
                return self._throttle_step()
            return OK

    def _throttle_step(self) -> Step:
        style = self.faults.throttle_style
        if style == "alternate":
            return THROTTLE_400 if self._rng.random() < 0.5 else THROTTLE
        return THROTTLE_400 if style == "400-null" else THROTTLE

    def invoke_endpoint(self, name: str, headers: Mapping[str, str], body: bytes) -> Reply:
        """SageMaker InvokeEndpoint: CSV rows in, the model's answers out."""
        endpoint = self.endpoints.get(name)
        if endpoint is None:
            raise ServiceError(
                400, "ValidationError", f"Endpoint {name} of account {ACCOUNT} not found."
            )
        if len(body) > self.payload_limit:
            raise ServiceError(
                413, "ValidationError", f"Request payload of {len(body)} bytes exceeds the limit"
            )
        if headers.get("content-type") != "text/csv":
            raise _model_error(name, 415, f"unsupported content type {headers.get('content-type')}")
        rows = list(csv.reader(io.StringIO(body.decode("utf-8"), newline="")))
        try:
            answers = endpoint.model(rows)
        except Exception as exc:  # the container failed: SageMaker says ModelError
            raise _model_error(name, 500, f"{type(exc).__name__}: {exc}") from exc
        payload = answers if isinstance(answers, bytes) else _encode(answers, endpoint.content_type)
        return Reply(
            200,
            payload,
            {
                "Content-Type": endpoint.content_type,
                "x-Amzn-Invoked-Production-Variant": "AllTraffic",
            },
        )

    def invoke_model(self, model_id: str, headers: Mapping[str, str], body: bytes) -> Reply:
        """Bedrock InvokeModel: the body in, the model's body out."""
        spec = self.models.get(model_id)
        if spec is None:
            raise ServiceError(
                400, "ValidationException", "The provided model identifier is invalid."
            )
        try:
            answer = spec.model(body)
        except Exception as exc:  # Bedrock rejects bodies its model cannot read
            raise ServiceError(
                400, "ValidationException", f"Malformed input request: {exc}"
            ) from exc
        payload = answer.encode() if isinstance(answer, str) else answer
        return Reply(200, payload, {"Content-Type": spec.content_type})

    def chat_completions(self, headers: Mapping[str, str], body: bytes) -> Reply:
        """OpenAI chat/completions: a chat.completion object around the model's text."""
        try:
            request = json.loads(body)
        except ValueError as exc:
            raise ServiceError(400, "invalid_request_error", f"malformed JSON: {exc}") from exc
        if not isinstance(request, dict) or "model" not in request or "messages" not in request:
            raise ServiceError(400, "invalid_request_error", "'model' and 'messages' are required")
        content = self.chat_model(request)
        return _json_reply(
            200,
            {
                "id": f"chatcmpl-{next(self._ids)}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": request["model"],
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": content},
                        "finish_reason": "stop",
                    }
                ],
            },
        )


_SERVER_ERRORS = {
    "sagemaker": {500: "InternalFailure", 503: "ServiceUnavailable"},
    "bedrock": {500: "InternalServerException", 503: "ServiceUnavailableException"},
    "openai": {500: "server_error", 503: "server_error"},
}
_ROUTES = [
    (re.compile(r"/endpoints/([^/]+)/invocations"), "sagemaker"),
    (re.compile(r"/model/([^/]+)/invoke"), "bedrock"),
    (re.compile(r"/v1/chat/completions"), "openai"),
]


def _route(
    fake: FakeAWSML, raw_path: str
) -> tuple[str, str, Callable[[Mapping[str, str], bytes], Reply]]:
    """(service, endpoint name or model id, the answering function) for a request path."""
    path = urlsplit(raw_path).path
    for pattern, service in _ROUTES:
        match = pattern.fullmatch(path)
        if match is None:
            continue
        if service == "openai":
            return service, "", fake.chat_completions
        name = unquote(match[1])
        handler = fake.invoke_endpoint if service == "sagemaker" else fake.invoke_model
        return service, name, functools.partial(handler, name)

    def unknown(headers: Mapping[str, str], body: bytes) -> Reply:
        raise ServiceError(404, "UnknownOperationException", f"no route for {path}")

    return "unknown", "", unknown


def _throttled(service: str, step: str) -> ServiceError:
    if service == "openai":
        return ServiceError(429, "rate_limit_error", "Rate limit reached")
    if service == "bedrock":
        return ServiceError(
            429, "ThrottlingException", "Too many requests, please wait before trying again."
        )
    if step == THROTTLE:
        return ServiceError(429, "ThrottlingException", "Rate exceeded")
    error = ServiceError(400, "ThrottlingException", None)
    error.typed = step == THROTTLE_400
    return error


def _model_error(name: str, status: int, message: str) -> ServiceError:
    """SageMaker's ModelError (HTTP 424) for a container that answered ``status``."""
    kind = "client" if status < 500 else "server"
    return ServiceError(
        424,
        "ModelError",
        f'Received {kind} error ({status}) from primary with message "{message}". See the '
        f"endpoint's logs in account {ACCOUNT} for more information.",
        OriginalStatusCode=status,
        OriginalMessage=message,
        LogStreamArn=f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/sagemaker/Endpoints/{name}",
        ErrorCode="CLIENT_ERROR_FROM_MODEL" if status < 500 else "SERVER_ERROR_FROM_MODEL",
    )


def _encode(answers: Sequence[object], content_type: str) -> bytes:
    """A model's answers as the endpoint's response body: a JSON list, or CSV lines (a
    list or tuple answer is a row of several values)."""
    if "json" in content_type:
        return json.dumps(list(answers)).encode()
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for answer in answers:
        row = answer if isinstance(answer, list | tuple) else [answer]
        writer.writerow(["" if value is None else value for value in row])
    return out.getvalue().encode()


# -- HTTP -----------------------------------------------------------------------------------


class _Server(QuietServer):
    fake: FakeAWSML


class _Handler(AWSHandler):
    server: _Server

    def do_POST(self) -> None:
        headers, body = self.read_request()
        reply = self.server.fake.handle("POST", self.path, headers, body)
        self.reply(reply.status, reply.headers, reply.body, body)
