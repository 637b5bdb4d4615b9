"""The clients that generate load: sysbench (C, libmariadb) and the ``mariadb`` CLI, with
PyMySQL fallbacks (in processes, not threads) for machines that lack them."""

from __future__ import annotations

import logging
import multiprocessing
import os
import random
import re
import shutil
import statistics
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pymysql

from bench.dataset import POINT_TABLE, STREAM_TABLE, Endpoint, connect

log = logging.getLogger(__name__)

CONNECT_SCRIPT = str(Path(__file__).with_name("connect.lua"))
_TRANSACTIONS = re.compile(r"transactions:\s+(\d+)\s+\(([\d.]+) per sec")
_QUERIES = re.compile(r"queries:\s+(\d+)\s+\(([\d.]+) per sec")
_HISTOGRAM_ROW = re.compile(r"^\s*([\d.]+)\s+\|\**\s+(\d+)\s*$", re.MULTILINE)
_ERRORS = re.compile(r"ignored errors:\s+(\d+)")


@dataclass(frozen=True)
class Load:
    """Events (queries, or connections) per second, and latency percentiles in ms."""

    rate: float
    p50_ms: float
    p95_ms: float


@dataclass(frozen=True)
class Stream:
    """One read of the big SELECT: rows received, seconds to the first byte and in all."""

    rows: int
    first_row_s: float
    total_s: float


def has_sysbench() -> bool:
    return shutil.which("sysbench") is not None


def cli_binary() -> str | None:
    return shutil.which("mariadb") or shutil.which("mysql")


# -- sysbench ---------------------------------------------------------------------------


def _percentile(histogram: Sequence[tuple[float, int]], fraction: float) -> float:
    """The bucket value below which ``fraction`` of the events fall."""
    total = sum(count for _, count in histogram)
    seen = 0
    for value, count in histogram:
        seen += count
        if seen >= fraction * total:
            return value
    return histogram[-1][0] if histogram else float("nan")


def parse_sysbench(output: str, per_query: bool = False) -> Load:
    """Rate from the 'transactions' line (or 'queries' with ``per_query``: an
    oltp_read_only transaction is 16 queries, and queries per second is what compares
    with point selects); p50/p95 (of transactions) from the latency histogram."""
    match = (_QUERIES if per_query else _TRANSACTIONS).search(output)
    errors = _ERRORS.search(output)
    if match is None or "FATAL" in output or (errors and int(errors.group(1))):
        raise RuntimeError(f"sysbench failed: {output[-3000:]}")
    histogram = [(float(v), int(n)) for v, n in _HISTOGRAM_ROW.findall(output)]
    return Load(float(match.group(2)), _percentile(histogram, 0.5), _percentile(histogram, 0.95))


def _sysbench(
    script: str,
    endpoint: Endpoint,
    threads: int,
    seconds: float,
    *extra: str,
    per_query: bool = False,
) -> Load:
    cmd = [
        "sysbench",
        script,
        "--db-driver=mysql",
        f"--mysql-host={endpoint.host}",
        f"--mysql-port={endpoint.port}",
        f"--mysql-user={endpoint.user}",
        f"--mysql-password={endpoint.password}",
        f"--mysql-db={endpoint.database}",
        f"--threads={threads}",
        f"--time={max(1, round(seconds))}",
        "--histogram=on",
        *extra,
        "run",
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 120, check=False)
    if done.returncode != 0:
        raise RuntimeError(
            f"sysbench exited {done.returncode}: {(done.stdout + done.stderr)[-3000:]}"
        )
    return parse_sysbench(done.stdout, per_query)


def point_selects(
    endpoint: Endpoint, threads: int, seconds: float, prepared: bool, table_size: int
) -> Load:
    """sysbench oltp_point_select: text protocol, or server-side prepared statements."""
    if not has_sysbench():
        if prepared:
            raise RuntimeError("prepared statements need sysbench")
        return _py_point_selects(endpoint, threads, seconds, table_size)
    return _sysbench(
        "oltp_point_select",
        endpoint,
        threads,
        seconds,
        *_table_options(prepared, table_size),
    )


def read_only(
    endpoint: Endpoint, threads: int, seconds: float, prepared: bool, table_size: int
) -> Load:
    """sysbench oltp_read_only (BEGIN, 10 point selects, 4 range selects, COMMIT), in
    queries per second; its latency percentiles are per transaction."""
    return _sysbench(
        "oltp_read_only",
        endpoint,
        threads,
        seconds,
        *_table_options(prepared, table_size),
        per_query=True,
    )


def _table_options(prepared: bool, table_size: int) -> tuple[str, ...]:
    return (
        "--tables=1",
        f"--table-size={table_size}",
        f"--db-ps-mode={'auto' if prepared else 'disable'}",
    )


def connections(endpoint: Endpoint, seconds: float) -> Load:
    """Connections opened and closed per second by one client, one after another."""
    if not has_sysbench():
        return _py_connections(endpoint, seconds)
    return _sysbench(CONNECT_SCRIPT, endpoint, 1, seconds)


# -- the big SELECT ---------------------------------------------------------------------


def _plaintext_flags(client: str) -> list[str]:
    """Options that keep the CLI off TLS, as sysbench is: the proxy offers TLS, the
    embedded backend does not, and the comparison must not weigh TLS on one side only."""
    version = subprocess.run([client, "--version"], capture_output=True, text=True, check=False)
    if "mariadb" in version.stdout.lower():
        return ["--skip-ssl"]
    return ["--ssl-mode=DISABLED", "--get-server-public-key"]  # Oracle's mysql client


def stream(endpoint: Endpoint) -> Stream:
    """Read the big table with the CLI (--quick: row by row), counting the lines it prints.

    Without a CLI, PyMySQL's unbuffered cursor reads it (much slower: Python decodes rows).
    """
    client = cli_binary()
    if client is None:
        return _py_stream(endpoint)
    cmd = [
        client,
        "--no-defaults",
        *_plaintext_flags(client),
        f"--host={endpoint.host}",
        f"--port={endpoint.port}",
        f"--user={endpoint.user}",
        f"--password={endpoint.password}",
        f"--database={endpoint.database}",
        "--quick",
        "--batch",
        "--skip-column-names",
        f"--execute=SELECT * FROM {STREAM_TABLE}",
    ]
    started = time.perf_counter()
    first, lines = 0.0, 0
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as process:
        assert process.stdout is not None and process.stderr is not None
        while chunk := os.read(process.stdout.fileno(), 1 << 20):
            if not lines:
                first = time.perf_counter() - started
            lines += chunk.count(b"\n")
        error = process.stderr.read()
    total = time.perf_counter() - started
    if process.returncode != 0:
        raise RuntimeError(f"{client} exited {process.returncode}: {error[-2000:]!r}")
    return Stream(lines, first, total)


# -- PyMySQL fallbacks --------------------------------------------------------------------


def _py_select_worker(
    endpoint: Endpoint, seconds: float, table_size: int, out: multiprocessing.Queue[list[float]]
) -> None:
    latencies: list[float] = []
    with connect(endpoint) as conn, conn.cursor() as cur:
        deadline = time.perf_counter() + seconds
        while (now := time.perf_counter()) < deadline:
            cur.execute(
                f"SELECT c FROM {POINT_TABLE} WHERE id = %s", (random.randint(1, table_size),)
            )
            cur.fetchall()
            latencies.append(time.perf_counter() - now)
    out.put(latencies)


def _py_point_selects(endpoint: Endpoint, processes: int, seconds: float, table_size: int) -> Load:
    queue: multiprocessing.Queue[list[float]] = multiprocessing.Queue()
    workers = [
        multiprocessing.Process(
            target=_py_select_worker, args=(endpoint, seconds, table_size, queue)
        )
        for _ in range(processes)
    ]
    for worker in workers:
        worker.start()
    latencies: list[float] = []
    for _ in workers:
        latencies += queue.get(timeout=seconds + 60)
    for worker in workers:
        worker.join()
    return _load(latencies, seconds)


def _load(latencies: list[float], seconds: float) -> Load:
    cuts = statistics.quantiles(latencies, n=100)
    return Load(len(latencies) / seconds, cuts[49] * 1000, cuts[94] * 1000)


def _py_connections(endpoint: Endpoint, seconds: float) -> Load:
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds
    while (now := time.perf_counter()) < deadline:
        connect(endpoint).close()
        latencies.append(time.perf_counter() - now)
    return _load(latencies, seconds)


def _py_stream(endpoint: Endpoint) -> Stream:
    started = time.perf_counter()
    first, rows = 0.0, 0
    with connect(endpoint, cursorclass=pymysql.cursors.SSCursor) as conn, conn.cursor() as cur:
        cur.execute(f"SELECT * FROM {STREAM_TABLE}")
        for _ in cur:
            if not rows:
                first = time.perf_counter() - started
            rows += 1
    return Stream(rows, first, time.perf_counter() - started)
