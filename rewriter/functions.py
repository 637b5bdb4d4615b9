"""The ML functions SQL can call: what each takes, which backend answers, what it returns."""

from __future__ import annotations

import functools
from dataclasses import dataclass


@dataclass(frozen=True)
class MLFunction:
    """One callable name. ``family`` names the backend and the shared answers: two
    functions of one family over the same inputs cost one backend call."""

    name: str
    family: str
    #: Which part of the family's answer this function returns.
    output: str
    #: Inputs sent to the backend, in order (further arguments are options).
    inputs: int
    max_args: int
    #: The SQL type of the result, for the values the proxy writes.
    sql_type: str
    #: For functions answered as text and cast by MySQL (endpoint aliases): the CAST
    #: target giving the declared RETURNS type; None for the built-ins' typed answers.
    result_cast: str | None = None
    #: Per input, the CAST giving the declared argument type (empty: inputs as written).
    input_casts: tuple[str, ...] = ()
    #: The alias definition (rewriter.ddl.AliasFunction) behind a user-defined function.
    definition: object | None = None

    def accepts(self, count: int) -> bool:
        return self.inputs <= count <= self.max_args

    def input_sql(self, index: int, text: str) -> str:
        """The SQL of input ``index`` as the backend receives it (cast to its type)."""
        if index < len(self.input_casts):
            return f"CAST(({text}) AS {self.input_casts[index]})"
        return text

    @property
    def answers_text(self) -> bool:
        """Answers are text that MySQL casts to the result type where the call stood."""
        return self.result_cast is not None

    @functools.cached_property
    def column_type(self) -> str:
        """The column type holding this function's answers (text always utf8mb4)."""
        if self.result_cast is not None:
            return "LONGTEXT CHARACTER SET utf8mb4"
        if self.sql_type.upper().startswith("VARCHAR"):
            return self.sql_type + " CHARACTER SET utf8mb4"
        return self.sql_type

    @functools.cached_property
    def cast_type(self) -> str:
        """The CAST target giving a literal this function's result type (utf8mb4 text)."""
        if self.result_cast is not None:
            return self.result_cast
        if self.sql_type.upper().startswith("VARCHAR"):
            return "CHAR" + self.sql_type[len("VARCHAR") :] + " CHARACTER SET utf8mb4"
        return self.sql_type

    @functools.cached_property
    def typed_null(self) -> str:
        """NULL with this function's result type (an answer that is NULL, in SQL)."""
        return f"CAST(NULL AS {self.cast_type})"


SENTIMENT = "comprehend.sentiment"

BUILTINS: dict[str, MLFunction] = {
    f.name: f
    for f in (
        MLFunction("aws_comprehend_detect_sentiment", SENTIMENT, "label", 2, 3, "VARCHAR(8)"),
        MLFunction(
            "aws_comprehend_detect_sentiment_confidence", SENTIMENT, "confidence", 2, 3, "DOUBLE"
        ),
    )
}
