"""One file, run twice directly and once through the proxy, each after a reset.

The outcome says whether the file fits (runs cleanly directly), whether it is deterministic
(the two direct outputs agree) and whether the proxy's output is identical to the direct one.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path

from tests.oracle.mariadb_suite.environment import SuiteServer
from tests.oracle.mariadb_suite.runner import RunResult, run_file

UNFIT, NONDETERMINISTIC, IDENTICAL, DIFFERENT = (
    "unfit",
    "nondeterministic",
    "identical",
    "different",
)


@dataclass(frozen=True)
class Outcome:
    name: str
    verdict: str  # UNFIT, NONDETERMINISTIC, IDENTICAL or DIFFERENT
    detail: str = ""  # why unfit; for DIFFERENT the unified diff, direct -> proxy
    seconds: float = 0.0

    def first_lines(self, count: int = 6) -> list[str]:
        """The runner's complaint, if any, then the first changed lines of the diff."""
        lines = self.detail.splitlines()
        notes = [line for line in lines if line.startswith("# ")]
        changed = [
            line
            for line in lines
            if line.startswith(("+", "-")) and not line.startswith(("+++", "---"))
        ]
        return (notes + changed)[:count]


def unified_diff(direct: str, proxied: str, name: str) -> str:
    return "".join(
        difflib.unified_diff(
            direct.splitlines(keepends=True),
            proxied.splitlines(keepends=True),
            fromfile=f"{name} (direct)",
            tofile=f"{name} (through the proxy)",
        )
    )


def _run(suite: SuiteServer, name: str, port: int, workdir: Path, timeout: float) -> RunResult:
    suite.reset()
    return run_file(
        name,
        "127.0.0.1",
        port,
        workdir,
        socket_path=suite.server.socket_path,
        timeout=timeout,
    )


def direct_run(suite: SuiteServer, name: str, workdir: Path, timeout: float = 300) -> RunResult:
    return _run(suite, name, suite.direct_port, workdir / "direct", timeout)


def proxy_run(suite: SuiteServer, name: str, workdir: Path, timeout: float = 300) -> RunResult:
    return _run(suite, name, suite.proxy_port, workdir / "proxy", timeout)


def proxy_verdict(name: str, direct: RunResult, proxied: RunResult) -> Outcome:
    """IDENTICAL when the proxy recorded what the direct run did, else DIFFERENT with the diff."""
    if proxied.output == direct.output and proxied.returncode == direct.returncode:
        return Outcome(name, IDENTICAL)
    diff = unified_diff(direct.output, proxied.output, name)
    if proxied.returncode != direct.returncode:
        diff += (
            f"\n# exit code {direct.returncode} directly, {proxied.returncode} through the proxy"
        )
        diff += f"\n# runner's log through the proxy: {proxied.failure()}\n"
    return Outcome(name, DIFFERENT, diff)


def compare_file(suite: SuiteServer, name: str, workdir: Path, timeout: float = 300) -> Outcome:
    """Run ``name`` directly twice and through the proxy once; the verdict."""
    first = direct_run(suite, name, workdir, timeout)
    if not first.ok:
        reason = "skipped" if first.skipped else f"fails directly (exit {first.returncode})"
        return Outcome(name, UNFIT, f"{reason}: {first.failure()}")
    second = direct_run(suite, name, workdir, timeout)
    if second.output != first.output:
        return Outcome(name, NONDETERMINISTIC, unified_diff(first.output, second.output, name))
    return proxy_verdict(name, first, proxy_run(suite, name, workdir, timeout))
