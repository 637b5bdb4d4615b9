"""A python: backend whose behaviour a test switches: answer, fail, be unavailable, or
throttle.

Answers are deterministic (label from the text's length, confidence 0.5 + length/1000)
and every batch is recorded, so tests can count backend calls.
"""

from __future__ import annotations

from ml_backends.errors import RetryableError, Throttled

LABELS = ("POSITIVE", "NEGATIVE", "NEUTRAL", "MIXED")

#: "ok", "fail" (an exception in the model), "unavailable" (a retryable failure, as a 503)
#: or "throttle" (always throttled).
mode = "ok"
#: With mode "ok": this many batches are answered, then every later one fails.
fail_after: int | None = None
batches: list[list[tuple[str, str]]] = []

#: The --comprehend-backend setting of a proxy answered by this module.
SETTING = "python:tests.support.switchable_backend:sentiment"


def reset() -> None:
    """Answer again, and forget the batches seen so far."""
    global mode, fail_after
    mode, fail_after = "ok", None
    batches.clear()


def answer(text: str) -> tuple[str, float]:
    return LABELS[len(text) % 4], 0.5 + (len(text) % 500) / 1000


def sentiment(inputs: list[tuple[str, str]]) -> list[tuple[str, float]]:
    batches.append(list(inputs))
    if mode == "fail" or (fail_after is not None and len(batches) > fail_after):
        raise RuntimeError("model crashed")
    if mode == "throttle":
        raise Throttled("slow down")
    if mode == "unavailable":
        raise RetryableError("HTTP 503: service unavailable")
    return [answer(text) for text, _ in inputs]
