"""Exceptions of the inference side.

    MLBackendError
    ├── BackendNotFound       an unknown backend name, or its package is not installed
    │   └── InvalidTargetName an alias names neither a mapped endpoint nor an AWS name
    ├── RetryableError        worth another attempt: throttling, 5xx, timeouts
    │   └── Throttled
    └── InferenceFailed       a request failed for good (after retries, or not retryable)
        └── BudgetExhausted   the statement's time budget ran out before every answer came

The proxy maps these to MySQL errors in one place (proxy.errors).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ml_backends.control.budget import TimeBudget


class MLBackendError(Exception):
    """Root of every error raised by ml_backends."""


class BackendNotFound(MLBackendError):
    pass


class InvalidTargetName(BackendNotFound):
    """An alias's ENDPOINT NAME / MODEL ID is neither in the endpoint map nor a valid
    AWS name (see ml_backends.targets)."""


class RetryableError(MLBackendError):
    """A failure another attempt may fix."""


class Throttled(RetryableError):
    pass


class InferenceFailed(MLBackendError):
    """A request failed for good; the message says why, for the SQL user."""


class BudgetExhausted(InferenceFailed):
    """The statement's time budget (ml_backends.control.budget) ran out while requests were still
    waiting, throttled or unanswered; ``budget`` says which setting it was."""

    def __init__(self, message: str, budget: TimeBudget) -> None:
        super().__init__(message)
        self.budget = budget
