"""proxy.ml.answers.typed_literal: a built-in's labels written once, the same text as
written each time; anything else written each time."""

from __future__ import annotations

import pytest

from ml_backends.sentiment import Sentiment
from proxy.ml import answers
from proxy.ml.answers import typed_literal
from rewriter.functions import BUILTINS, MLFunction

LABELS = ["POSITIVE", "NEGATIVE", "NEUTRAL", "MIXED"]


def written(function: MLFunction, answer: object) -> str:
    """The literal as the proxy wrote it before the memo (its own formula)."""
    return f"CAST(NULLIF({answers.literal(function, answer)}, NULL) AS {function.cast_type})"


@pytest.mark.parametrize("name", sorted(BUILTINS))
@pytest.mark.parametrize("label", LABELS)
def test_a_label_is_written_the_same_each_time(name: str, label: str) -> None:
    function = BUILTINS[name]
    for confidence in (0.25, 0.75, 0.25):  # the confidence's function: never memoised
        answer = Sentiment(label, confidence)
        assert typed_literal(function, answer) == written(function, answer)


def test_the_memo_is_bounded_and_keeps_functions_apart() -> None:
    label, confidence = BUILTINS.values()
    assert label.output == "label" and confidence.output != "label"
    for n in range(answers._LABEL_LITERALS_MAX * 2):  # labels no model may give: still bounded
        answer = Sentiment(f"L{n}", 0.5)
        assert typed_literal(label, answer) == written(label, answer)
        assert len(answers._LABEL_LITERALS) <= answers._LABEL_LITERALS_MAX
    assert typed_literal(confidence, Sentiment("L1", 0.5)) == written(
        confidence, Sentiment("L1", 0.5)
    )
    assert typed_literal(label, None) == written(label, None)
