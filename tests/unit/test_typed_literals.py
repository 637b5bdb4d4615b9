"""proxy.ml.answers.typed_literal and encoded_typed_literal: a built-in's labels written
once, the same text (and bytes) as written each time; anything else written each time.
And a key row's language spellings, read once each."""

from __future__ import annotations

import pytest

from ml_backends.sentiment import Sentiment, SentimentInput, normalize_language
from proxy.errors import ErrorCode, MLStatementError
from proxy.ml import answers
from proxy.ml.answers import backend_input, encoded_typed_literal, typed_literal
from rewriter.charsets import client_charset
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


@pytest.mark.parametrize("codec", ["utf8mb4", "latin1", "cp1250", "sjis"])
@pytest.mark.parametrize("name", sorted(BUILTINS))
def test_encoded_literals_are_the_sessions_encoding_of_the_literal(codec: str, name: str) -> None:
    """encoded_typed_literal against its formula: the literal in the session's encoding,
    for labels, other answers and NULL (the memo keeps a label's ASCII bytes)."""
    charset = client_charset(codec)
    function = BUILTINS[name]
    for answer in [*(Sentiment(label, 0.5) for label in LABELS), Sentiment("ÉTÉ", 0.1), None]:
        for _ in range(2):  # written, then from the memo
            encoded = encoded_typed_literal(function, answer, charset.encode)
            assert encoded == charset.encode(written(function, answer))


def test_language_spellings_are_kept_bounded_and_read_as_normalize_language() -> None:
    """A key row's language: the code normalize_language gives its text, an unknown one
    refused (1210) each time it comes, and the spellings kept stay bounded."""
    function = BUILTINS["aws_comprehend_detect_sentiment"]
    for spelling in [b"en", b" EN ", b"zh-TW", b"zh-tw", b"pt", b"xx", b"\xff", b"en"] * 2:
        code = normalize_language(spelling.decode("utf-8", "replace"))
        if code is None:
            with pytest.raises(MLStatementError) as refused:
                backend_input(function, (b"text", spelling))
            assert refused.value.code == ErrorCode.WRONG_ARGUMENTS
        else:
            assert backend_input(function, (b"text", spelling)) == SentimentInput("text", code)
    for n in range(answers._LANGUAGE_CODES_MAX * 2):  # invented spellings: still bounded
        with pytest.raises(MLStatementError):
            backend_input(function, (b"text", b"x%d" % n))
        assert len(answers._LANGUAGE_CODES) <= answers._LANGUAGE_CODES_MAX
