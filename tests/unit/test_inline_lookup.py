"""proxy.ml.answers.inline_lookup's memos change nothing it writes.

A point select writes one inline lookup per request, so its key expression (per inputs'
text) and a built-in label's ELT literal (per label) are written once and kept. The
oracle is the same lookup written with the memos emptied first: over a run of lookups
of both built-ins (a label, a confidence: the same labels, other outputs), other
inputs' texts, rows and answers, each must be what it is with nothing kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from hypothesis import given, settings
from hypothesis import strategies as st

from ml_backends.sentiment import Sentiment
from proxy.ml import answers
from proxy.ml.answers import inline_lookup
from proxy.upstream.internal import Row
from rewriter.functions import BUILTINS, MLFunction

S = "aws_comprehend_detect_sentiment"
C = "aws_comprehend_detect_sentiment_confidence"


class Site(NamedTuple):
    function: MLFunction
    inputs: Sequence[str]
    literal_inputs: Sequence[bool]


SITES = st.builds(
    Site,
    st.sampled_from([BUILTINS[S], BUILTINS[C]]),
    st.sampled_from([("txt", "'en'"), ("CONCAT(txt, 'x')", "lang"), ("`t`.`txt`", "'fr'")]),
    st.sampled_from([(False, True), (False, False)]),
)
ROWS = st.tuples(st.binary(max_size=8), st.sampled_from([b"en", b"fr"]))
ANSWERS = st.builds(
    Sentiment,
    st.sampled_from(["POSITIVE", "NEGATIVE", "MIXED"]),
    st.floats(0, 1, allow_nan=False),
)
LOOKUPS = st.lists(
    st.tuples(SITES, st.dictionaries(ROWS, st.one_of(st.none(), ANSWERS), max_size=3)),
    min_size=1,
    max_size=8,
)


def _forget() -> None:
    answers._KEY_SQL.clear()
    answers._ELT_LABELS.clear()


@given(lookups=LOOKUPS)
@settings(max_examples=200, deadline=None)
def test_a_lookup_is_what_it_is_with_nothing_kept(
    lookups: list[tuple[Site, dict[Row, object]]],
) -> None:
    warm = [inline_lookup(site, rows) for site, rows in lookups]
    for (site, rows), written in zip(lookups, warm, strict=True):
        _forget()
        assert inline_lookup(site, rows) == written


def test_the_labels_and_keys_written_follow_the_answers() -> None:
    """(The property above holds if every lookup were the same: these differ.)"""
    site = Site(BUILTINS[S], ("txt", "'en'"), (False, True))
    good = inline_lookup(site, {(b"a", b"en"): Sentiment("POSITIVE", 0.9)})
    bad = inline_lookup(site, {(b"b", b"en"): Sentiment("NEGATIVE", 0.9)})
    assert good is not None and bad is not None
    assert "X'61'" in good and "X'62'" in bad  # the keys: the rows' texts
    assert good.replace("X'61'", "") != bad.replace("X'62'", "")  # the labels
    confidence = Site(BUILTINS[C], ("txt", "'en'"), (False, True))
    sure = inline_lookup(confidence, {(b"a", b"en"): Sentiment("POSITIVE", 0.25)})
    assert sure is not None and b"0.25".hex() in sure  # its text, as a hex literal
