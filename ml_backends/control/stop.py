"""Stopping a caller's requests the moment it is stopped, before the cancellation lands.

A caller that stops a call to ``InferenceEngine.infer`` (a KILL QUERY of its statement)
cancels the task the call runs in; the engine's request tasks are cancelled in turn only
when that task next runs. A request task that was already due to run in the same turn of
the event loop (its slot in the in-flight bound just freed) would still send its request.
The engine asks ``raise_if_stopped`` just before each request, so none starts once the
caller's ``stopped`` says so: request tasks see the caller's context (asyncio copies a
task's context into the tasks it creates).
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

_STOPPED: contextvars.ContextVar[Callable[[], bool] | None] = contextvars.ContextVar(
    "mlproxy_inference_stopped", default=None
)


def start_stoppable(work: Coroutine[Any, Any, T], stopped: Callable[[], bool]) -> asyncio.Task[T]:
    """Run ``work`` in a task of its own whose requests never start once ``stopped()``."""
    context = contextvars.copy_context()
    context.run(_STOPPED.set, stopped)
    return asyncio.get_running_loop().create_task(work, context=context)


def raise_if_stopped() -> None:
    """Cancel the current request task if its caller has been stopped."""
    stopped = _STOPPED.get()
    if stopped is not None and stopped():
        raise asyncio.CancelledError
