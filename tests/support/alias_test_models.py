"""Deterministic models for the endpoint-alias tests (``python:tests.support.alias_test_models:*``).

Each records the batches it was given, so tests can check how calls were batched.
"""

from __future__ import annotations

import json
import time
from decimal import Decimal
from typing import Any

#: Every batch each model received, in order (cleared by the tests that read it).
BATCHES: dict[str, list[list[tuple[Any, ...]]]] = {"score": [], "echo": [], "slow": []}


def score(rows: list[tuple[Any, ...]]) -> list[object]:
    """(a INT, b VARCHAR) -> a * 2 + len(b); NULL a answers NULL, NULL b counts 0."""
    BATCHES["score"].append(rows)
    return [None if a is None else a * 2 + len(b or "") for a, b in rows]


def other_score(rows: list[tuple[Any, ...]]) -> list[object]:
    """A different model behind another endpoint: a * 100."""
    return [None if a is None else a * 100 for a, _ in rows]


def typed(rows: list[tuple[Any, ...]]) -> list[object]:
    """Says which Python types the arguments arrived as."""
    return [",".join(type(v).__name__ for v in row) for row in rows]


def echo(rows: list[tuple[Any, ...]]) -> list[object]:
    """A chat model: answers a JSON body quoting the prompt (Bedrock-style, one text)."""
    BATCHES["echo"].append(rows)
    answers: list[object] = []
    for (body,) in rows:
        prompt = json.loads(body).get("prompt", "")
        answers.append(json.dumps({"completion": prompt.upper(), "stop_reason": "end"}))
    return answers


def slow(rows: list[tuple[Any, ...]]) -> list[object]:
    """Answers after half a second (timeouts)."""
    BATCHES["slow"].append(rows)
    time.sleep(0.5)
    return [Decimal(1) for _ in rows]
