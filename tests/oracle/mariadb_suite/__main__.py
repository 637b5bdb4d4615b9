"""``python -m tests.oracle.mariadb_suite`` (``./dev compat``): MariaDB's test files, direct
vs proxy.

    python -m tests.oracle.mariadb_suite                every file of deterministic.txt
    python -m tests.oracle.mariadb_suite sp-cursor ...  the files named
    python -m tests.oracle.mariadb_suite --calibrate    every file that fits; rewrites
                                                        deterministic.txt

Each file runs twice directly and once through the proxy (a reset before each run). Outcomes are
appended to ``OUT/outcomes.jsonl`` as they come (``--resume`` skips files already there, so a
long calibration can run in chunks), diffs are written to ``OUT/diffs/NAME.diff``, and the
counts are printed at the end: files run, deterministic, identical through the proxy, different
(with their first differing lines), and known differences that became identical.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import asdict
from pathlib import Path

import pymysql

from tests.oracle.mariadb_suite.compare import (
    DIFFERENT,
    IDENTICAL,
    UNFIT,
    Outcome,
    compare_file,
)
from tests.oracle.mariadb_suite.environment import SuiteServer, SystemTablesChanged
from tests.oracle.mariadb_suite.runner import mariadb_test_binary
from tests.oracle.mariadb_suite.selection import (
    DETERMINISTIC_LIST,
    all_names,
    read_known_differences,
    read_names,
    unfit_reason,
)

logger = logging.getLogger("tests.oracle.mariadb_suite")

DEFAULT_OUT = Path("build/mariadb-suite")
_LIST_HEADER = """\
# MariaDB test files (main/NAME.test of Debian's mariadb-test package) whose output is the same
# in two direct runs, each after the reset: the files the proxy's output is compared on.
# Regenerate (about an hour on 2 cores): python -m tests.oracle.mariadb_suite --calibrate
# ({fit} files fit of {total}; {deterministic} deterministic; mariadb-test {version})
"""


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tests.oracle.mariadb_suite", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("names", nargs="*", help="test files to run (default: deterministic.txt)")
    parser.add_argument(
        "--calibrate",
        action="store_true",
        help="run every file that fits and rewrite deterministic.txt",
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"default {DEFAULT_OUT}")
    parser.add_argument("--resume", action="store_true", help="skip files already in OUT")
    parser.add_argument("--timeout", type=float, default=300, help="seconds per run")
    return parser.parse_args(argv)


def _chosen(args: argparse.Namespace) -> list[str]:
    if args.names:
        return list(args.names)
    if args.calibrate:
        return [name for name in all_names() if unfit_reason(name) is None]
    return read_names(DETERMINISTIC_LIST)


def _load(outcomes_file: Path) -> dict[str, Outcome]:
    if not outcomes_file.exists():
        return {}
    outcomes = {}
    for line in outcomes_file.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        outcomes[record["name"]] = Outcome(**record)
    return outcomes


def _run_all(names: list[str], out: Path, done: dict[str, Outcome], timeout: float) -> None:
    """Compare each file not yet in ``done``; append each outcome to OUT as it comes."""
    todo = [name for name in names if name not in done]
    suite = SuiteServer()
    try:
        with (out / "outcomes.jsonl").open("a", encoding="utf-8") as record:
            for index, name in enumerate(todo, 1):
                started = time.monotonic()
                outcome = _compare_or_unfit(suite, name, out / "work", timeout)
                outcome = Outcome(**{**asdict(outcome), "seconds": time.monotonic() - started})
                if not _usable(suite):
                    # The file killed the server or locked the admin out: a fresh one.
                    outcome = Outcome(name, UNFIT, f"leaves the server unusable; {outcome.detail}")
                    suite.stop()
                    suite = SuiteServer()
                done[name] = outcome
                record.write(json.dumps(asdict(outcome)) + "\n")
                record.flush()
                print(
                    f"[{index}/{len(todo)}] {name}: {outcome.verdict} ({outcome.seconds:.1f} s)",
                    flush=True,
                )
    finally:
        suite.stop()


def _compare_or_unfit(suite: SuiteServer, name: str, workdir: Path, timeout: float) -> Outcome:
    """The file's outcome; UNFIT when the reset around it fails (it broke the server)."""
    try:
        return compare_file(suite, name, workdir, timeout)
    except (pymysql.MySQLError, OSError, SystemTablesChanged) as exc:
        return Outcome(name, UNFIT, f"the reset failed: {exc}")


def _usable(suite: SuiteServer) -> bool:
    """Whether the server is up and the reset works."""
    if not suite.alive():
        return False
    try:
        suite.reset()
    except (pymysql.MySQLError, OSError, SystemTablesChanged):
        return False
    return True


def _write_diffs(outcomes: list[Outcome], out: Path) -> None:
    diffs = out / "diffs"
    diffs.mkdir(parents=True, exist_ok=True)
    for outcome in outcomes:
        if outcome.verdict == DIFFERENT:
            (diffs / f"{outcome.name}.diff").write_text(outcome.detail, encoding="utf-8")


def _report(outcomes: list[Outcome], out: Path) -> int:
    """Print the counts and differences; 1 when an unlisted difference or a stale entry shows."""
    counts = Counter(outcome.verdict for outcome in outcomes)
    known = read_known_differences()
    deterministic = counts[IDENTICAL] + counts[DIFFERENT]
    print(
        f"\nfiles run: {len(outcomes)}; fit (run cleanly directly): "
        f"{len(outcomes) - counts[UNFIT]}; deterministic: {deterministic}; "
        f"identical through the proxy: {counts[IDENTICAL]}; different: {counts[DIFFERENT]}"
    )
    status = 0
    for outcome in outcomes:
        if outcome.verdict != DIFFERENT:
            continue
        listed = known.get(outcome.name)
        label = f"known: {listed.diagnosis}" if listed else "NOT in known_differences.txt"
        status |= listed is None
        print(f"\n{outcome.name} ({label})")
        for line in outcome.first_lines():
            print(f"    {line[:160]}")
    for outcome in outcomes:
        if outcome.verdict == IDENTICAL and outcome.name in known and not known[outcome.name].flaky:
            print(f"\n{outcome.name} is identical now: remove it from known_differences.txt")
            status = 1
    print(f"\ndiffs in {out / 'diffs'}/, outcomes in {out / 'outcomes.jsonl'}")
    return status


def _write_list(outcomes: list[Outcome], version: str) -> None:
    deterministic = sorted(o.name for o in outcomes if o.verdict in (IDENTICAL, DIFFERENT))
    header = _LIST_HEADER.format(
        fit=sum(o.verdict != UNFIT for o in outcomes),
        total=len(all_names()),
        deterministic=len(deterministic),
        version=version,
    )
    DETERMINISTIC_LIST.write_text(header + "".join(f"{n}\n" for n in deterministic))
    print(f"wrote {DETERMINISTIC_LIST} ({len(deterministic)} files)")


def main(argv: list[str] | None = None) -> int:
    args = _parse(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.WARNING)
    # A killed run still stops its server and proxy (the finally blocks run on SystemExit).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    binary = mariadb_test_binary()
    if binary is None:
        print("mariadb-test is not installed: apt-get install mariadb-test", file=sys.stderr)
        return 2
    args.out = args.out.resolve()  # the runner works in the suite's directory
    args.out.mkdir(parents=True, exist_ok=True)
    names = _chosen(args)
    done = _load(args.out / "outcomes.jsonl") if args.resume else {}
    if not args.resume:
        (args.out / "outcomes.jsonl").unlink(missing_ok=True)
    _run_all(names, args.out, done, args.timeout)
    outcomes = [done[name] for name in names]
    _write_diffs(outcomes, args.out)
    if args.calibrate and not args.names:
        _write_list(outcomes, _version(binary))
    return _report(outcomes, args.out)


def _version(binary: str) -> str:
    done = subprocess.run([binary, "--version"], capture_output=True, text=True, check=False)
    return done.stdout.strip().split("Distrib ")[-1].split(",")[0]


if __name__ == "__main__":
    sys.exit(main())
