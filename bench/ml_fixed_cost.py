"""The fixed cost of an ML statement whose answers are cached (issue 15), against its plain twin.

Four statements through the same proxy, side by side in one run, at 1 and 4 clients:

- a point select, ``SELECT id, txt FROM t WHERE id = 7``, and the same with a cached ML
  call, ``SELECT id, aws_comprehend_detect_sentiment(txt, 'en') FROM t WHERE id = 7``;
- a constant call, ``SELECT aws_comprehend_detect_sentiment('I love it', 'en')``, and
  its plain twin ``SELECT 'I love it'``.

Each comes in two forms: *fixed*, the same statement over and over (as the issue measured
it), and *varied*, each client cycling through 200 statements with other ids and texts
(an application's statements: a plan per shape, no statement seen byte for byte before
in the session). Every ML answer is in the proxy's cache before anything is timed.

The clients are ``mariadb-slap`` (C, libmariadb; PyMySQL processes where it is missing),
the backend a throwaway MariaDB, the proxy ``python -m proxy serve`` with its defaults.
With one client, the client and the proxy each run on a CPU of their own (``--no-pin``:
not); the database is left to the scheduler, which on a machine whose idle CPUs halt
may put it beside the client, where each round trip pays a halted CPU's wake-up: the
more CPU the proxy spends per statement, the likelier (docs/performance.md, "the
database's placement"). Each round runs every workload once, plain and ML
alternating, after an untimed run of the side that goes first (as long as a timed
one); the table gives each
workload's median over ``--repeat`` rounds of the time per statement (a client's
elapsed time over its statement count) and the ratio ML / plain per round, whose median
is the figure the targets are about: at most 3x for the point select, 1.5x for the
constant call.

Run from the repository root: ``python -m bench.ml_fixed_cost [--queries N] [--repeat R]``
(by default 1,500 statements and 7 rounds, about a minute: single rounds of the varied
forms spread over half their median, so fewer rounds give a median that moves with
them; ``python -m bench`` passes its own ``--repeat``).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pymysql

from bench.placement import ThreadPlaces
from bench.services import Service, start_service
from proxy.embedded_db import EmbeddedServer, start_embedded_server

DATABASE = "mlproxy_fixed_cost_bench"
ROWS = 1000
#: Statements each client of a varied workload cycles through.
VARIED = 200
CLIENTS = (1, 4)
WORDS = ("love", "hate", "like", "enjoy", "dislike", "adore")


@dataclass(frozen=True)
class Pair:
    """A plain statement and its twin with an ML call: fixed texts, or a varied list."""

    name: str
    target: float
    plain: tuple[str, ...]
    ml: tuple[str, ...]


def _text(i: int) -> str:
    return f"I {WORDS[i % len(WORDS)]} it, review {i}"


def _point(i: int, ml: bool) -> str:
    column = "aws_comprehend_detect_sentiment(txt, 'en')" if ml else "txt"
    return f"SELECT id, {column} FROM t WHERE id = {i}"


def _constant(i: int | None, ml: bool) -> str:
    text = "I love it" if i is None else _text(i)
    return f"SELECT aws_comprehend_detect_sentiment('{text}', 'en')" if ml else f"SELECT '{text}'"


PAIRS = (
    Pair("point select, fixed", 3.0, (_point(7, False),), (_point(7, True),)),
    Pair(
        "point select, varied",
        3.0,
        tuple(_point(i, False) for i in range(1, VARIED + 1)),
        tuple(_point(i, True) for i in range(1, VARIED + 1)),
    ),
    Pair("constant call, fixed", 1.5, (_constant(None, False),), (_constant(None, True),)),
    Pair(
        "constant call, varied",
        1.5,
        tuple(_constant(i, False) for i in range(VARIED)),
        tuple(_constant(i, True) for i in range(VARIED)),
    ),
)


def fill(server: EmbeddedServer) -> None:
    with _connect(server.host, server.port, server, None) as conn, conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE IF NOT EXISTS {DATABASE} CHARACTER SET utf8mb4")
        cur.execute(f"DROP TABLE IF EXISTS {DATABASE}.t")
        cur.execute(f"CREATE TABLE {DATABASE}.t (id INT PRIMARY KEY, txt TEXT)")
        rows = [(i, _text(i)) for i in range(1, ROWS + 1)]
        cur.executemany(f"INSERT INTO {DATABASE}.t VALUES (%s, %s)", rows)
        conn.commit()


def _connect(
    host: str, port: int, server: EmbeddedServer, database: str | None
) -> pymysql.Connection[Any]:
    return pymysql.connect(
        host=host,
        port=port,
        user=server.admin_user,
        password=server.admin_password,
        database=database,
    )


def warm(proxy: Service, server: EmbeddedServer) -> None:
    """Every ML statement once through the proxy: their answers are then cached."""
    with _connect(proxy.host, proxy.port, server, DATABASE) as conn, conn.cursor() as cur:
        for pair in PAIRS:
            for statement in pair.ml:
                cur.execute(statement)
                cur.fetchall()


def time_per_statement(
    proxy: Service, server: EmbeddedServer, statements: Sequence[str], clients: int, queries: int
) -> float:
    """Seconds per statement of each client, ``queries`` statements per client."""
    if shutil.which("mariadb-slap"):
        return _slap(proxy, server, statements, clients, queries)
    return _pymysql(proxy, server, statements, clients, queries)


def _slap(
    proxy: Service, server: EmbeddedServer, statements: Sequence[str], clients: int, queries: int
) -> float:
    with tempfile.NamedTemporaryFile("w", suffix=".sql") as file:
        file.write("".join(f"{statement};\n" for statement in statements))
        file.flush()
        done = subprocess.run(
            [
                "mariadb-slap",
                "--no-defaults",
                "--skip-ssl",
                f"--host={proxy.host}",
                f"--port={proxy.port}",
                f"--user={server.admin_user}",
                f"--password={server.admin_password}",
                f"--create-schema={DATABASE}",
                "--no-drop",
                f"--concurrency={clients}",
                f"--number-of-queries={queries * clients}",
                "--iterations=1",
                f"--query={file.name}",
                "--delimiter=;",
            ],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
    marker = "Average number of seconds to run all queries:"
    if done.returncode != 0 or marker not in done.stdout:
        raise RuntimeError(f"mariadb-slap failed: {(done.stdout + done.stderr)[-2000:]}")
    return float(done.stdout.split(marker)[1].split()[0]) / queries


def _client(address: tuple[str, int, str, str], statements: Sequence[str], queries: int) -> float:
    host, port, user, password = address
    with (
        pymysql.connect(
            host=host, port=port, user=user, password=password, database=DATABASE
        ) as conn,
        conn.cursor() as cur,
    ):
        started = time.perf_counter()
        for i in range(queries):
            cur.execute(statements[i % len(statements)])
            cur.fetchall()
        return time.perf_counter() - started


def _pymysql(
    proxy: Service, server: EmbeddedServer, statements: Sequence[str], clients: int, queries: int
) -> float:
    address = (proxy.host, proxy.port, server.admin_user, server.admin_password)
    with multiprocessing.Pool(clients) as pool:
        times = pool.starmap(_client, [(address, statements, queries)] * clients)
    return statistics.mean(times) / queries


@dataclass
class Result:
    pair: Pair
    clients: int
    plain: list[float]
    ml: list[float]
    #: Per side, per round: the share of the database's busiest thread's samples on the
    #: proxy's CPU (runs with the client and the proxy pinned only: bench.placement).
    beside: dict[str, list[float]] = field(default_factory=lambda: {"plain": [], "ml": []})

    @property
    def ratios(self) -> list[float]:
        return [m / p for p, m in zip(self.plain, self.ml, strict=True)]


def measure(
    proxy: Service, server: EmbeddedServer, queries: int, repeat: int, pin: bool = True
) -> list[Result]:
    results = [Result(pair, n, [], []) for pair in PAIRS for n in CLIENTS]
    for round_ in range(repeat):
        for result in results:
            sides = [("plain", result.pair.plain), ("ml", result.pair.ml)]
            if round_ % 2:
                sides.reverse()  # which runs first alternates between rounds
            with _placement(proxy, pin and result.clients == 1) as proxy_cpu:
                # Untimed, as long as a timed run: the first run after the processes moved
                # and the workload changed ran slow (with none, or 300 statements, the
                # rounds' ratios alternated 0.9 / 1.6 by which side ran first, and a
                # median of such rounds followed the count of each order).
                time_per_statement(proxy, server, sides[0][1], result.clients, queries)
                for side, statements in sides:
                    with _watched(server, proxy_cpu) as places:
                        seconds = time_per_statement(
                            proxy, server, statements, result.clients, queries
                        )
                    getattr(result, side).append(seconds)
                    if places is not None and places.share is not None:
                        result.beside[side].append(places.share)
    return results


@contextmanager
def _watched(server: EmbeddedServer, cpu: int | None) -> Iterator[ThreadPlaces | None]:
    """Where the database ran during a run, when the proxy has a CPU of its own."""
    if cpu is None:
        yield None
        return
    with ThreadPlaces(server.process.pid, cpu) as places:
        yield places


@contextmanager
def _placement(proxy: Service, pin: bool) -> Iterator[int | None]:
    """With one client, the client (a child of this process) on the first CPU and the
    proxy on the second, as bench.passthrough places them: left to the scheduler, three
    processes on two cores make a one-client latency bimodal by placement, and a ratio of
    two such runs anything between half and twice its value."""
    cpus = os.sched_getaffinity(0)
    if not pin or len(cpus) < 2:
        yield None
        return
    client_cpu, proxy_cpu = sorted(cpus)[:2]
    os.sched_setaffinity(0, {client_cpu})
    os.sched_setaffinity(proxy.pid, {proxy_cpu})
    try:
        yield proxy_cpu
    finally:
        os.sched_setaffinity(0, cpus)
        os.sched_setaffinity(proxy.pid, cpus)


def format_table(
    results: list[Result], queries: int, repeat: int, loads: Sequence[float] = ()
) -> str:
    client = "mariadb-slap" if shutil.which("mariadb-slap") else "PyMySQL processes"
    lines = [
        f"{queries} statements per client, median of {repeat} rounds ({client}); ratio: the "
        "median of the rounds' ML / plain",
        f"{'workload':<24}{'clients':>8}{'plain ms':>10}{'ML ms':>9}{'ratio':>7}{'target':>8}"
        "  ratios of the rounds",
    ]
    for r in results:
        ratio = statistics.median(r.ratios)
        verdict = "ok" if ratio <= r.pair.target else "over"
        lines.append(
            f"{r.pair.name:<24}{r.clients:>8}{statistics.median(r.plain) * 1e3:>10.3f}"
            f"{statistics.median(r.ml) * 1e3:>9.3f}{ratio:>7.2f}{r.pair.target:>6.1f} {verdict:<4}"
            f"  {' '.join(f'{x:.2f}' for x in r.ratios)}"
        )
    placed = [r for r in results if r.beside["plain"] and r.beside["ml"]]
    if placed:  # (bench.placement: a ratio read with where the database ran)
        lines.append("the database's busiest thread on the proxy's CPU (median share of samples):")
        for r in placed:
            plain, ml = (statistics.median(r.beside[side]) for side in ("plain", "ml"))
            lines.append(
                f"  {r.pair.name:<24}{r.clients:>2} client  plain {plain:4.0%}  ML {ml:4.0%}"
            )
    if loads:  # others' work on the machine spreads the rounds
        lines.append(
            f"1-minute load average before and after: {' / '.join(f'{x:.2f}' for x in loads)}"
        )
    return "\n".join(lines)


def start_proxy(server: EmbeddedServer) -> Service:
    backend = f"mysql://{server.host}:{server.port}"
    return start_service(
        "proxy", ["proxy", "serve", "--listen", "127.0.0.1:0", "--backend", backend]
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--queries", type=int, default=1500, help="statements per client")
    parser.add_argument("--repeat", type=int, default=7, help="rounds; medians")
    parser.add_argument(
        "--no-pin", action="store_true", help="leave the one-client runs to the scheduler"
    )
    args = parser.parse_args(argv)
    server = start_embedded_server()
    try:
        fill(server)
        proxy = start_proxy(server)
        try:
            warm(proxy, server)
            before = os.getloadavg()[0]
            results = measure(proxy, server, args.queries, args.repeat, not args.no_pin)
            loads = (before, os.getloadavg()[0])
        finally:
            proxy.stop()
    finally:
        server.stop()
    print(format_table(results, args.queries, args.repeat, loads))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
