"""rewriter.detect.CallDetector: its two searches (a regex on short statements, a
substring search on a lowered copy of longer ones) find exactly the statements that
mention a watched name, in any case, against the naive search."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from rewriter.detect import BUILTIN_FUNCTIONS, CallDetector

NAME_SETS = [
    BUILTIN_FUNCTIONS,
    ("will_churn",),
    (*BUILTIN_FUNCTIONS, "will_churn", "predict_price", "churn"),
]


def mentions(names: tuple[str, ...], sql: bytes) -> bool:
    """The oracle: a watched name in the statement, ASCII letters of any case."""
    return any(name.encode().lower() in sql.lower() for name in names)


def randomly_cased(draw: st.DrawFn, text: str) -> bytes:
    flips = draw(st.lists(st.booleans(), min_size=len(text), max_size=len(text)))
    return "".join(c.upper() if f else c for c, f in zip(text, flips, strict=True)).encode()


@st.composite
def statements(draw: st.DrawFn) -> tuple[tuple[str, ...], bytes]:
    names = draw(st.sampled_from(NAME_SETS))
    pieces = draw(
        st.lists(
            st.one_of(
                st.binary(max_size=40),
                st.sampled_from(names).map(lambda name: name.encode()),
                st.sampled_from(names).map(lambda name: name[: len(name) // 2].encode()),
                st.sampled_from(["SELECT ", "'", ", 'en')", " FROM t", "\u00e9"]).map(str.encode),
            ),
            max_size=12,
        )
    )
    sql = b"".join(pieces)
    return names, randomly_cased(draw, sql.decode("latin-1")) if draw(st.booleans()) else sql


@settings(max_examples=400, deadline=None)
@given(statements())
def test_both_searches_find_exactly_the_statements_that_mention_a_name(
    case: tuple[tuple[str, ...], bytes],
) -> None:
    names, sql = case
    detector = CallDetector(names)
    assert detector.may_call(sql) is mentions(names, sql)
    assert detector.may_call(sql.decode("latin-1")) is mentions(names, sql)


def test_a_long_statement_takes_the_substring_search_and_a_short_one_the_regex() -> None:
    """Both paths run (the property above covers their answers): with more names the
    regex's share shrinks, as it tries each name at each byte."""
    one, several = CallDetector(("will_churn",)), CallDetector(NAME_SETS[2])
    assert one._short > several._short > 0
    for detector in (one, several):
        short = b"SELECT WILL_CHURN(1)"[: detector._short]
        long = b"SELECT id FROM t WHERE " + b"x = 1 AND " * 20 + b"Will_Churn(2) > 0"
        assert len(short) <= detector._short < len(long)
        assert detector.may_call(long)
        assert not detector.may_call(long.replace(b"Will_Churn", b"Will_Chur"))
