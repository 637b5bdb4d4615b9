"""Backends by name: tables of import paths, imported only when chosen.

``local``, ``aws`` and ``python:package.module:function`` select the Comprehend backend;
an unknown name fails with the list of known ones.

Alias functions (CREATE FUNCTION ... ALIAS) choose their backend by a target string, which
only the operator writes (ml_backends.targets resolves an alias's name to one):

    kind       target                            backend
    sagemaker  endpoint-name                     SageMakerBackend: InvokeEndpoint via boto3
    sagemaker  http(s)://host:port[/path]        SageMakerHTTPBackend: POST <url>/invocations
    sagemaker  python:package.module:function    PythonCallableBackend: whole batches
    bedrock    model-id, or a model ARN          BedrockBackend: InvokeModel via boto3
    bedrock    openai+http(s)://host:port/v1     OpenAIChatBackend: <url>/chat/completions
    bedrock    python:package.module:function    PythonCallableBackend: whole batches

boto3 is imported only when an AWS backend is built.
"""

from __future__ import annotations

import importlib
import re
from typing import Any

from ml_backends.base import Backend
from ml_backends.errors import BackendNotFound
from ml_backends.pooled import MAX_CONCURRENCY
from ml_backends.python_callable import PREFIX, PythonCallableBackend

SENTIMENT_BACKENDS = {
    "local": "ml_backends.local:LocalSentimentBackend",
    "aws": "ml_backends.aws.comprehend:ComprehendBackend",
}

#: Alias backends by target form (see ``target_form``).
ALIAS_BACKENDS = {
    "sagemaker": "ml_backends.aws.sagemaker:SageMakerBackend",
    "sagemaker-http": "ml_backends.endpoints.sagemaker_http:SageMakerHTTPBackend",
    "bedrock": "ml_backends.aws.bedrock:BedrockBackend",
    "openai": "ml_backends.endpoints.openai_chat:OpenAIChatBackend",
}

#: The target forms each alias kind accepts, for error messages.
TARGET_FORMS = {
    "sagemaker": (
        "an endpoint name",
        "http(s)://host:port[/path]",
        "python:package.module:function",
    ),
    "bedrock": (
        "a model id or model ARN",
        "openai+http(s)://host:port/v1",
        "python:package.module:function",
    ),
}

#: Inputs per call for python: targets when the function sets no MAX_BATCH_SIZE.
DEFAULT_PYTHON_BATCH_SIZE = 10_000

_ENDPOINT_NAME = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9])*")  # SageMaker's own pattern
_MODEL_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/-]*")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")


def _import(path: str) -> Any:
    module_name, _, attribute = path.partition(":")
    return getattr(importlib.import_module(module_name), attribute)


def sentiment_backend(name: str, **options: Any) -> Backend[Any]:
    """Build the Comprehend-style backend called ``name``."""
    if name.startswith(PREFIX):
        return PythonCallableBackend(name)
    path = SENTIMENT_BACKENDS.get(name)
    if path is None:
        known = ", ".join([*SENTIMENT_BACKENDS, "python:package.module:function"])
        raise BackendNotFound(f"unknown comprehend backend {name!r}; known: {known}")
    backend: Backend[Any] = _import(path)(**options)
    return backend


def target_form(kind: str, target: str) -> str:
    """Which backend serves ``target`` for an alias of ``kind`` (``sagemaker`` or
    ``bedrock``): a key of ALIAS_BACKENDS, or ``python``.

    >>> target_form("bedrock", "openai+http://127.0.0.1:8080/v1")
    'openai'
    """
    forms = TARGET_FORMS.get(kind)
    if forms is None:
        raise BackendNotFound(f"unknown alias kind {kind!r}; known: {', '.join(TARGET_FORMS)}")
    if target.startswith(PREFIX):
        return "python"
    if kind == "sagemaker" and target.startswith(("http://", "https://")):
        return "sagemaker-http"
    if kind == "bedrock" and target.startswith(("openai+http://", "openai+https://")):
        return "openai"
    plain = _ENDPOINT_NAME if kind == "sagemaker" else _MODEL_ID
    if plain.fullmatch(target) and not _SCHEME.match(target):
        return kind
    raise BackendNotFound(f"unknown {kind} target {target!r}; accepted forms: {'; '.join(forms)}")


def alias_backend(
    kind: str,
    target: str,
    *,
    model_id: str | None = None,
    max_batch_size: int | None = None,
    content_type: str | None = None,
    accept: str | None = None,
    timeout: float | None = None,
    region: str | None = None,
    endpoint_url: str | None = None,
    max_concurrency: int = MAX_CONCURRENCY,
    max_answer_bytes: int | None = None,
    form: str | None = None,
) -> Backend[Any]:
    """The backend for an alias function (see the table in the module docstring).

    ``kind`` is ``sagemaker`` or ``bedrock``; ``target`` is where requests go (for AWS,
    the ENDPOINT NAME or MODEL ID itself). ``model_id`` is the function's MODEL ID, the
    ``model`` an OpenAI-compatible server is asked for (required there). Options left
    None take each backend's default; ``timeout`` is in seconds; ``region`` and
    ``endpoint_url`` apply to AWS targets, ``content_type`` to Bedrock, ``accept`` to
    both AWS services; ``max_concurrency`` sizes the backend's thread pool (at least the
    engine's max_in_flight); ``max_answer_bytes`` bounds one response body
    (ml_backends.bounded_read; python: targets answer in-process). ``form`` (see
    ml_backends.targets) says how to read ``target``; left None it is read from
    ``target`` itself, which only an operator's target may be."""
    form = form or target_form(kind, target)
    if form == "python":
        return PythonCallableBackend(target, max_batch_size or DEFAULT_PYTHON_BATCH_SIZE)
    if form == "openai" and not model_id:
        raise BackendNotFound(f"{target!r} needs the function's MODEL ID as the model to ask for")
    bound = {"max_answer_bytes": max_answer_bytes}
    aws = {"region": region, "endpoint_url": endpoint_url, "read_timeout": timeout, **bound}
    options: dict[str, dict[str, Any]] = {
        "sagemaker": {"max_batch_size": max_batch_size, "accept": accept, **aws},
        "sagemaker-http": {"max_batch_size": max_batch_size, "timeout": timeout, **bound},
        "bedrock": {"content_type": content_type, "accept": accept, **aws},
        "openai": {"model_id": model_id, "timeout": timeout, **bound},
    }
    chosen = {name: value for name, value in options[form].items() if value is not None}
    if form != "sagemaker-http":
        chosen["max_concurrency"] = max_concurrency
    backend: Backend[Any] = _import(ALIAS_BACKENDS[form])(target, **chosen)
    return backend
