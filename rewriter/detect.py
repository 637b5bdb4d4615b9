"""A cheap test that decides whether a statement may call an ML function.

Only statements that pass it are parsed: a substring search for the registered names
costs microseconds, a sqlglot parse tens of microseconds to milliseconds, and the
pass-through path must not pay for the ML path. False positives (a name inside a string
literal or a comment) only send a statement to the slower, exact path.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

#: Aurora MySQL's built-in Comprehend functions.
BUILTIN_FUNCTIONS = (
    "aws_comprehend_detect_sentiment",
    "aws_comprehend_detect_sentiment_confidence",
)


class CallDetector:
    """Says whether SQL text mentions any of a set of function names (case-insensitive).

    >>> detector = CallDetector(["aws_comprehend_detect_sentiment"])
    >>> detector.may_call("SELECT AWS_Comprehend_Detect_Sentiment(x, 'en')")
    True
    >>> CallDetector(["will_churn"]).may_call(b"SELECT 1")
    False
    """

    def __init__(self, names: Iterable[str] = BUILTIN_FUNCTIONS) -> None:
        self.names = tuple(sorted({name.lower() for name in names}))
        pattern = "|".join(re.escape(name) for name in self.names) or r"(?!)"
        self._text = re.compile(pattern, re.IGNORECASE)
        self._bytes = re.compile(pattern.encode("utf-8"), re.IGNORECASE)

    def may_call(self, sql: str | bytes) -> bool:
        if isinstance(sql, str):
            return self._text.search(sql) is not None
        return self._bytes.search(sql) is not None
