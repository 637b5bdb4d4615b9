"""proxy.ml.answers.typed_literal and encoded_typed_literal: a built-in's labels written
once, the same text (and bytes) as written each time; anything else written each time;
for a MariaDB backend, no NULLIF where its CAST is nullable already (the server's own
metadata is the oracle in tests/integration/test_typed_literals_on_server.py). And a key
row's language spellings, read once each."""

from __future__ import annotations

import pytest

from ml_backends.sentiment import Sentiment, SentimentInput, normalize_language
from proxy.errors import ErrorCode, MLStatementError
from proxy.ml import answers
from proxy.ml.answers import backend_input, encoded_typed_literal, typed_literal
from rewriter.aliases import alias_function
from rewriter.charsets import client_charset
from rewriter.ddl import AliasFunction, parse_ml_ddl
from rewriter.functions import BUILTINS, MLFunction

LABELS = ["POSITIVE", "NEGATIVE", "NEUTRAL", "MIXED"]


#: The CAST targets whose result MariaDB marks nullable: the built-ins' (text, DOUBLE) and
#: an alias's text and floating-point types.
NULLABLE_ON_MARIADB = ("CHAR", "DOUBLE", "FLOAT")


def written(function: MLFunction, answer: object, mariadb: bool = False) -> str:
    """The literal as the proxy writes it without the memo (its own formula)."""
    value = answers.literal(function, answer)
    if mariadb and function.cast_type.startswith(NULLABLE_ON_MARIADB):
        return f"CAST({value} AS {function.cast_type})"
    return f"CAST(NULLIF({value}, NULL) AS {function.cast_type})"


@pytest.mark.parametrize("mariadb", [False, True])
@pytest.mark.parametrize("name", sorted(BUILTINS))
@pytest.mark.parametrize("label", LABELS)
def test_a_label_is_written_the_same_each_time(name: str, label: str, mariadb: bool) -> None:
    function = BUILTINS[name]
    for confidence in (0.25, 0.75, 0.25):  # the confidence's function: never memoised
        answer = Sentiment(label, confidence)
        assert typed_literal(function, answer, mariadb=mariadb) == written(
            function, answer, mariadb
        )


def test_the_memo_keeps_the_backends_apart() -> None:
    """A label written for one kind of backend is not the other's (both memoised)."""
    function, answer = BUILTINS["aws_comprehend_detect_sentiment"], Sentiment("MIXED", 0.5)
    for mariadb in (False, True, False, True):
        assert typed_literal(function, answer, mariadb=mariadb) == written(
            function, answer, mariadb
        )
    assert "NULLIF" in typed_literal(function, answer, mariadb=False)
    assert "NULLIF" not in typed_literal(function, answer, mariadb=True)


@pytest.mark.parametrize(
    "returns",
    [
        "INT",
        "BIGINT UNSIGNED",
        "DECIMAL(10,2)",
        "DOUBLE",
        "FLOAT",
        "CHAR(3)",
        "VARCHAR(5) CHARACTER SET latin1",
    ],
)
def test_an_aliass_answer_keeps_nullif_where_mariadb_casts_not_null(returns: str) -> None:
    """An alias's result type: NULLIF stays for SIGNED, UNSIGNED and DECIMAL targets
    (MariaDB's CAST to them is NOT NULL), on MySQL for all."""
    ddl = f"CREATE FUNCTION f (x TEXT) RETURNS {returns} ALIAS AWS_SAGEMAKER_INVOKE_ENDPOINT"
    definition = parse_ml_ddl(ddl + " ENDPOINT NAME 'e'")
    assert isinstance(definition, AliasFunction)
    function = alias_function(definition, "db")
    for mariadb in (False, True):
        assert typed_literal(function, "42", mariadb=mariadb) == written(function, "42", mariadb)


def test_the_memo_is_bounded_and_keeps_functions_apart() -> None:
    label, confidence = BUILTINS.values()
    assert label.output == "label" and confidence.output != "label"
    for n in range(answers._LABEL_LITERALS_MAX * 2):  # labels no model may give: still bounded
        answer = Sentiment(f"L{n}", 0.5)
        assert typed_literal(label, answer, mariadb=False) == written(label, answer)
        assert len(answers._LABEL_LITERALS) <= answers._LABEL_LITERALS_MAX
    assert typed_literal(confidence, Sentiment("L1", 0.5), mariadb=False) == written(
        confidence, Sentiment("L1", 0.5)
    )
    assert typed_literal(label, None, mariadb=True) == written(label, None, True)


@pytest.mark.parametrize("mariadb", [False, True])
@pytest.mark.parametrize("codec", ["utf8mb4", "latin1", "cp1250", "sjis"])
@pytest.mark.parametrize("name", sorted(BUILTINS))
def test_encoded_literals_are_the_sessions_encoding_of_the_literal(
    codec: str, name: str, mariadb: bool
) -> None:
    """encoded_typed_literal against its formula: the literal in the session's encoding,
    for labels, other answers and NULL (the memo keeps a label's ASCII bytes)."""
    charset = client_charset(codec)
    function = BUILTINS[name]
    for answer in [*(Sentiment(label, 0.5) for label in LABELS), Sentiment("ÉTÉ", 0.1), None]:
        for _ in range(2):  # written, then from the memo
            encoded = encoded_typed_literal(function, answer, charset.encode, mariadb=mariadb)
            assert encoded == charset.encode(written(function, answer, mariadb))


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
