"""The shape of the house (issue 13): no import cycles among the packages' modules,
counting every import (function-level and ``TYPE_CHECKING`` ones too), no folder wider
than a newcomer can scan, and every subpackage saying what it is for."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("proxy", "rewriter", "ml_backends")
#: The most modules one folder may hold (``__init__.py`` not counted).
WIDEST_FOLDER = 15
#: A dotted name of the tests package or a module in it.
TESTS_MODULE = re.compile(r"tests(\.\w+)*")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def all_modules() -> dict[str, Path]:
    return {
        module_name(path): path
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
    }


def imported_names(path: Path, name: str) -> Iterator[str]:
    """Every module ``path`` imports anywhere in its body: ``from a import b`` gives
    ``a.b`` (a submodule, when it is one) and ``a``."""
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".")
                anchor = anchor[: len(anchor) - node.level + (1 if is_package else 0)]
                base = ".".join([*anchor, base] if base else anchor)
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)


def import_graph() -> dict[str, set[str]]:
    modules = all_modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        wanted = set(imported_names(path, name)) & modules.keys()
        # ``from a import b`` where b is a submodule depends on b, not on a's __init__
        graph[name] = {m for m in wanted if not any(o.startswith(m + ".") for o in wanted)}
        graph[name].discard(name)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for succ in sorted(graph.get(node, ())):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_module_imports_itself_through_others() -> None:
    assert cycles(import_graph()) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]


@pytest.mark.parametrize("package", PACKAGES)
def test_no_folder_is_wider_than_a_newcomer_can_scan(package: str) -> None:
    for folder in [ROOT / package, *(p.parent for p in (ROOT / package).rglob("*/__init__.py"))]:
        modules = [p for p in folder.glob("*.py") if p.name != "__init__.py"]
        assert len(modules) <= WIDEST_FOLDER, (folder, len(modules))


@pytest.mark.parametrize("package", PACKAGES)
def test_every_subpackage_says_what_it_is_for(package: str) -> None:
    for init in sorted((ROOT / package).rglob("__init__.py")):
        docstring = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8")))
        assert docstring, f"{init.relative_to(ROOT)} has no docstring"


def modules_of_tests_used(path: Path, name: str) -> list[str]:
    """The ``tests`` modules ``path`` imports anywhere in its body, or names as a string
    (``python -m tests.x`` in a subprocess, ``importlib.import_module("tests.x")``)."""
    named = list(imported_names(path, name))
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            named.append(node.value)
    return sorted({n for n in named if TESTS_MODULE.fullmatch(n)})


def test_the_benchmarks_use_nothing_of_the_tests() -> None:
    """bench/ measures the product: what it needs lives in the packages or in bench/."""
    used = {
        str(path.relative_to(ROOT)): modules_of_tests_used(path, module_name(path))
        for path in sorted((ROOT / "bench").rglob("*.py"))
    }
    assert {path: names for path, names in used.items() if names} == {}


def test_a_use_of_the_tests_is_found_wherever_it_is(tmp_path: Path) -> None:
    source = tmp_path / "bench_like.py"
    source.write_text(
        "def later():\n"
        "    from tests.support import backend\n"
        "    subprocess.run(['python', '-m', 'tests.support.fake_comprehend'])\n",
        encoding="utf-8",
    )
    found = modules_of_tests_used(source, "bench.bench_like")
    assert found == ["tests.support", "tests.support.backend", "tests.support.fake_comprehend"]
