"""One ``mariadb-test`` run of one test file in record mode against one host and port.

The command line is MariaDB's own (``mariadb-test --record``), with the environment variables
``mysql-test-run`` would set that the files read (``MYSQLTEST_VARDIR``, ``MASTER_MYPORT`` ...)
pointing at a fresh directory per run. ``--protocol=tcp`` applies to every connection a file
opens (``connect (con1,localhost,root,,)``), so those go through the proxy too.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.oracle.mariadb_suite.selection import BASEDIR, test_path

#: ``mariadb-test``'s exit code when a file skips itself (a ``have_*`` include said no).
SKIPPED = 62
#: The account the files expect: root without a password, as mysql-test-run sets it up.
TEST_USER = "root"


def mariadb_test_binary() -> str | None:
    """The installed runner (``mysqltest`` on older packages), or None."""
    return shutil.which("mariadb-test") or shutil.which("mysqltest")


@dataclass(frozen=True)
class RunResult:
    """What one run recorded: its exit code, the result file's text, and the runner's log."""

    name: str
    returncode: int
    output: str
    log: str

    @property
    def skipped(self) -> bool:
        return self.returncode == SKIPPED

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def failure(self) -> str:
        """The last lines of the runner's log: why the file skipped or failed."""
        return " | ".join(self.log.strip().splitlines()[-3:])


def _environment(vardir: Path, port: int, socket_path: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        MYSQLTEST_VARDIR=str(vardir),
        MYSQL_TEST_DIR=str(BASEDIR),
        MYSQL_TMP_DIR=str(vardir / "tmp"),
        MASTER_MYPORT=str(port),
        MASTER_MYSOCK=socket_path,
    )
    return env


def run_file(
    name: str, host: str, port: int, workdir: Path, *, socket_path: str = "", timeout: float = 300
) -> RunResult:
    """Run ``main/<name>.test`` against ``host:port``; ``workdir`` is emptied and reused."""
    shutil.rmtree(workdir, ignore_errors=True)
    vardir = workdir / "var"
    for sub in ("tmp", "log", "std_data"):
        (vardir / sub).mkdir(parents=True)
    result_file = workdir / f"{name}.result"
    command = [
        mariadb_test_binary() or "mariadb-test",
        f"--host={host}",
        f"--port={port}",
        f"--user={TEST_USER}",
        "--database=test",
        "--protocol=tcp",
        f"--basedir={BASEDIR}/",
        f"--tmpdir={vardir / 'tmp'}",
        f"--test-file={test_path(name)}",
        f"--result-file={result_file}",
        "--record",
        "--silent",
    ]
    # The files name includes and .require files relative to the suite's directory.
    try:
        done = subprocess.run(
            command,
            cwd=BASEDIR,
            env=_environment(vardir, port, socket_path),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return RunResult(name, -1, "", f"timed out after {timeout:.0f} s")
    output = (
        result_file.read_text(encoding="utf-8", errors="replace") if result_file.exists() else ""
    )
    log = (done.stdout + done.stderr).decode("utf-8", errors="replace")
    return RunResult(name, done.returncode, output, log)
