"""The documentation (README.md, a quickstart, and the reference in docs/*.md) documents
every setting and command the code has (and no stale ones)."""

from __future__ import annotations

import re
from pathlib import Path

from proxy.cli.main import DOCS_PAGES, build_parser
from proxy.config import ENV_PREFIX, settings

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
#: The settings' reference page.
CONFIGURATION = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
DOCS = README + "".join(p.read_text(encoding="utf-8") for p in sorted((ROOT / "docs").glob("*.md")))


def readme_settings_table() -> dict[str, str]:
    """Rows of the settings table: first cell (names) -> the whole row."""
    rows = {}
    for line in CONFIGURATION.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 5 and cells[1].startswith("`--"):
            rows[cells[0]] = line
    return rows


def test_every_setting_has_a_readme_row_with_its_flag_and_variable() -> None:
    rows = " ".join(readme_settings_table().values())
    for f in settings():
        assert f"--{f.name.replace('_', '-')}" in rows, f.name
        assert f"{ENV_PREFIX}{f.name.upper()}" in rows, f.name


def test_readme_documents_no_setting_the_code_lacks() -> None:
    known = {f.name for f in settings()}
    for names in readme_settings_table():
        for name in re.split(r",\s*", names):
            assert name in known, f"docs/configuration.md documents unknown setting {name!r}"


def test_every_cli_command_is_documented() -> None:
    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.dest == "command")
    for command in subparsers.choices:  # type: ignore[union-attr]
        assert f"mlproxy {command}" in DOCS or f"./dev {command}" in DOCS, command


def test_readme_names_the_test_command_ci_runs() -> None:
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "./dev test" in ci
    assert "./dev test" in README


def test_deploy_example_config_is_valid() -> None:
    from proxy.config import load_config

    path = ROOT / "deploy" / "mlproxy.toml"
    config = load_config({}, env={}, config_file=str(path))
    assert config.listen == "0.0.0.0:6033"


def test_each_commands_help_points_to_a_page_that_exists() -> None:
    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.dest == "command")
    commands = subparsers.choices
    assert isinstance(commands, dict)
    assert set(DOCS_PAGES) == {"mlproxy", *commands}
    helps = {"mlproxy": parser.format_help()}
    helps |= {name: command.format_help() for name, command in commands.items()}
    for name, text in helps.items():
        text = " ".join(text.split())
        (page,) = re.findall(r"Documentation: ([\w/.]+)", text)
        assert (ROOT / page).exists(), (name, page)
