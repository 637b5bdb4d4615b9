"""The offline default: VADER, a lexicon and rule-based sentiment model (Hutto & Gilbert,
2014) that ships its lexicon inside its package, so it needs no network and no account.

VADER gives positive, negative and neutral proportions plus a compound score in [-1, 1];
they are mapped to Comprehend's four labels and a confidence in [0, 1]:

- MIXED when both the positive and the negative proportions reach 0.3;
- POSITIVE when compound >= 0.05, NEGATIVE when compound <= -0.05 (VADER's own
  thresholds), NEUTRAL otherwise;
- confidence: 0.5 + |compound| / 2 for POSITIVE and NEGATIVE, 0.5 + neutral / 2 for
  NEUTRAL, 0.5 + min(positive, negative) for MIXED; always within [0.5, 1].

VADER scores English; other languages mostly come out NEUTRAL.
"""

from __future__ import annotations

from typing import Any

from ml_backends.base import Arguments, SlicedBackend
from ml_backends.errors import BackendNotFound
from ml_backends.sentiment import MAX_DOCUMENTS, Sentiment, truncate_utf8

# Typographic quotes VADER's lexicon does not know (U+2019 in "don't" misses the entry).
_QUOTES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u201c": '"', "\u201d": '"'})

MIXED_THRESHOLD = 0.3
COMPOUND_THRESHOLD = 0.05


def _analyzer() -> Any:
    try:
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer
    except ImportError as exc:
        raise BackendNotFound(
            "the local sentiment backend needs vaderSentiment: pip install vaderSentiment"
        ) from exc
    return SentimentIntensityAnalyzer()


def classify(scores: dict[str, float]) -> Sentiment:
    """Map VADER's scores to a Comprehend label and confidence (see the module docstring)."""
    pos, neg, neu, compound = scores["pos"], scores["neg"], scores["neu"], scores["compound"]
    if pos >= MIXED_THRESHOLD and neg >= MIXED_THRESHOLD:
        return Sentiment("MIXED", min(1.0, 0.5 + min(pos, neg)))
    if compound >= COMPOUND_THRESHOLD:
        return Sentiment("POSITIVE", 0.5 + compound / 2)
    if compound <= -COMPOUND_THRESHOLD:
        return Sentiment("NEGATIVE", 0.5 - compound / 2)
    return Sentiment("NEUTRAL", 0.5 + neu / 2)


class LocalSentimentBackend(SlicedBackend[Arguments]):
    """VADER on the event loop, in slices; inputs are (text, language) tuples."""

    name = "local"
    max_batch_size = MAX_DOCUMENTS
    metered = False  # offline: a 50,000-row statement costs CPU, not money

    def __init__(self) -> None:
        self._analyzer = _analyzer()

    def infer_one(self, item: Arguments) -> Sentiment:
        return self.score(str(item[0]))

    def score(self, text: str) -> Sentiment:
        normalized = truncate_utf8(text).translate(_QUOTES)
        return classify(self._analyzer.polarity_scores(normalized))
