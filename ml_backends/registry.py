"""Backends by name: a table of import paths, imported only when chosen.

``local``, ``aws`` and ``python:package.module:function`` select the Comprehend backend;
an unknown name fails with the list of known ones.
"""

from __future__ import annotations

import importlib
from typing import Any

from ml_backends.base import Backend
from ml_backends.errors import BackendNotFound
from ml_backends.python_callable import PREFIX, PythonCallableBackend

SENTIMENT_BACKENDS = {
    "local": "ml_backends.local:LocalSentimentBackend",
    "aws": "ml_backends.comprehend:ComprehendBackend",
}


def _import(path: str) -> Any:
    module_name, _, attribute = path.partition(":")
    return getattr(importlib.import_module(module_name), attribute)


def sentiment_backend(name: str, **options: Any) -> Backend:
    """Build the Comprehend-style backend called ``name``."""
    if name.startswith(PREFIX):
        return PythonCallableBackend(name)
    path = SENTIMENT_BACKENDS.get(name)
    if path is None:
        known = ", ".join([*SENTIMENT_BACKENDS, "python:package.module:function"])
        raise BackendNotFound(f"unknown comprehend backend {name!r}; known: {known}")
    backend: Backend = _import(path)(**options)
    return backend
