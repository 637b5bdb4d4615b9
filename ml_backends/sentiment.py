"""What Comprehend sentiment backends share: inputs, outputs, languages, limits."""

from __future__ import annotations

from typing import NamedTuple

#: Languages Comprehend's DetectSentiment accepts (Aurora passes the code through).
LANGUAGES = frozenset({"en", "es", "fr", "de", "it", "pt", "ar", "hi", "ja", "ko", "zh", "zh-TW"})

LABELS = ("POSITIVE", "NEGATIVE", "NEUTRAL", "MIXED")

#: Comprehend's BatchDetectSentiment limits: documents per request, UTF-8 bytes per document.
MAX_DOCUMENTS = 25
MAX_DOCUMENT_BYTES = 5000


class SentimentInput(NamedTuple):
    text: str
    language: str


class Sentiment(NamedTuple):
    """One answer: the label and the confidence (the chosen label's score, in [0, 1])."""

    label: str
    confidence: float


_CANONICAL = {code.lower(): code for code in LANGUAGES}


def normalize_language(code: str) -> str | None:
    """The canonical language code, or None when Comprehend does not support it."""
    return _CANONICAL.get(code.strip().lower())


def truncate_utf8(text: str, limit: int = MAX_DOCUMENT_BYTES) -> str:
    """The longest prefix of ``text`` within ``limit`` UTF-8 bytes, cut at a character
    boundary (Comprehend rejects longer documents; Aurora's behaviour is undocumented,
    mlproxy analyses the first 5,000 bytes)."""
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    return data[:limit].decode("utf-8", "ignore")
