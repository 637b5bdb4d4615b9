"""``python:package.module:function``: an in-process callable as a backend.

The callable takes a list of input tuples and returns a list of answers in the same order
(for sentiment: (label, confidence) pairs). It may be a plain function (run in a worker
thread, so it may block) or a coroutine function.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from ml_backends.base import Arguments, Backend, Outcome
from ml_backends.errors import BackendNotFound, InferenceFailed, MLBackendError

PREFIX = "python:"


def add_import_dir(directory: str) -> None:
    """Put ``directory`` (made absolute: a later chdir changes nothing) first on
    sys.path, so ``python:`` targets are found there as ``python -m`` finds modules in
    the working directory (uvicorn's ``--app-dir`` does the same)."""
    path = os.path.abspath(directory)
    if path not in sys.path:
        sys.path.insert(0, path)


def load_callable(spec: str) -> Callable[..., Any]:
    """Import ``module:function`` (the ``python:`` prefix is optional)."""
    target = spec.removeprefix(PREFIX)
    module_name, sep, attribute = target.partition(":")
    if not sep or not module_name or not attribute:
        raise BackendNotFound(f"expected python:package.module:function, got {spec!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise BackendNotFound(f"cannot import {module_name!r} for backend {spec!r}: {exc}") from exc
    except BaseException as exc:  # an import that exits fails this build only
        raise BackendNotFound(
            f"importing {module_name!r} for backend {spec!r} raised {type(exc).__name__}"
        ) from exc
    function: Callable[..., Any] | None = getattr(module, attribute, None)
    if not callable(function):
        raise BackendNotFound(f"{module_name!r} has no callable {attribute!r}")
    return function


def _being_cancelled() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


class PythonCallableBackend(Backend[Arguments]):
    """Calls a Python function with each batch."""

    def __init__(self, spec: str, max_batch_size: int = 25) -> None:
        self.function = load_callable(spec)
        self.name = spec
        self.max_batch_size = max_batch_size

    async def infer(self, batch: Sequence[Arguments]) -> list[Outcome]:
        inputs = [tuple(item) for item in batch]
        try:
            if inspect.iscoroutinefunction(self.function):
                answers = await self.function(inputs)
            else:
                answers = await asyncio.to_thread(self.function, inputs)
        except MLBackendError:
            raise
        except asyncio.CancelledError:
            if _being_cancelled():
                raise  # the statement was cancelled (KILL QUERY, a timeout): not the model
            raise InferenceFailed(f"{self.name} raised CancelledError") from None
        except BaseException as exc:  # whatever the model raises fails its statement
            # SystemExit, KeyboardInterrupt and GeneratorExit too: a callable's exit() must
            # not stop the proxy for every client (issue 10, item 1).
            raise InferenceFailed(f"{self.name} raised {type(exc).__name__}: {exc}") from exc
        if not isinstance(answers, list | tuple):
            raise InferenceFailed(f"{self.name} returned {type(answers).__name__}, not a list")
        return list(answers)
