"""Every model answer checked at one boundary, before anything keeps it.

Backends of every kind (Comprehend, local, SageMaker CSV/JSON, HTTP, Bedrock, OpenAI-style
chat, python: callables) hand back Python values. Only values the function's result type
can hold pass, in one normal form: a ``Sentiment`` for the Comprehend functions, text (or
None for NULL) for aliases. Anything else becomes an ItemError, so the statement fails
with 1105 naming the function (or answers NULL under ``@mlproxy_on_error = 'null'``);
nothing a model says is ever written into SQL except as a checked, hex-encoded literal.

For aliases, text longer than the declared CHAR/VARCHAR/TEXT type holds is refused, as
a stored function's RETURN of it is in strict mode (1406); a number outside the declared
type's range, NaN and infinities are refused too. Each answer kept is counted against the
statement's memory budget first (proxy.ml.memory).

>>> from rewriter.functions import BUILTINS
>>> check = answer_check(BUILTINS["aws_comprehend_detect_sentiment"])
>>> check(("POSITIVE", 0.75))
Sentiment(label='POSITIVE', confidence=0.75)
>>> check(("POSITIVE", "0.5) OR (1=1")).message
"the model's confidence is a str, not a number in [0, 1]"
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from ml_backends.base import ItemError, Outcome
from ml_backends.sentiment import LABELS, Sentiment
from proxy.errors import ErrorCode, sqlstate_of
from proxy.ml.memory import StatementMemory
from rewriter.aliases import SqlType
from rewriter.functions import MLFunction

#: Bytes of text each string type holds (utf8mb4: the byte limits of the TEXT/BLOB types).
_BYTES_OF = {
    "TINYTEXT": 255,
    "TEXT": 65_535,
    "MEDIUMTEXT": 16_777_215,
    "LONGTEXT": 4_294_967_295,
    "TINYBLOB": 255,
    "BLOB": 65_535,
    "MEDIUMBLOB": 16_777_215,
    "LONGBLOB": 4_294_967_295,
    "JSON": 4_294_967_295,
}
_CHARACTERS_OF = ("CHAR", "VARCHAR", "BINARY", "VARBINARY")
_INTEGER_BITS = {"TINYINT": 8, "SMALLINT": 16, "MEDIUMINT": 24, "INT": 32, "BIGINT": 64}
#: Characters of text an answer for any other type (numbers, dates...) may have: far
#: more than any value of them needs, far less than a model could send.
MAX_OTHER_TEXT = 255
#: What the check charges for a Comprehend answer (a label and a float).
SENTIMENT_COST = 200

#: The check the engine runs on each answer (see ml_backends.engine.AnswerCheck).
Check = Callable[[Outcome], Outcome]


class InvalidAnswer(ValueError):
    """An answer the function's type cannot hold (the message says why, not what)."""

    def __init__(self, message: str, code: int = ErrorCode.UNKNOWN_ERROR) -> None:
        super().__init__(message)
        self.code = code
        self.sqlstate = sqlstate_of(code)


@dataclass(frozen=True)
class RefusedAnswer(ItemError):
    """The ItemError of an answer the check refused, with the error the statement gets."""

    code: int = ErrorCode.UNKNOWN_ERROR
    sqlstate: str = sqlstate_of(ErrorCode.UNKNOWN_ERROR)


def answer_check(function: MLFunction, memory: StatementMemory | None = None) -> Check:
    """The check for ``function``'s answers, charging what it keeps to ``memory``."""
    normalize = _alias_answer(function) if function.answers_text else _sentiment_answer

    def check(answer: Outcome) -> Outcome:
        try:
            value = normalize(answer)
        except InvalidAnswer as exc:
            return RefusedAnswer(str(exc), exc.code, exc.sqlstate)
        if memory is not None:
            size = SENTIMENT_COST if isinstance(value, Sentiment) else sys.getsizeof(value)
            memory.charge(size, "answers")
        return value

    return check


def _sentiment_answer(answer: object) -> Sentiment:
    """A (label, confidence) pair with one of Comprehend's four labels and a confidence
    in [0, 1]."""
    if not isinstance(answer, tuple | list) or len(answer) != 2:
        raise InvalidAnswer(f"the model answered {_kind(answer)}, not a (label, confidence) pair")
    label, confidence = answer
    if not isinstance(label, str) or label not in LABELS:
        raise InvalidAnswer(f"the model's label is {_kind(label)}, not one of {', '.join(LABELS)}")
    if isinstance(confidence, bool) or not isinstance(confidence, int | float | Decimal):
        raise InvalidAnswer(
            f"the model's confidence is {_kind(confidence)}, not a number in [0, 1]"
        )
    finite = confidence.is_finite() if isinstance(confidence, Decimal) else True
    if not (finite and 0 <= confidence <= 1):  # also False for a float NaN
        raise InvalidAnswer("the model's confidence is not a number in [0, 1]")
    return Sentiment(LABELS[LABELS.index(label)], float(confidence))


def _alias_answer(function: MLFunction) -> Callable[[object], str | None]:
    """An alias's answer as the text MySQL casts to its RETURNS type."""
    sql_type = SqlType.parse(function.sql_type)

    def normalize(answer: object) -> str | None:
        if answer is None:
            return None
        if isinstance(answer, bool):  # MySQL's TRUE and FALSE
            return "1" if answer else "0"
        if isinstance(answer, int | float | Decimal):
            return _number_text(answer, sql_type)
        if not isinstance(answer, str):
            raise InvalidAnswer(f"the model answered {_kind(answer)}, not text or a number")
        return _checked_text(str.__str__(answer), sql_type)  # a plain str, not a subclass

    return normalize


def _number_text(value: int | float | Decimal, sql_type: SqlType) -> str:
    if isinstance(value, float | Decimal) and not _finite(value):
        # What MySQL says of a stored function returning it: 1690 DOUBLE value out of range.
        raise InvalidAnswer(
            f"the model answered {value}, which no SQL type holds", ErrorCode.DATA_OUT_OF_RANGE
        )
    bits = _INTEGER_BITS.get(sql_type.base)
    if bits is not None and isinstance(value, int):
        low, high = (
            (0, 2**bits - 1) if sql_type.unsigned else (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
        )
        if not low <= value <= high:
            raise InvalidAnswer(f"the model's answer is out of range for {sql_type.base}")
    if isinstance(value, int) and value.bit_length() > 256:
        raise InvalidAnswer(f"the model's answer has more digits than {sql_type.base} holds")
    if isinstance(value, float):  # the plain types' own text, whatever a subclass says
        return _checked_text(float.__repr__(value), sql_type)
    if isinstance(value, Decimal):
        return _checked_text(Decimal.__str__(value), sql_type)
    return _checked_text(int.__repr__(value), sql_type)


def _finite(value: float | Decimal) -> bool:
    return value.is_finite() if isinstance(value, Decimal) else math.isfinite(value)


def _checked_text(text: str, sql_type: SqlType) -> str:
    """``text`` if the declared type holds it: valid Unicode (no lone surrogates), and no
    longer than the type's characters or bytes."""
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError:
        raise InvalidAnswer("the model's answer is not valid Unicode text") from None
    limit = _BYTES_OF.get(sql_type.base)
    if limit is not None:
        if size > limit:
            raise InvalidAnswer(
                f"the model's answer ({size} bytes) is longer than {sql_type.base} holds"
            )
        return text
    if sql_type.base in _CHARACTERS_OF:
        most = int(sql_type.params[0]) if sql_type.params else 1
    else:
        most = MAX_OTHER_TEXT
    if len(text) > most:
        raise InvalidAnswer(
            f"the model's answer ({len(text)} characters) is longer than "
            f"{sql_type.base}({most}) holds"
            if sql_type.base in _CHARACTERS_OF
            else f"the model's answer ({len(text)} characters) is not a {sql_type.base} value"
        )
    return text


def _kind(value: object) -> str:
    """What a value is, without repeating it (it may be huge or hostile)."""
    if value is None:
        return "NULL"
    name = type(value).__name__
    if isinstance(value, tuple | list):
        return f"a {name} of {len(value)}"
    return f"an {name}" if name[:1] in "aeiou" else f"a {name}"
