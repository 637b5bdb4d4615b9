"""`mlproxy demo`: a throwaway backend, the example tables, the proxy; all gone on SIGTERM."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pymysql
import pytest

from examples.churn import model
from examples.churn.schema import FALSE, TRUE
from proxy.cli.demo import DEMO_DATABASE, DEMO_PASSWORD, DEMO_USER

REPO = Path(__file__).resolve().parents[2]
READY = re.compile(r"-P (\d+) -u " + DEMO_USER)


def wait_for_port(process: subprocess.Popen[str], timeout: float = 60) -> tuple[int, str]:
    """Read stderr until the demo announces its port; return it and what was read."""
    assert process.stderr is not None
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        if not line:
            break
        seen.append(line)
        match = READY.search(line)
        if match:
            return int(match.group(1)), "".join(seen)
    raise AssertionError("demo did not become ready:\n" + "".join(seen))


def read_until(process: subprocess.Popen[str], marker: str, timeout: float = 30) -> str:
    """The demo's stderr up to and with the line holding ``marker``."""
    assert process.stderr is not None
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        seen.append(line)
        if not line or marker in line:
            break
    return "".join(seen)


def run_announced_explain(announced: str) -> str:
    """Run the `mlproxy explain` line the demo prints, as pasted; return its output."""
    lines = announced.splitlines()
    command = lines[next(i for i, x in enumerate(lines) if "would send" in x) + 1]
    argv = shlex.split(command)
    assert argv[0].endswith("mlproxy") and argv[1] == "explain", command
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout


def outside_the_checkout(folder: Path) -> Path:
    """A working directory holding only links to this checkout's packages: the demo runs
    this checkout's code but, as from ./dev demo's console script, nothing puts examples/
    on sys.path for it (the demo has to)."""
    for package in ("proxy", "rewriter", "ml_backends"):
        (folder / package).symlink_to(REPO / package, target_is_directory=True)
    return folder


def churn_counts(port: int) -> dict[str, int]:
    """examples/queries/churn.sql through the demo with the mariadb CLI, as the README
    says: the per-prediction counts it prints."""
    client = shutil.which("mariadb") or shutil.which("mysql")
    assert client, "the mariadb client is installed by ./dev"
    command = [client, "--protocol=tcp", "-h", "127.0.0.1", "-P", str(port), "--batch"]
    command += ["-u", DEMO_USER, f"-p{DEMO_PASSWORD}", DEMO_DATABASE]
    with (REPO / "examples" / "queries" / "churn.sql").open("rb") as stdin:
        done = subprocess.run(command, stdin=stdin, capture_output=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr.decode()
    fields = [line.split("\t") for line in done.stdout.decode().splitlines()]
    return {row[0]: int(row[1]) for row in fields if len(row) == 2 and row[0] in (TRUE, FALSE)}


@pytest.mark.slow
def test_demo_serves_the_example_tables_and_cleans_up(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "proxy", "demo", "--listen", "127.0.0.1:0"],
        cwd=outside_the_checkout(tmp_path),
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        port, log = wait_for_port(process)
        announced = read_until(process, "Stop with Ctrl-C.")
        # What to try next: each example query file, as a command to paste; the tables
        # the examples query, with their columns.
        for path in sorted((REPO / "examples" / "queries").glob("*.sql")):
            assert f"{DEMO_DATABASE} < {path}" in announced, path
        assert "comments (comment_id, comment_text)" in announced
        assert re.search(r"customers \(.*churn", announced)
        backend_port = int(re.search(r"backend 127\.0\.0\.1:(\d+)", log).group(1))  # type: ignore[union-attr]
        explained = run_announced_explain(announced)
        assert "CAST(ELT(FIELD(" in explained and "5 distinct input(s)" in explained
        with (
            pymysql.connect(
                host="127.0.0.1",
                port=port,
                user=DEMO_USER,
                password=DEMO_PASSWORD,
                database=DEMO_DATABASE,
            ) as conn,
            conn.cursor() as cur,
        ):
            cur.execute("SELECT comment_text FROM comments ORDER BY comment_id")
            texts = [row[0] for row in cur.fetchall()]
            cur.execute("SELECT COUNT(*), SUM(churn = 'True.') FROM customers")
            customers = cur.fetchone()
        expected = (REPO / "examples" / "comments.sql").read_text(encoding="utf-8")
        assert len(texts) == 5
        assert all(f"'{text}'" in expected for text in texts)
        rows, labels = model.load_data()
        assert len(rows) == 3333 and customers == (len(rows), sum(labels))
        assert churn_counts(port) == Counter(model.predict(rows))  # type: ignore[arg-type]
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
        with pytest.raises(pymysql.err.OperationalError):
            pymysql.connect(host="127.0.0.1", port=backend_port, user="x", connect_timeout=2)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stderr is not None:
            process.stderr.close()
