"""Exceptions of the inference side.

    MLBackendError
    ├── BackendNotFound       an unknown backend name, or its package is not installed
    ├── RetryableError        worth another attempt: throttling, 5xx, timeouts
    │   └── Throttled
    └── InferenceFailed       a request failed for good (after retries, or not retryable)

The proxy maps these to MySQL errors in one place (proxy.errors).
"""

from __future__ import annotations


class MLBackendError(Exception):
    """Root of every error raised by ml_backends."""


class BackendNotFound(MLBackendError):
    pass


class RetryableError(MLBackendError):
    """A failure another attempt may fix."""


class Throttled(RetryableError):
    pass


class InferenceFailed(MLBackendError):
    """A request failed for good; the message says why, for the SQL user."""
