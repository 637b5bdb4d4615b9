"""The local sentiment model through SQL against the model alone (issue 5's ML target:
at least 0.5x the rows per second of the model in a loop).

Both paths score the same ``--rows`` distinct texts with the offline VADER backend:
- model alone: LocalSentimentBackend.score over the texts in a Python loop;
- through the proxy: SELECT id, aws_comprehend_detect_sentiment(txt, 'en') FROM t, read
  by a PyMySQL client, through the proxy as deployed (``python -m proxy serve``, its own
  process: in-process it would share the client's interpreter lock) on a throwaway
  MariaDB, cache off.

It also measures what such a statement costs the proxy's other clients: the latency of
SELECT 1 on a second connection, idle and while another client runs the ML statement
over and over (in its own process, so only the proxy is shared).

Run from the repository root: ``python -m bench.ml_local [--rows N] [--repeat R]``.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any

import pymysql

from bench.services import Service, start_service
from ml_backends.local import LocalSentimentBackend
from proxy.embedded_db import EmbeddedServer, start_embedded_server

DATABASE = "mlproxy_local_bench"
ML_STATEMENT = "SELECT id, aws_comprehend_detect_sentiment(txt, 'en') FROM t"
WORDS = ("good", "bad", "great", "awful", "fine", "love", "hate", "boring", "fun", "slow")


def texts(rows: int) -> list[str]:
    """Distinct, sentiment-bearing texts of a few words."""
    return [f"{WORDS[i % 10]} and {WORDS[(i // 10) % 10]} review number {i}" for i in range(rows)]


def model_alone(corpus: list[str]) -> float:
    model = LocalSentimentBackend()
    started = time.perf_counter()
    for text in corpus:
        model.score(text)
    return time.perf_counter() - started


def start_proxy(server: EmbeddedServer) -> Service:
    backend = f"mysql://{server.host}:{server.port}"
    settings = ["--ml-cache-entries", "0", "--ml-max-backend-calls", "0"]
    return start_service(
        "proxy", ["proxy", "serve", "--listen", "127.0.0.1:0", "--backend", backend, *settings]
    )


def connect(proxy: Service, server: EmbeddedServer) -> pymysql.Connection[Any]:
    return pymysql.connect(
        host=proxy.host,
        port=proxy.port,
        user=server.admin_user,
        password=server.admin_password,
        database=DATABASE,
    )


def through_proxy(server: EmbeddedServer, corpus: list[str]) -> float:
    proxy = start_proxy(server)
    try:
        with connect(proxy, server) as conn, conn.cursor() as cur:
            started = time.perf_counter()
            cur.execute(ML_STATEMENT)
            assert len(cur.fetchall()) == len(corpus)
            return time.perf_counter() - started
    finally:
        proxy.stop()


def select_1_latencies(cur: Any, seconds: float) -> list[float]:
    """SELECT 1 round trips in ms, one every half millisecond, for ``seconds``."""
    latencies = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        cur.execute("SELECT 1")
        cur.fetchall()
        latencies.append((time.perf_counter() - started) * 1000)
        time.sleep(0.0005)
    return sorted(latencies)


def ml_client_loop(proxy: Service, server: EmbeddedServer) -> subprocess.Popen[bytes]:
    """A client process running the ML statement over and over until killed."""
    code = (
        "import pymysql\n"
        f"c = pymysql.connect(host={proxy.host!r}, port={proxy.port}, "
        f"user={server.admin_user!r}, password={server.admin_password!r}, database={DATABASE!r})\n"
        "cur = c.cursor()\n"
        f"while True:\n    cur.execute({ML_STATEMENT!r})\n    cur.fetchall()\n"
    )
    return subprocess.Popen([sys.executable, "-c", code])


def latency_beside_ml(server: EmbeddedServer) -> tuple[list[float], list[float]]:
    """SELECT 1 latencies on an idle proxy, then next to a client running ML."""
    proxy = start_proxy(server)
    try:
        with connect(proxy, server) as conn, conn.cursor() as cur:
            idle = select_1_latencies(cur, 2)
            ml = ml_client_loop(proxy, server)
            try:
                time.sleep(0.5)
                busy = select_1_latencies(cur, 5)
            finally:
                ml.kill()
                ml.wait()
        return idle, busy
    finally:
        proxy.stop()


def percentiles(latencies: list[float]) -> str:
    p50 = latencies[len(latencies) // 2]
    p99 = latencies[int(len(latencies) * 0.99)]
    return f"p50 {p50:.2f}  p99 {p99:.2f}  max {latencies[-1]:.2f} ms  ({len(latencies)} queries)"


def fill(server: EmbeddedServer, corpus: list[str]) -> None:
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
        cur.execute(f"DROP TABLE IF EXISTS {DATABASE}.t")
        cur.execute(f"CREATE TABLE {DATABASE}.t (id INT PRIMARY KEY, txt TEXT)")
        cur.executemany(f"INSERT INTO {DATABASE}.t VALUES (%s, %s)", list(enumerate(corpus)))
        conn.commit()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    corpus = texts(args.rows)
    server = start_embedded_server()
    try:
        fill(server, corpus)
        alone = [model_alone(corpus) for _ in range(args.repeat)]
        proxied = [through_proxy(server, corpus) for _ in range(args.repeat)]
        idle, busy = latency_beside_ml(server)
    finally:
        server.stop()
    a, p = statistics.median(alone), statistics.median(proxied)
    print(f"{'path':<28}{'rows':>8}{'median s':>10}{'rows/s':>10}")
    print(f"{'local model alone':<28}{args.rows:>8}{a:>10.2f}{args.rows / a:>10,.0f}")
    print(f"{'SQL through the proxy':<28}{args.rows:>8}{p:>10.2f}{args.rows / p:>10,.0f}")
    print(f"ratio (proxy rows/s over model rows/s): {a / p:.2f}  (target >= 0.5)")
    print(f"runs: alone {[round(x, 2) for x in alone]} proxy {[round(x, 2) for x in proxied]}")
    print("SELECT 1 on another connection through the proxy:")
    print(f"  idle proxy:                       {percentiles(idle)}")
    print(f"  while a client runs the ML query: {percentiles(busy)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
