"""The oracles' statement corpora, kept as ``.sql`` files beside their tests (as sqlglot
keeps its fixtures), and their reader.

The format, one case after another::

    -- Any comment line outside a case (before its ``-- case:`` line or after the
    -- blank line that ends it) is for the reader only.
    -- case: sel-plain-lang-column
    -- ordered
    -- setup: SET @k = 11
    SELECT id, {S}(txt, lang)
    FROM comments

A case starts at ``-- case: NAME`` (its pytest id). Directive lines follow, each
``-- KEY`` or ``-- KEY: VALUE``, then the statement: every line up to the next blank line,
kept as written (its comments too) and joined with newlines. The keys:

- ``ordered``: the rows are compared in order;
- ``setup: SQL``, ``then: SQL``, ``cleanup: SQL``: one statement each, repeatable, run
  before, after (compared) and last (not compared);
- ``tables: A B``: the tables a write is judged by;
- ``where: other``: the database the statement runs in;
- ``xfail: NAME``: a known failure, NAME a diagnosis of the test module's;
- ``xfail-paths: inline table``: the answer paths that failure is known on.

Placeholders such as ``{S}`` or ``{db}`` are the tests' to fill in.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

CASE = "-- case: "
#: Directive keys and how a value is read (None: a flag without one).
LISTS = ("setup", "then", "cleanup")
WORDS = ("tables", "xfail-paths")
TEXTS = ("where", "xfail")
FLAGS = ("ordered",)


class CorpusError(ValueError):
    """A corpus file does not follow the format (the message names file and line)."""


@dataclass(frozen=True)
class Case:
    """One statement of a corpus and its directives, as keyword arguments of the test
    module's case builder (``xfail`` already its diagnosis)."""

    name: str
    sql: str
    options: dict[str, Any] = field(default_factory=dict)


def read_corpus(path: Path, diagnoses: Mapping[str, str] | None = None) -> list[Case]:
    """The cases of ``path`` in file order; ``diagnoses`` names the known failures."""
    lines = path.read_text(encoding="utf-8").splitlines()
    cases = list(_cases(lines, path, {} if diagnoses is None else diagnoses))
    names = [case.name for case in cases]
    if len(set(names)) != len(names):
        raise CorpusError(f"{path}: a case name is used twice")
    return cases


def build_corpus(
    path: Path, build: Callable[..., T], diagnoses: Mapping[str, str] | None = None
) -> list[T]:
    """``build(name, sql, **options)`` of each case of ``path``: a test module's cases."""
    return [build(case.name, case.sql, **case.options) for case in read_corpus(path, diagnoses)]


def _cases(lines: list[str], path: Path, diagnoses: Mapping[str, str]) -> Iterator[Case]:
    number = 0
    while number < len(lines):
        line = lines[number]
        number += 1
        if not line.startswith(CASE):
            if line.strip() and not line.startswith("--"):
                raise CorpusError(f"{path}:{number}: a statement outside a case")
            continue
        name = line[len(CASE) :].strip()
        options: dict[str, Any] = {}
        while number < len(lines) and _directive(lines[number], options, diagnoses):
            number += 1
        statement: list[str] = []
        while number < len(lines) and lines[number].strip():
            statement.append(lines[number])
            number += 1
        if not statement:
            raise CorpusError(f"{path}:{number}: case {name!r} has no statement")
        yield Case(name, "\n".join(statement), options)


def _directive(line: str, options: dict[str, Any], diagnoses: Mapping[str, str]) -> bool:
    """Read ``line`` into ``options`` if it is a directive; whether it was."""
    if not line.startswith("-- "):
        return False
    key, _, value = line[3:].partition(": ")
    key = key.strip()
    argument = key.replace("-", "_")
    if key in FLAGS and not value:
        options[argument] = True
    elif key in LISTS:
        options.setdefault(argument, []).append(value)
    elif key in WORDS:
        options[argument] = tuple(value.split())
    elif key == "xfail":
        if value.strip() not in diagnoses:
            raise CorpusError(f"no diagnosis called {value.strip()!r}: {line!r}")
        options[argument] = diagnoses[value.strip()]
    elif key in TEXTS:
        options[argument] = value.strip()
    else:
        return False
    return True
