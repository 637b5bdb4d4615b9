"""Which test files fit a run against a plain server, and the lists kept in the repository.

A file fits when neither it nor anything it sources runs programs (``exec``, ``system``,
``perl``), restarts or shuts the server down, needs a debug build, or needs server options
(``.opt``, ``.cnf``, ``.combinations`` files beside it). Files that skip themselves at run time
(``have_*`` includes the server lacks: ``mariadb-test`` exits with code 62) or fail directly are
found by running them (``runner``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

SUITE_DIR = Path(__file__).parent
DETERMINISTIC_LIST = SUITE_DIR / "deterministic.txt"
KNOWN_DIFFERENCES_LIST = SUITE_DIR / "known_differences.txt"
BASEDIR = Path("/usr/share/mysql/mysql-test")

#: Files beside ``main/X.test`` that mean X needs server options or several configurations.
_OPTION_SUFFIXES = (".opt", "-master.opt", "-slave.opt", ".cnf", ".combinations")
#: Commands that run programs or stop the server (a leading ``--`` is optional in mysqltest).
_UNFIT_COMMAND = re.compile(
    r"^\s*(?:--\s*)?(?:exec|exec_in_background|system|perl|shutdown_server|send_shutdown)\b",
    re.IGNORECASE | re.MULTILINE,
)
#: Includes naming restarts, debug builds, replication or other servers.
_UNFIT_INCLUDE = re.compile(
    r"restart|kill_|shutdown|start_mysqld|have_debug|master-slave|rpl_|galera|wsrep"
    r"|big_test",
    re.IGNORECASE,
)
_SOURCE = re.compile(r"^\s*(?:--\s*)?source\s+([^\s;]+)", re.IGNORECASE | re.MULTILINE)


def test_path(name: str, basedir: Path = BASEDIR) -> Path:
    return basedir / "main" / f"{name}.test"


def all_names(basedir: Path = BASEDIR) -> list[str]:
    """Every test file of the main suite, by name (``sp-cursor`` for ``main/sp-cursor.test``)."""
    return sorted(path.stem for path in (basedir / "main").glob("*.test"))


def _resolve_include(reference: str, basedir: Path) -> Path | None:
    """The file a ``source`` line names (relative to the suite's base or main directory)."""
    if "$" in reference:
        return None
    for root in (basedir, basedir / "main"):
        candidate = root / reference
        if candidate.is_file():
            return candidate
    return None


def unfit_reason(name: str, basedir: Path = BASEDIR) -> str | None:
    """Why ``name`` cannot run against a plain server through a proxy, or None if it may."""
    main = basedir / "main"
    for suffix in _OPTION_SUFFIXES:
        if (main / f"{name}{suffix}").exists():
            return f"needs {name}{suffix}"
    return _scan(test_path(name, basedir), basedir, set())


def _scan(path: Path, basedir: Path, seen: set[Path]) -> str | None:
    """The first unfit command or include in ``path`` or what it sources, recursively."""
    seen.add(path)
    text = path.read_text(encoding="utf-8", errors="replace")
    command = _UNFIT_COMMAND.search(text)
    if command:
        return f"{path.name}: {command.group(0).strip()}"
    for reference in _SOURCE.findall(text):
        if _UNFIT_INCLUDE.search(reference):
            return f"{path.name}: sources {reference}"
        included = _resolve_include(reference, basedir)
        if included is not None and included not in seen:
            reason = _scan(included, basedir, seen)
            if reason:
                return reason
    return None


def read_names(path: Path) -> list[str]:
    """Names listed one a line (``#`` starts a comment)."""
    names = []
    for line in path.read_text(encoding="utf-8").splitlines():
        name = line.split("#", 1)[0].strip()
        if name:
            names.append(name)
    return names


@dataclass(frozen=True)
class KnownDifference:
    name: str
    diagnosis: str

    @property
    def flaky(self) -> bool:
        """A difference that comes and goes (row estimates in EXPLAIN): not the proxy's, and
        not required to stay different."""
        return self.diagnosis.startswith("flaky:")


def read_known_differences(path: Path = KNOWN_DIFFERENCES_LIST) -> dict[str, KnownDifference]:
    """``name: diagnosis`` lines (``#`` lines are comments)."""
    known = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, _, diagnosis = line.partition(":")
        known[name.strip()] = KnownDifference(name.strip(), diagnosis.strip())
    return known
