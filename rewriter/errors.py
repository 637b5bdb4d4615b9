"""The rewriter's exceptions (mapped to MySQL errors by proxy.errors)."""

from __future__ import annotations


class RewriterError(Exception):
    """Root of the rewriter's errors."""


class PlanError(RewriterError):
    """A statement's ML calls cannot be evaluated as written; ``code`` is the MySQL error
    number the client should see (1235 ER_NOT_SUPPORTED_YET unless said otherwise)."""

    def __init__(self, message: str, code: int = 1235) -> None:
        super().__init__(message)
        self.code = code
