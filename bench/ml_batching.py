"""ML batching benchmark (issue 3): how close batched inference gets to its lower bound.

The workload: ``--rows`` (10,000) distinct texts through a backend that takes
``--latency`` (50 ms) per request, in batches of 25 with 8 requests in flight. No schedule
can beat ceil(ceil(rows / 25) / 8) x latency = 2.5 s; the table gives each path's median
wall time over ``--repeat`` runs and its ratio to that bound (target: within 1.2x):

- engine, sleep backend: the batching engine alone, over a backend that only sleeps;
- engine, aws -> fake: the engine with the real ComprehendBackend (boto3 in threads,
  signing, JSON) against bench.quota_service, without a quota, run as a subprocess with
  that latency;
- SQL via proxy: ``SELECT aws_comprehend_detect_sentiment(txt, 'en'),
  aws_comprehend_detect_sentiment_confidence(txt, 'en') FROM t`` through the proxy as
  deployed (``python -m proxy serve``, bench.services) on a throwaway MariaDB
  (proxy.embedded_db), aws backend -> the same fake, result cache off, every row read by
  the client; its requests from the session's Aurora_ml_actual_request_cnt;
- the same engine paths with one call per row (batch 1), run on ``--single-rows`` rows
  and extrapolated linearly to ``--rows``: with a fixed latency and 8 in flight the time
  is proportional to the request count, so wall x rows / single_rows (the bound scales
  the same way: rows / 8 x latency).

Run from the repository root: ``python -m bench.ml_batching [--rows N] [--repeat R]
[--single-rows N] [--no-sql]``.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Hashable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pymysql

from bench.services import Service, start_service
from ml_backends.aws.comprehend import ComprehendBackend
from ml_backends.base import Backend, Outcome
from ml_backends.engine import BatchPolicy, InferenceEngine
from ml_backends.sentiment import Sentiment, SentimentInput
from proxy.embedded_db import EmbeddedServer, start_embedded_server

BATCH = 25
IN_FLIGHT = 8
TABLE = "ml_bench_texts"
DATABASE = "mlproxy_ml_bench"
WORDS = ("good", "bad", "great and awful", "plain", "love", "hate", "fine")
# Keys for boto3 to sign with: the fake does not check them.
ACCESS_KEY = "AKIDFAKECOMPREHEND"
SECRET_KEY = "fake-comprehend-secret"


@dataclass
class Row:
    """One line of the table."""

    path: str
    rows: int
    requests: int
    seconds: list[float]
    bound: float
    scale: float = 1.0  # extrapolation factor applied to the measured times

    @property
    def median(self) -> float:
        return statistics.median(self.seconds) * self.scale


class SleepBackend(Backend[Hashable]):
    """Answers after ``latency`` seconds, whatever the batch size."""

    name = "sleep"
    max_batch_size = BATCH

    def __init__(self, latency: float) -> None:
        self.latency = latency

    async def infer(self, batch: Sequence[Hashable]) -> list[Outcome]:
        await asyncio.sleep(self.latency)
        return [Sentiment("NEUTRAL", 0.5)] * len(batch)


def bound(rows: int, batch: int, latency: float) -> float:
    """The fastest any schedule can be: full waves of IN_FLIGHT requests."""
    return math.ceil(math.ceil(rows / batch) / IN_FLIGHT) * latency


def texts(rows: int, run: int) -> list[SentimentInput]:
    """Distinct texts, different per run (nothing can be answered from an earlier run)."""
    return [
        SentimentInput(f"run {run} review {i}: {WORDS[i % len(WORDS)]}", "en") for i in range(rows)
    ]


def time_engine(
    backend: Backend[Any], inputs: list[SentimentInput], batch: int
) -> tuple[float, int]:
    """Wall seconds and requests of one engine.infer over ``inputs``."""
    policy = BatchPolicy(max_batch_size=BATCH, max_in_flight=IN_FLIGHT)
    engine = InferenceEngine(backend, policy)

    async def infer() -> float:
        start = time.perf_counter()
        await engine.infer(inputs, namespace="sentiment", batch_size=batch)
        return time.perf_counter() - start

    seconds = asyncio.run(infer())
    return seconds, engine.counters.actual_request_cnt


def measure_engine(
    path: str,
    backend: Backend[Any],
    rows: int,
    batch: int,
    args: argparse.Namespace,
    full_rows: int,
) -> Row:
    time_engine(backend, texts(min(rows, 200), -1), batch)  # warm-up: threads, connections
    row = Row(path, full_rows, 0, [], bound(full_rows, batch, args.latency), full_rows / rows)
    for run in range(args.repeat):
        seconds, requests = time_engine(backend, texts(rows, run), batch)
        row.seconds.append(seconds)
        row.requests = round(requests * row.scale)
    return row


@contextmanager
def fake_comprehend(latency: float) -> Iterator[str]:
    """bench.quota_service in a subprocess (its CPU off this process's GIL); its URL."""
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.quota_service", "--latency", str(latency)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        yield process.stdout.readline().strip()
    finally:
        assert process.stdin is not None
        process.stdin.close()
        process.wait(10)


def use_fake_credentials() -> None:
    """The fake's keys for this process only; nothing from the host's AWS setup."""
    os.environ.update(
        AWS_ACCESS_KEY_ID=ACCESS_KEY,
        AWS_SECRET_ACCESS_KEY=SECRET_KEY,
        AWS_EC2_METADATA_DISABLED="true",
    )
    os.environ.pop("AWS_SESSION_TOKEN", None)


def measure_sql(url: str, args: argparse.Namespace) -> Row:
    """The full statement through the proxy as deployed on a throwaway MariaDB."""
    server = start_embedded_server()
    proxy = _start_proxy(server, url)
    row = Row("SQL via proxy, aws -> fake", args.rows, 0, [], bound(args.rows, BATCH, args.latency))
    try:
        connect = _connector(server, proxy.port)
        for run in range(-1, args.repeat):  # run -1 warms up
            _fill_table(server, texts(args.rows if run >= 0 else 200, run))
            seconds, requests = _time_statement(connect)
            if run >= 0:
                row.seconds.append(seconds)
                row.requests = requests
    finally:
        proxy.stop()
        server.stop()
    return row


def _start_proxy(server: EmbeddedServer, url: str) -> Service:
    """The proxy with the aws backend pointed at the fake, result cache off."""
    backend = f"mysql://{server.host}:{server.port}"
    settings = ["--comprehend-backend", "aws", "--aws-endpoint-url", url]
    settings += ["--aws-region", "us-east-1", "--ml-cache-entries", "0"]
    settings += ["--ml-max-backend-calls", "0"]
    args = ["proxy", "serve", "--listen", "127.0.0.1:0", "--backend", backend, *settings]
    return start_service("proxy", args)


def _connector(server: EmbeddedServer, port: int) -> Callable[[], pymysql.Connection[Any]]:
    def connect() -> pymysql.Connection[Any]:
        return pymysql.connect(
            host="127.0.0.1",
            port=port,
            user=server.admin_user,
            password=server.admin_password,
            database=DATABASE,
            autocommit=True,
        )

    return connect


def _fill_table(server: EmbeddedServer, rows: list[SentimentInput]) -> None:
    with (
        pymysql.connect(
            host=server.host,
            port=server.port,
            user=server.admin_user,
            password=server.admin_password,
        ) as conn,
        conn.cursor() as cur,
    ):
        cur.execute(f"CREATE DATABASE IF NOT EXISTS {DATABASE} CHARACTER SET utf8mb4")
        cur.execute(f"DROP TABLE IF EXISTS {DATABASE}.{TABLE}")
        cur.execute(f"CREATE TABLE {DATABASE}.{TABLE} (id INT PRIMARY KEY, txt TEXT)")
        values = [(i, text) for i, (text, _) in enumerate(rows)]
        cur.executemany(f"INSERT INTO {DATABASE}.{TABLE} VALUES (%s, %s)", values)
        conn.commit()


def _time_statement(connect: Callable[[], pymysql.Connection[Any]]) -> tuple[float, int]:
    """Wall seconds of the statement, and the requests it made (a fresh session's count)."""
    sql = (
        "SELECT aws_comprehend_detect_sentiment(txt, 'en'), "
        f"aws_comprehend_detect_sentiment_confidence(txt, 'en') FROM {TABLE}"
    )
    with connect() as conn, conn.cursor() as cur:
        start = time.perf_counter()
        cur.execute(sql)
        answered = cur.fetchall()
        seconds = time.perf_counter() - start
        cur.execute("SHOW STATUS LIKE 'Aurora_ml_actual_request_cnt'")
        (_, requests) = cur.fetchone() or ("", 0)
    assert all(label is not None for label, _ in answered)
    return seconds, int(requests)


def format_table(rows: list[Row], args: argparse.Namespace) -> str:
    head = f"{'path':<42} {'rows':>6} {'requests':>8} {'median s':>9} {'bound s':>8} {'ratio':>6}"
    lines = [head, "-" * len(head)]
    for row in rows:
        name = row.path + (f" (x{row.scale:g})" if row.scale != 1 else "")
        lines.append(
            f"{name:<42} {row.rows:>6} {row.requests:>8} {row.median:>9.2f} "
            f"{row.bound:>8.2f} {row.median / row.bound:>6.2f}"
        )
    medians = {row.path: row.median for row in rows}
    speedups = [
        f"{path}: {medians[path + ', batch 1'] / medians[path]:.1f}x"
        for path in medians
        if path + ", batch 1" in medians
    ]
    runs = " ".join(f"{row.path}: {[round(s * row.scale, 2) for s in row.seconds]}" for row in rows)
    notes = [
        f"latency {args.latency * 1000:g} ms per request, batch {BATCH}, {IN_FLIGHT} in flight, "
        f"median of {args.repeat}; bound = ceil(ceil(rows/batch)/{IN_FLIGHT}) x latency",
        f"(xN): measured on {args.single_rows} rows, times scaled by N to {args.rows} rows",
        f"batching speedup (batch 1 / batch {BATCH}): {', '.join(speedups)}",
        f"runs: {runs}",
    ]
    return "\n".join([*lines, "", *notes])


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--latency", type=float, default=0.05, help="seconds per request")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--single-rows", type=int, default=800, help="rows for the batch-1 runs")
    parser.add_argument("--no-sql", action="store_true", help="skip the run through the proxy")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    use_fake_credentials()
    sleep = SleepBackend(args.latency)
    rows = [measure_engine("engine, sleep backend", sleep, args.rows, BATCH, args, args.rows)]
    with fake_comprehend(args.latency) as url:
        aws = ComprehendBackend(region="us-east-1", endpoint_url=url)
        try:
            rows.append(
                measure_engine("engine, aws -> fake", aws, args.rows, BATCH, args, args.rows)
            )
            if not args.no_sql:
                rows.append(measure_sql(url, args))
            single = args.single_rows
            rows.append(
                measure_engine("engine, sleep backend, batch 1", sleep, single, 1, args, args.rows)
            )
            rows.append(
                measure_engine("engine, aws -> fake, batch 1", aws, single, 1, args, args.rows)
            )
        finally:
            asyncio.run(aws.close())
    print(format_table(rows, args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
