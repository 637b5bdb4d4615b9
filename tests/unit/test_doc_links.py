"""Every relative link and anchor in README.md and docs/*.md resolves, as GitHub renders
them (issue 16: the README became a quickstart linking reference pages), and the README's
first screen is the quickstart."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
#: ``[text](target)`` outside code; images too (``![alt](target)``).
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6} (.+?)\s*#*\s*$")
#: Lines a reader sees before scrolling.
FIRST_SCREEN = 45


def prose(text: str) -> list[str]:
    """The lines outside fenced code blocks, with inline code blanked."""
    lines, fenced = [], False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        if not fenced:
            lines.append(re.sub(r"`[^`]*`", "``", line))
    return lines


def github_anchor(heading: str) -> str:
    """The id GitHub gives a heading: lower case, markup and punctuation dropped, spaces
    to hyphens.

    >>> github_anchor("Aliases from the shell: `mlproxy functions`")
    'aliases-from-the-shell-mlproxy-functions'
    >>> github_anchor("Scaling out: replicas behind a load balancer")
    'scaling-out-replicas-behind-a-load-balancer'
    """
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link's text only
    text = re.sub(r"[^\w\- ]", "", text.strip().lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """The heading ids of a page; a repeated heading gets -1, -2... as on GitHub."""
    seen: dict[str, int] = {}
    found = set()
    fenced = False
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        match = None if fenced else HEADING.match(line)
        if match:
            base = github_anchor(match.group(1))
            count = seen.get(base, 0)
            seen[base] = count + 1
            found.add(base if count == 0 else f"{base}-{count}")
    return found


def broken_links(page: Path) -> list[str]:
    """The page's relative links whose file or anchor does not exist."""
    broken = []
    for line in prose(page.read_text(encoding="utf-8")):
        for target in LINK.findall(line):
            if re.match(r"[a-z][a-z0-9+.-]*:", target):  # http:, mailto:...
                continue
            name, _, anchor = target.partition("#")
            linked = (page.parent / name).resolve() if name else page
            if not linked.exists():
                broken.append(f"{target}: no file {linked}")
            elif anchor and (linked.suffix != ".md" or anchor not in anchors(linked)):
                broken.append(f"{target}: no heading #{anchor} in {linked.name}")
    return broken


def test_anchors_are_githubs() -> None:
    assert github_anchor("Aliases from the shell: `mlproxy functions`") == (
        "aliases-from-the-shell-mlproxy-functions"
    )
    assert github_anchor("Endpoint aliases: your own models") == "endpoint-aliases-your-own-models"
    assert github_anchor("Memory on the ML path") == "memory-on-the-ml-path"
    assert github_anchor("A 30-second tour") == "a-30-second-tour"


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_every_relative_link_and_anchor_resolves(page: Path) -> None:
    assert broken_links(page) == []


def test_the_checker_finds_a_broken_file_and_a_broken_anchor(tmp_path: Path) -> None:
    (tmp_path / "other.md").write_text("# Known limits\n\n## Known limits\n", encoding="utf-8")
    page = tmp_path / "page.md"
    page.write_text(
        "# Top\n[ok](other.md#known-limits-1) [ok](#top) [web](https://example.com/#x)\n"
        "`[code](missing.md)`\n```\n[fenced](missing.md)\n```\n"
        "[gone](missing.md) [bad](other.md#nowhere) [self](#nope)\n",
        encoding="utf-8",
    )
    assert [b.split(":")[0] for b in broken_links(page)] == [
        "missing.md",
        "other.md#nowhere",
        "#nope",
    ]


def test_every_docs_page_is_linked_from_the_readme() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    linked = {target.partition("#")[0] for line in prose(readme) for target in LINK.findall(line)}
    for page in PAGES[1:]:
        assert str(page.relative_to(ROOT)) in linked, page.name


def test_the_readmes_first_screen_is_the_quickstart() -> None:
    first = "\n".join((ROOT / "README.md").read_text(encoding="utf-8").splitlines()[:FIRST_SCREEN])
    assert "./dev demo" in first and "./dev test" in first
    assert "## A 30-second tour" in first
    assert "aws_comprehend_detect_sentiment(" in first and "ALIAS AWS_SAGEMAKER" in first
