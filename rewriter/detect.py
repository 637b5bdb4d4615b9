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


#: Up to this many bytes per name watched the regex is cheaper than lowering a copy of the
#: statement (it tries each name at each byte; the substring search costs a fixed
#: ~0.3 us and a few ns per byte).
_SHORT = 64


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
        # A name that contains another never decides anything: the shorter one matches first.
        encoded = [name.encode("utf-8") for name in self.names]
        self._needles = tuple(n for n in encoded if not any(o != n and o in n for o in encoded))
        self._short = _SHORT // max(1, len(self._needles))

    def may_call(self, sql: str | bytes) -> bool:
        if isinstance(sql, str):
            return self._text.search(sql) is not None
        if len(sql) <= self._short:
            return self._bytes.search(sql) is not None
        # A case-insensitive regex scans at a few ns a byte and name, a bulk INSERT's
        # megabytes in milliseconds; lowering the text and a plain substring search are
        # ten times faster. (For bytes both fold ASCII only, so they find the same
        # statements.) A loop, not any(): a generator costs more than a short search.
        lowered = sql.lower()
        for needle in self._needles:  # noqa: SIM110 (any() with a generator: slower)
            if needle in lowered:
                return True
        return False
