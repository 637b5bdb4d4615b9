"""`mlproxy demo`: a throwaway backend, the example tables, the proxy; all gone on SIGTERM."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pymysql
import pytest

from proxy.demo import DEMO_DATABASE, DEMO_PASSWORD, DEMO_USER

REPO = Path(__file__).resolve().parents[1]
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


@pytest.mark.slow
def test_demo_serves_the_example_tables_and_cleans_up() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "proxy", "demo", "--listen", "127.0.0.1:0"],
        cwd=REPO,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        port, log = wait_for_port(process)
        backend_port = int(re.search(r"backend 127\.0\.0\.1:(\d+)", log).group(1))  # type: ignore[union-attr]
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
        expected = (REPO / "examples" / "comments.sql").read_text(encoding="utf-8")
        assert len(texts) == 5
        assert all(f"'{text}'" in expected for text in texts)
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
