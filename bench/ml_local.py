"""The local sentiment model through SQL against the model alone (issue 5's ML target:
at least 0.5x the rows per second of the model in a loop).

Both paths score the same ``--rows`` distinct texts with the offline VADER backend:
- model alone: LocalSentimentBackend.score over the texts in a Python loop;
- through the proxy: SELECT id, aws_comprehend_detect_sentiment(txt, 'en') FROM t, read
  by a PyMySQL client, through the proxy as deployed (``python -m proxy serve``, its own
  process: in-process it would share the client's interpreter lock) on a throwaway
  MariaDB, cache off.

Run from the repository root: ``python -m bench.ml_local [--rows N] [--repeat R]``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Sequence

import pymysql

from bench.services import start_service
from ml_backends.local import LocalSentimentBackend
from proxy.embedded_db import start_embedded_server
from tests.backend import BackendInfo

DATABASE = "mlproxy_local_bench"
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


def through_proxy(info: BackendInfo, corpus: list[str]) -> float:
    backend = f"mysql://{info.host}:{info.port}"
    settings = ["--ml-cache-entries", "0", "--ml-max-backend-calls", "0"]
    proxy = start_service(
        "proxy", ["proxy", "serve", "--listen", "127.0.0.1:0", "--backend", backend, *settings]
    )
    try:
        with (
            pymysql.connect(
                host=proxy.host,
                port=proxy.port,
                user=info.admin_user,
                password=info.admin_password,
                database=DATABASE,
            ) as conn,
            conn.cursor() as cur,
        ):
            started = time.perf_counter()
            cur.execute("SELECT id, aws_comprehend_detect_sentiment(txt, 'en') FROM t")
            assert len(cur.fetchall()) == len(corpus)
            return time.perf_counter() - started
    finally:
        proxy.stop()


def fill(info: BackendInfo, corpus: list[str]) -> None:
    with (
        pymysql.connect(
            host=info.host, port=info.port, user=info.admin_user, password=info.admin_password
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
    info = BackendInfo(server.host, server.port, server.admin_user, server.admin_password, server)
    try:
        fill(info, corpus)
        alone = [model_alone(corpus) for _ in range(args.repeat)]
        proxied = [through_proxy(info, corpus) for _ in range(args.repeat)]
    finally:
        server.stop()
    a, p = statistics.median(alone), statistics.median(proxied)
    print(f"{'path':<28}{'rows':>8}{'median s':>10}{'rows/s':>10}")
    print(f"{'local model alone':<28}{args.rows:>8}{a:>10.2f}{args.rows / a:>10,.0f}")
    print(f"{'SQL through the proxy':<28}{args.rows:>8}{p:>10.2f}{args.rows / p:>10,.0f}")
    print(f"ratio (proxy rows/s over model rows/s): {a / p:.2f}  (target >= 0.5)")
    print(f"runs: alone {[round(x, 2) for x in alone]} proxy {[round(x, 2) for x in proxied]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
