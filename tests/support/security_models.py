"""Operator-side ``python:`` targets for tests/security/test_security_aliases.py: models that
misbehave as badly as Python allows (exit, interrupt), and one that counts its calls, so a
test can tell that SQL never reached a callable it did not map."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

#: Every batch ``counted`` received, in order (the proxy runs in the test's process).
CALLS: list[list[tuple[Any, ...]]] = []


def counted(batch: Sequence[tuple[Any, ...]]) -> list[str]:
    CALLS.append(list(batch))
    return ["ok" for _ in batch]


def exits(batch: Sequence[tuple[Any, ...]]) -> list[str]:
    sys.exit(3)


def interrupts(batch: Sequence[tuple[Any, ...]]) -> list[str]:
    raise KeyboardInterrupt


async def exits_async(batch: Sequence[tuple[Any, ...]]) -> list[str]:
    raise SystemExit("model said exit")


def generator_exit(batch: Sequence[tuple[Any, ...]]) -> list[str]:
    raise GeneratorExit


#: Every batch ``sentiment`` received (the comprehend backend of the security tests).
SENTIMENT_CALLS: list[list[tuple[Any, ...]]] = []


def sentiment(batch: Sequence[tuple[Any, ...]]) -> list[tuple[str, float]]:
    SENTIMENT_CALLS.append(list(batch))
    return [("NEUTRAL", 0.5) for _ in batch]
