"""tests/support/sql_corpus: the oracles' .sql corpora read back as written."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.sql_corpus import Case, CorpusError, read_corpus

ORACLE = Path(__file__).resolve().parents[1] / "oracle"


def corpus(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "corpus.sql"
    path.write_text(text, encoding="utf-8")
    return path


def test_cases_with_directives_comments_and_several_lines(tmp_path: Path) -> None:
    path = corpus(
        tmp_path,
        "-- a file comment\n"
        "\n"
        "-- case: first\n"
        "SELECT 1;\n"
        "\n"
        "-- between the cases\n"
        "-- case: second\n"
        "-- ordered\n"
        "-- where: other\n"
        "-- tables: a b\n"
        "-- xfail: KNOWN\n"
        "-- xfail-paths: table\n"
        "-- setup: SET @k = 1\n"
        "-- setup: SET @j = 2\n"
        "-- then: SELECT @k\n"
        "-- cleanup: SET @k = NULL\n"
        "SELECT id, -- a comment that belongs to the statement\n"
        " {S}(txt) # and another\n"
        " FROM t\n",
    )
    assert read_corpus(path, {"KNOWN": "the diagnosis"}) == [
        Case("first", "SELECT 1;", {}),
        Case(
            "second",
            "SELECT id, -- a comment that belongs to the statement\n {S}(txt) # and another\n"
            " FROM t",
            {
                "ordered": True,
                "where": "other",
                "tables": ("a", "b"),
                "xfail": "the diagnosis",
                "xfail_paths": ("table",),
                "setup": ["SET @k = 1", "SET @j = 2"],
                "then": ["SELECT @k"],
                "cleanup": ["SET @k = NULL"],
            },
        ),
    ]


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("SELECT 1\n", "outside a case"),
        ("-- case: empty\n\n-- case: next\nSELECT 1\n", "no statement"),
        ("-- case: twice\nSELECT 1\n\n-- case: twice\nSELECT 2\n", "used twice"),
        ("-- case: unknown\n-- xfail: NOBODY\nSELECT 1\n", "no diagnosis"),
    ],
)
def test_a_malformed_corpus_is_refused(tmp_path: Path, text: str, complaint: str) -> None:
    with pytest.raises(CorpusError, match=complaint):
        read_corpus(corpus(tmp_path, text))


@pytest.mark.parametrize("name", sorted(p.name for p in ORACLE.glob("*.sql")))
def test_every_oracle_corpus_reads(name: str) -> None:
    """Each file has cases, each case a statement; xfail names are the modules' to check."""
    cases = read_corpus(ORACLE / name, _AnyDiagnosis())
    assert len(cases) > 20 and all(case.sql.strip() for case in cases)


class _AnyDiagnosis(dict[str, str]):
    def __contains__(self, key: object) -> bool:
        return True

    def __missing__(self, key: str) -> str:
        return key
