"""Every module's doctests run (the examples in docstrings stay true)."""

from __future__ import annotations

import doctest
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("proxy", "rewriter", "ml_backends")


def modules_with_examples() -> list[str]:
    names = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if ">>> " in path.read_text(encoding="utf-8"):
                parts = path.relative_to(ROOT).with_suffix("").parts
                names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


@pytest.mark.parametrize("name", modules_with_examples())
def test_doctests(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0, f"{name} has '>>> ' but no example doctest found"
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"


def test_the_collection_finds_the_known_ones() -> None:
    assert {"rewriter.ddl", "rewriter.lexer", "ml_backends.targets"} <= set(modules_with_examples())
