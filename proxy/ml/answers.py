"""How answers go back into SQL, and how key rows become backend inputs.

Key rows hold each input's exact utf8mb4 bytes (NULL as None). Answers are written as
hex literals (never quoted text), either into the statement itself (an ELT/FIELD lookup)
or into a session temporary table the statement reads.

The built-in sentiment functions answer NULL for a NULL input without asking anyone.
An endpoint alias sends rows with NULL arguments too (an empty CSV field, as Aurora
does), so its keys keep NULL apart from every value and its lookups match NULL-safely.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Sequence
from typing import Protocol

from ml_backends.sentiment import Sentiment, SentimentInput, normalize_language
from proxy.errors import ErrorCode, MLStatementError
from proxy.upstream.internal import Row
from rewriter.aliases import answer_text, input_values
from rewriter.functions import MLFunction
from rewriter.plan import CallSite
from rewriter.sql_text import bytes_literal, double_literal, input_key, string_literal

TEMP_PREFIX = "_mlproxy_ml_"
# Column names no user table has: an unqualified user column in the call's inputs must
# not resolve to the lookup table's columns.
KEY_COLUMN = "_mlproxy_k"
VALUE_COLUMN = "_mlproxy_v"
#: Up to this many distinct answers (and bytes of keys) go into the statement itself;
#: beyond, into a temporary table (a long FIELD list is slower than an index lookup).
INLINE_MAX_ANSWERS = 256
INLINE_MAX_BYTES = 1 << 16


class UnaskedAnswer:
    """An answer nobody asked the model for yet: ``mlproxy explain`` passes it to the
    code that writes answers into SQL, so it shows the form the statement would run
    with (inline or a lookup table), each answer written as ``<answer>``."""

    def __repr__(self) -> str:
        return "<answer>"


#: The one stand-in answer.
UNASKED = UnaskedAnswer()


# --- key rows to backend inputs -------------------------------------------------------


def backend_input(function: MLFunction, row: Row) -> Hashable | None:
    """The backend input for one key row; None when the answer is NULL unasked."""
    if function.definition is not None:
        values = input_values(function, row)
        if function.inputs == 1 and values[0] is None:
            return None  # one NULL argument (a Bedrock body): nothing to send
        return values
    return sentiment_input(function, row)


def sentiment_input(function: MLFunction, row: Row) -> SentimentInput | None:
    """A built-in's backend input (backend_input for a function with no definition);
    None for NULL or empty text (answered NULL)."""
    text, language = row[0], row[1]
    if text is None or language is None or not text:
        return None
    code = _language_code(language)
    if code is None:
        raise MLStatementError(
            f"Incorrect arguments to {function.name}: unsupported language "
            f"'{language.decode('utf-8', 'replace')}'",
            ErrorCode.WRONG_ARGUMENTS,
        )
    return SentimentInput(text.decode("utf-8", "replace"), code)


def _language_code(language: bytes) -> str | None:
    """normalize_language of a key row's language bytes, kept per spelling: an
    application writes its one or few languages the same way in every statement."""
    try:
        return _LANGUAGE_CODES[language]
    except KeyError:
        code = normalize_language(language.decode("utf-8", "replace"))
    if len(_LANGUAGE_CODES) >= _LANGUAGE_CODES_MAX:  # a client that invents spellings
        _LANGUAGE_CODES.clear()
    _LANGUAGE_CODES[language] = code
    return code


#: _language_code's spellings (a language's bytes as a statement gives them).
_LANGUAGE_CODES: dict[bytes, str | None] = {}
_LANGUAGE_CODES_MAX = 256


# --- answers to SQL -------------------------------------------------------------------


class LookupSite(Protocol):
    """What an inline lookup reads of a call (rewriter.plan.CallSite, or the point
    splice's site with its inputs' text: proxy.ml.fastpath.point)."""

    @property
    def function(self) -> MLFunction: ...

    @property
    def inputs(self) -> Sequence[str]: ...

    @property
    def literal_inputs(self) -> Sequence[bool]: ...


def literal(function: MLFunction, answer: object) -> str:
    """An answer as a SQL literal of the function's stored answer type."""
    if answer is None:
        return "NULL"
    if answer is UNASKED:
        return repr(answer)
    if function.answers_text:
        if isinstance(answer, float) and not math.isfinite(answer):
            raise MLStatementError(
                f"{function.name}() got {answer!r} from its model: not a value MySQL can hold",
                ErrorCode.DATA_OUT_OF_RANGE,
            )
        return string_literal(answer_text(answer))
    if isinstance(answer, Sentiment | tuple | list):
        value = answer[0] if function.output == "label" else answer[1]
    else:
        value = answer
    if function.sql_type == "DOUBLE":
        return double_literal(float(value))
    return string_literal(str(value))


def typed_literal(function: MLFunction, answer: object, *, mariadb: bool) -> str:
    """A constant answer with the function's result type and nullability, so that
    CREATE TABLE ... AS SELECT makes the same column as a real function call would
    (``mariadb``: the backend is MariaDB, whose CAST to some types is nullable already:
    ``_nullable_cast``). A built-in's label is written once per label (a label is one of
    a few: an application's constant calls write the same ones over and over)."""
    key = _label_key(function, answer, mariadb)
    if key is None:
        return _typed_literal(function, answer, mariadb)
    return _label_literal(key, function, answer)[0]


def encoded_typed_literal(
    function: MLFunction, answer: object, encode: Callable[[str], bytes], *, mariadb: bool
) -> bytes:
    """``encode(typed_literal(function, answer))``, for ``encode`` a session's
    ClientCharset.encode: a built-in's label's bytes are written once too (its literal
    is ASCII, which every client character set writes as ASCII)."""
    key = _label_key(function, answer, mariadb)
    if key is None:
        return encode(_typed_literal(function, answer, mariadb))
    text, ascii_bytes = _label_literal(key, function, answer)
    return encode(text) if ascii_bytes is None else ascii_bytes


def _label_key(function: MLFunction, answer: object, mariadb: bool) -> tuple[str, str, bool] | None:
    """What a built-in's label literal is kept under; None for any other answer."""
    if (
        not isinstance(answer, Sentiment)
        or function.output != "label"
        or function.definition is not None
        or type(answer.label) is not str
    ):
        return None
    return (function.name, answer.label, mariadb)


def _label_literal(
    key: tuple[str, str, bool], function: MLFunction, answer: object
) -> tuple[str, bytes | None]:
    """A label's literal, and its bytes when it is ASCII (a hex literal is)."""
    written = _LABEL_LITERALS.get(key)
    if written is None:
        text = _typed_literal(function, answer, key[2])
        written = (text, text.encode("ascii") if text.isascii() else None)
        if len(_LABEL_LITERALS) >= _LABEL_LITERALS_MAX:  # a model that invents labels
            _LABEL_LITERALS.clear()
        _LABEL_LITERALS[key] = written
    return written


#: typed_literal's labels (as text and as ASCII bytes), by built-in function name, label
#: and whether the backend is MariaDB.
_LABEL_LITERALS: dict[tuple[str, str, bool], tuple[str, bytes | None]] = {}
_LABEL_LITERALS_MAX = 256


def _typed_literal(function: MLFunction, answer: object, mariadb: bool) -> str:
    value = literal(function, answer)
    if mariadb and _nullable_cast(function.cast_type):
        return f"CAST({value} AS {function.cast_type})"
    return f"CAST(NULLIF({value}, NULL) AS {function.cast_type})"


def _nullable_cast(cast_type: str) -> bool:
    """Whether MariaDB marks a CAST of a literal to ``cast_type`` nullable, as a function
    call's result is: text, DOUBLE and FLOAT (seen on 10.11: the result's metadata and
    a CREATE TABLE ... AS SELECT column are those of the NULLIF form, which costs the
    server about 5 us a call). SIGNED, UNSIGNED and DECIMAL give NOT NULL without the
    NULLIF, and MySQL is not assumed to behave alike: both keep it."""
    return cast_type.startswith(("CHAR", "DOUBLE", "FLOAT"))


def _elt_literal(function: MLFunction, answer: object) -> str:
    """ELT returns text: a DOUBLE goes as its exact decimal text, cast back after. (A
    built-in's label is written once: a point select writes one per request.)"""
    key = _label_key(function, answer, False)
    if key is not None:
        written = _ELT_LABELS.get(key)
        if written is None:
            if len(_ELT_LABELS) >= _LABEL_LITERALS_MAX:  # a model that invents labels
                _ELT_LABELS.clear()
            written = _ELT_LABELS[key] = literal(function, answer)
        return written
    if function.sql_type == "DOUBLE" and not function.answers_text and answer is not UNASKED:
        value = answer[1] if isinstance(answer, Sentiment | tuple | list) else answer
        return string_literal(repr(float(value)))  # type: ignore[arg-type]
    return literal(function, answer)


#: _elt_literal's built-in labels, by function name and label (_label_key's, for any backend).
_ELT_LABELS: dict[tuple[str, str, bool], str] = {}


def inline_lookup(site: LookupSite, site_answers: dict[Row, object]) -> str | None:
    """The answers written into the statement itself, when there are few: no temporary
    table (so READ ONLY transactions and users without CREATE TEMPORARY TABLES work),
    and the inputs are evaluated where the call stood (an aggregate input too). FIELD
    compares the binary keys bytewise; ELT picks the answer (NULL when none matches);
    the CAST gives the function's result type. None when there are too many answers.
    (Loops, not comprehensions: a point select's statement makes one per request.)"""
    function = site.function
    null_safe = function.answers_text
    answered = []
    for row, answer in site_answers.items():
        if answer is not None and (null_safe or None not in row):
            answered.append((row, answer))
    if len(answered) > INLINE_MAX_ANSWERS:
        return None  # before building thousands of keys only to drop them
    cast = function.cast_type
    if not answered:
        return function.typed_null
    compared = _compared_inputs(site, answered)
    keys, values, size = [], [], 0
    for row, answer in answered:
        key = bytes_literal(combined_key(_picked(row, compared), null_safe))
        size += len(key)
        keys.append(key)
        values.append(_elt_literal(function, answer))
    if size > INLINE_MAX_BYTES:
        return None
    inputs = site.inputs if compared is None else [site.inputs[i] for i in compared]
    key_sql = _key_sql(tuple(inputs), null_safe)
    return f"CAST(ELT(FIELD({key_sql}, {', '.join(keys)}), {', '.join(values)}) AS {cast})"


def _key_sql(inputs: tuple[str, ...], null_safe: bool) -> str:
    """combined_key_sql, written once per inputs: a statement of a shape compares the
    same inputs' text each time (a point select's column), only the keys differ."""
    key = (inputs, null_safe)
    written = _KEY_SQL.get(key)
    if written is None:
        written = combined_key_sql(inputs, null_safe)
        if sum(map(len, inputs)) <= _KEY_SQL_INPUTS:  # (a client's long texts: not kept)
            if len(_KEY_SQL) >= _KEY_SQL_MAX:  # statements that vary their inputs' text
                _KEY_SQL.clear()
            _KEY_SQL[key] = written
    return written


#: _key_sql's texts, for inputs of at most _KEY_SQL_INPUTS characters: at most a few
#: hundred KiB for the process.
_KEY_SQL: dict[tuple[tuple[str, ...], bool], str] = {}
_KEY_SQL_MAX = 256
_KEY_SQL_INPUTS = 256


def _compared_inputs(site: LookupSite, answered: list[tuple[Row, object]]) -> list[int] | None:
    """The inputs an inline lookup compares when some are literals (``'en'``): a literal
    is the same in every row, so only the others tell rows apart, and the statement's
    key is shorter for the server to read and compute. None: compare them all.
    (``answered``: the rows and their answers.)"""
    literal = site.literal_inputs
    if True not in literal:
        return None
    compared = []
    first = answered[0][0]
    for i, is_literal in enumerate(literal):
        if not is_literal:
            compared.append(i)
            continue
        for row, _ in answered:
            if row[i] != first[i]:
                compared.append(i)
                break
    return compared if compared and len(compared) < len(literal) else None


def _picked(row: Row, compared: list[int] | None) -> Row:
    """The inputs of ``row`` an inline lookup compares (_compared_inputs)."""
    if compared is None:
        return row
    if len(compared) == 1:
        return (row[compared[0]],)
    return tuple([row[i] for i in compared])


def combined_key(row: Row, null_safe: bool = False) -> bytes:
    """All inputs in one unambiguous byte string: each but the last length-prefixed;
    with ``null_safe``, every part marked N (NULL) or V (a value) and length-prefixed."""
    if null_safe:
        return b"".join(b"N" if p is None else f"V{len(p)}:".encode() + p for p in row)
    if len(row) == 1:  # the usual key: one input compared
        return row[0] or b""
    parts = [part or b"" for part in row]
    return b"".join(f"{len(p)}:".encode() + p for p in parts[:-1]) + parts[-1]


def combined_key_sql(inputs: Sequence[str], null_safe: bool = False) -> str:
    """The SQL computing ``combined_key`` of the inputs, row by row."""
    keys = [input_key(text) for text in inputs]
    if null_safe:
        parts = [f"IF({k} IS NULL, 'N', CONCAT('V', LENGTH({k}), ':', {k}))" for k in keys]
        return f"CONCAT({', '.join(parts)})"
    if len(keys) == 1:
        return keys[0]
    parts = [f"LENGTH({k}), ':', {k}" for k in keys[:-1]] + [keys[-1]]
    return f"CONCAT({', '.join(parts)})"


def lookup_sql(site: CallSite) -> str:
    """What replaces a row-dependent call: a lookup of its answer by its inputs' keys
    (NULL-safe for aliases, whose answers are text cast to the declared type here)."""
    equals = "<=>" if site.function.answers_text else "="
    condition = " AND ".join(
        f"_mlr.{KEY_COLUMN}{i} {equals} {input_key(text)}" for i, text in enumerate(site.inputs)
    )
    table = f"{TEMP_PREFIX}{site.index}"
    lookup = f"(SELECT _mlr.{VALUE_COLUMN} FROM {table} AS _mlr WHERE {condition})"
    return f"CAST({lookup} AS {site.function.cast_type})" if site.function.answers_text else lookup


def table_row(function: MLFunction, row: Row, answer: object) -> str:
    """One temporary-table row: the keys (NULL kept for aliases), then the answer."""
    if function.answers_text:
        keys = ["NULL" if part is None else bytes_literal(part) for part in row]
    else:
        keys = [bytes_literal(part or b"") for part in row]
    return "(" + ", ".join([*keys, literal(function, answer)]) + ")"
