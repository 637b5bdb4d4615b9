"""ML statements against a service with a quota (issue 12): how close the proxy gets to
the time the quota allows, finding the rate by itself.

The workload: ``--texts`` (2,000) distinct texts, 80 requests of 25, through ``mlproxy
serve`` (a subprocess with default settings: no ``--ml-rate-limit``) whose aws backend
points at bench.quota_service, a token bucket of ``--quota`` (10) requests/s with a burst
of as many, throttling above it. No client can be faster than (requests - burst) / quota
= 7 s. With 1, 2 and 8 sessions at once (the texts split between them), each run on a
fresh proxy (nothing learned, nothing cached), the table gives the median wall time and
its ratio to that bound (target: at most 1.5), the throttled answers per useful request
(target: at most 1), and the send rate the proxy had found at the end
(``Mlproxy_ml_send_rate_comprehend`` in SHOW GLOBAL STATUS).

Run from the repository root: ``python -m bench.ml_quota [--repeat R] [--sessions 1 2 8]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pymysql

from bench.quota_service import QuotaService, verdict
from bench.services import Service, start_service
from proxy.embedded_db import EmbeddedServer, start_embedded_server

DATABASE = "mlproxy_quota_bench"
BATCH = 25
SQL = (
    "SELECT id, aws_comprehend_detect_sentiment(txt, 'en'), "
    "aws_comprehend_detect_sentiment_confidence(txt, 'en') FROM {table} ORDER BY id"
)
WORDS = ("good", "bad", "plain", "good and bad")


@dataclass
class Row:
    """One line of the table: a session count (and a hand-set rate limit, the reference
    the issue measured) and its runs."""

    sessions: int
    rate_limit: float | None = None
    seconds: list[float] = field(default_factory=list)
    useful: list[int] = field(default_factory=list)
    throttled: list[int] = field(default_factory=list)
    rates: list[float] = field(default_factory=list)


def texts_of(session: int, count: int) -> list[str]:
    return [f"session {session} review {i}: {WORDS[i % len(WORDS)]}" for i in range(count)]


def fill_tables(server: EmbeddedServer, sessions: int, total: int) -> list[list[str]]:
    """One table of distinct texts per session, ``total`` texts in all."""
    texts = [texts_of(s, total // sessions) for s in range(sessions)]
    admin = pymysql.connect(
        host=server.host, port=server.port, user=server.admin_user, password=server.admin_password
    )
    with admin as conn, conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE IF NOT EXISTS {DATABASE} CHARACTER SET utf8mb4")
        for session, rows in enumerate(texts):
            table = f"{DATABASE}.t{session}"
            cur.execute(f"DROP TABLE IF EXISTS {table}")
            cur.execute(f"CREATE TABLE {table} (id INT PRIMARY KEY, txt TEXT)")
            cur.executemany(f"INSERT INTO {table} VALUES (%s, %s)", list(enumerate(rows)))
        conn.commit()
    return texts


def start_proxy(server: EmbeddedServer, url: str, rate_limit: float | None = None) -> Service:
    """``mlproxy serve`` with its defaults, the aws backend on the quota service."""
    os.environ.update(
        AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_EC2_METADATA_DISABLED="true"
    )
    backend = f"mysql://{server.host}:{server.port}"
    args = ["proxy", "serve", "--listen", "127.0.0.1:0", "--backend", backend]
    args += ["--comprehend-backend", "aws", "--aws-endpoint-url", url, "--aws-region", "us-east-1"]
    if rate_limit is not None:
        args += ["--ml-rate-limit", str(rate_limit)]
    return start_service("proxy", args)


def connect(server: EmbeddedServer, proxy: Service) -> pymysql.Connection[Any]:
    return pymysql.connect(
        host=proxy.host,
        port=proxy.port,
        user=server.admin_user,
        password=server.admin_password,
        database=DATABASE,
        autocommit=True,
    )


def run_sessions(
    server: EmbeddedServer, proxy: Service, texts: list[list[str]]
) -> tuple[float, list[Any]]:
    """Every session's statement at once: wall seconds and each one's rows."""
    connections = [connect(server, proxy) for _ in texts]
    results: list[Any] = [None] * len(texts)
    start = threading.Barrier(len(texts) + 1)

    def session(index: int) -> None:
        with connections[index].cursor() as cur:
            start.wait()
            cur.execute(SQL.format(table=f"t{index}"))
            results[index] = list(cur.fetchall())

    threads = [threading.Thread(target=session, args=(i,)) for i in range(len(texts))]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - began
    for conn in connections:
        conn.close()
    return seconds, results


def send_rate(server: EmbeddedServer, proxy: Service) -> float:
    with connect(server, proxy) as conn, conn.cursor() as cur:
        cur.execute("SHOW GLOBAL STATUS LIKE 'Mlproxy_ml_send_rate_comprehend'")
        ((_, value),) = cur.fetchall()
    return float(value)


def check(texts: list[list[str]], results: list[Any]) -> None:
    """Every session got the service's answers, in order."""
    for rows, got in zip(texts, results, strict=True):
        want = [(i, *verdict(text)) for i, text in enumerate(rows)]
        if got != want:
            raise AssertionError("a session's answers differ from the service's")


def measure(server: EmbeddedServer, service: QuotaService, row: Row, args: Any) -> None:
    texts = fill_tables(server, row.sessions, args.texts)
    for _ in range(args.repeat):
        proxy = start_proxy(server, service.url, row.rate_limit)
        try:
            service.reset()
            seconds, results = run_sessions(server, proxy, texts)
            check(texts, results)
            row.seconds.append(seconds)
            row.useful.append(service.answered)
            row.throttled.append(service.throttled)
            row.rates.append(send_rate(server, proxy))
        finally:
            proxy.stop()


def format_table(rows: list[Row], args: argparse.Namespace) -> str:
    requests = -(-args.texts // BATCH)
    bound = (requests - args.quota) / args.quota
    head = (
        f"{'sessions':<24} {'requests':>8} {'median s':>9} {'bound s':>8} {'ratio':>6} "
        f"{'throttled':>9} {'thr/useful':>10} {'rate found':>10}"
    )
    lines = [head, "-" * len(head)]
    for row in rows:
        median = statistics.median(row.seconds)
        throttled = statistics.median(row.throttled)
        useful = statistics.median(row.useful)
        name = f"{row.sessions}" + (
            f" (--ml-rate-limit {row.rate_limit:g})" if row.rate_limit else ""
        )
        lines.append(
            f"{name:<24} {useful:>8g} {median:>9.2f} {bound:>8.2f} {median / bound:>6.2f} "
            f"{throttled:>9g} {throttled / useful:>10.2f} {statistics.median(row.rates):>10.2f}"
        )
    notes = [
        f"quota {args.quota:g} requests/s, burst {args.quota:g}; {args.texts} distinct texts, "
        f"batch {BATCH}; median of {args.repeat}, each run on a fresh proxy; "
        "bound = (requests - burst) / quota; *: --ml-rate-limit set to the quota by hand",
        "runs: "
        + " ".join(
            f"{row.sessions}{'*' if row.rate_limit else ''}: {[round(s, 2) for s in row.seconds]}"
            f" throttled {row.throttled}"
            for row in rows
        ),
    ]
    return "\n".join([*lines, "", *notes])


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--texts", type=int, default=2000)
    parser.add_argument("--quota", type=float, default=10.0, help="requests/s, and the burst")
    parser.add_argument("--sessions", type=int, nargs="+", default=[1, 2, 8])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--no-reference", action="store_true", help="skip the run with --ml-rate-limit = quota"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    server = start_embedded_server()
    rows = [Row(sessions) for sessions in args.sessions]
    if not args.no_reference:  # the rate set by hand, as the reference run
        rows.append(Row(1, args.quota))
    try:
        with QuotaService(args.quota) as service:
            for row in rows:
                measure(server, service, row, args)
    finally:
        server.stop()
    print(format_table(rows, args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
