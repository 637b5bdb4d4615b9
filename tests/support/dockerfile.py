"""Reading deploy/Dockerfile and .dockerignore as Docker does, so tests can check the image
without a container engine: the stages and their instructions, the exec-form commands,
the environment, the ``RUN --mount`` flags, and which files the build context holds.

Only what this project's files use is understood (no heredocs, no ONBUILD, no escape
directive); anything else fails loudly rather than being misread.
"""

from __future__ import annotations

import json
import os
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"


@dataclass(frozen=True)
class Instruction:
    keyword: str  # upper case: RUN, COPY, ENV...
    arguments: str


@dataclass
class Stage:
    image: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def arguments(self, keyword: str) -> list[str]:
        return [i.arguments for i in self.instructions if i.keyword == keyword]

    def last(self, keyword: str) -> str:
        found = self.arguments(keyword)
        assert found, f"stage {self.name or self.image} has no {keyword}"
        return found[-1]


def logical_lines(text: str) -> list[str]:
    """Instructions one per line: comments dropped, backslash continuations joined."""
    lines: list[str] = []
    pending = ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if stripped.startswith("#") or (not stripped and not pending):
            continue  # Docker drops comment lines even inside a continuation
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        lines.append(pending + stripped)
        pending = ""
    assert not pending, "the Dockerfile ends inside a continuation"
    return lines


def parse_dockerfile(text: str) -> list[Stage]:
    """The stages, with ``${ARG}`` defaults declared before the first FROM substituted
    into the FROM lines."""
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in logical_lines(text):
        keyword, _, rest = line.partition(" ")
        keyword, rest = keyword.upper(), rest.strip()
        if keyword == "ARG" and not stages:
            name, _, default = rest.partition("=")
            args[name] = default
        elif keyword == "FROM":
            words = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], rest).split()
            named = len(words) == 3 and words[1].upper() == "AS"
            assert len(words) == 1 or named, f"unexpected FROM {rest!r}"
            stages.append(Stage(words[0], words[2] if named else None))
        else:
            assert stages, f"{keyword} before the first FROM"
            stages[-1].instructions.append(Instruction(keyword, rest))
    return stages


def exec_form(arguments: str) -> list[str]:
    """A JSON-array command (CMD, ENTRYPOINT, HEALTHCHECK's CMD); AssertionError for the
    shell form, which would put /bin/sh in front of the process as PID 1."""
    assert arguments.startswith("["), f"not in exec form: {arguments!r}"
    command = json.loads(arguments)
    assert isinstance(command, list) and all(isinstance(word, str) for word in command)
    return command


def split_options(arguments: str) -> tuple[dict[str, str], str]:
    """``--interval=15s --mount=... rest`` -> ({"interval": "15s", ...}, "rest")
    (a repeated option's values joined by a blank line)."""
    options: dict[str, str] = {}
    words = arguments.split()
    while words and words[0].startswith("--"):
        name, _, value = words.pop(0)[2:].partition("=")
        options[name] = f"{options[name]}\n{value}" if name in options else value
    return options, " ".join(words).strip()


def mounts(arguments: str) -> list[dict[str, str]]:
    """The ``--mount=type=bind,from=...,source=...,target=...`` flags of a RUN."""
    options, _ = split_options(arguments)
    values = options.get("mount", "").splitlines()
    return [dict(pair.split("=", 1) for pair in value.split(",")) for value in values if value]


def environment(stage: Stage, base: dict[str, str]) -> dict[str, str]:
    """The stage's ENV over ``base`` (``$NAME`` and ``${NAME}`` expanded as Docker does)."""
    env = dict(base)
    for arguments in stage.arguments("ENV"):
        for pair in shlex.split(arguments):
            name, sep, value = pair.partition("=")
            assert sep, f"ENV in the legacy 'NAME value' form: {arguments!r}"
            env[name] = re.sub(r"\$\{?(\w+)\}?", lambda m: env.get(m.group(1), ""), value)
    return env


# -- .dockerignore ----------------------------------------------------------------------


@dataclass(frozen=True)
class IgnoreRule:
    pattern: str
    regex: re.Pattern[str]
    keep: bool  # a ``!`` exception


def _glob_regex(pattern: str) -> re.Pattern[str]:
    """Go's filepath.Match, plus ``**`` for any number of folders (Docker's rules)."""
    out = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        elif pattern[i] == "[":
            end = pattern.index("]", i)
            out, i = out + pattern[i : end + 1], end + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out)


def ignore_rules(text: str) -> list[IgnoreRule]:
    rules = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keep = line.startswith("!")
        pattern = os.path.normpath(line.lstrip("!").strip()).lstrip("/")
        rules.append(IgnoreRule(pattern, _glob_regex(pattern), keep))
    return rules


def excluded(path: str, rules: list[IgnoreRule]) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parent folders
    decides."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    verdict = False
    for rule in rules:
        if any(rule.regex.fullmatch(prefix) for prefix in prefixes):
            verdict = not rule.keep
    return verdict


def context_files(root: Path = ROOT, rules: list[IgnoreRule] | None = None) -> list[str]:
    """The files ``docker build`` sends from ``root`` (paths relative to it, sorted)."""
    if rules is None:
        rules = ignore_rules(DOCKERIGNORE.read_text(encoding="utf-8"))
    exceptions = [rule.pattern for rule in rules if rule.keep]
    found = []
    for folder, dirs, files in os.walk(root):
        here = os.path.relpath(folder, root)
        here = "" if here == "." else here + "/"
        # Skip an excluded folder unless an exception may re-include something inside.
        dirs[:] = [
            d
            for d in dirs
            if not excluded(here + d, rules)
            or any(p.startswith(here + d + "/") for p in exceptions)
        ]
        found += [here + f for f in files if not excluded(here + f, rules)]
    return sorted(found)
