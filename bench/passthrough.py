"""Pass-through benchmark: the same workloads direct, through a bare relay, through the proxy.

One run starts its own backend (or uses ``--backend``), the proxy (``python -m proxy
serve``) and the bare asyncio relay of bench.relay as subprocesses, then measures, for
each of the three targets in turn (the order rotates between repeats):

- point selects per second and p50/p95 latency (sysbench oltp_point_select, text
  protocol and server-side prepared statements, at each of ``--threads``; at one
  thread with sysbench and the hop pinned to a CPU each, and the p50 each hop adds to
  direct's);
- sysbench oltp_read_only the same way, in queries per second (16 queries a transaction);
- the wall time of a big SELECT read row by row by the ``mariadb`` CLI, its time to the
  first row, and how much the proxy's (and relay's) peak RSS grew during it;
- connections opened and closed per second by one client.

It prints the median of ``--repeat`` runs of each, and the ratios proxy/direct and
proxy/relay: the relay (under uvloop when it is installed, as the issue defines the
ceiling) is the ceiling for any Python hop; the proxy runs under its default loop unless
``--proxy-loop`` says otherwise. Run from the repository root:
``python -m bench.passthrough [--rows N] [--threads 1,8,32] [--seconds S] [--repeat R]``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import clients
from bench.dataset import Endpoint, open_backend, prepare, server_version
from bench.services import Service, reset_peak, start_proxy, start_relay

log = logging.getLogger("bench.passthrough")

TARGETS = ("direct", "relay", "proxy")
WORKLOADS = ("select", "read_only", "stream", "connect")
MB = 1 << 20


@dataclass(frozen=True)
class Metric:
    """One row of the results table."""

    key: str
    label: str
    higher_is_better: bool
    digits: int = 2
    #: Summarised by the best run instead of the median (see _add_latency_added).
    best_run: bool = False


@dataclass
class Results:
    """Every measured value, by metric and target, in the order metrics were first seen."""

    metrics: dict[str, Metric] = field(default_factory=dict)
    values: dict[str, dict[str, list[float]]] = field(default_factory=dict)

    def add(self, metric: Metric, target: str, value: float) -> None:
        self.metrics.setdefault(metric.key, metric)
        self.values.setdefault(metric.key, {}).setdefault(target, []).append(value)

    def median(self, key: str, target: str) -> float | None:
        """The median of the runs (the best run for a best_run metric)."""
        runs = self.values.get(key, {}).get(target)
        if not runs:
            return None
        metric = self.metrics[key]
        if metric.best_run:
            return max(runs) if metric.higher_is_better else min(runs)
        return statistics.median(runs)

    def ratio(self, key: str, top: str, bottom: str) -> float | None:
        a, b = self.median(key, top), self.median(key, bottom)
        return a / b if a is not None and b else None


@dataclass
class Run:
    """What one benchmark run talks to."""

    args: argparse.Namespace
    endpoints: dict[str, Endpoint]
    services: dict[str, Service]
    results: Results = field(default_factory=Results)


# -- workloads ----------------------------------------------------------------------------


@dataclass(frozen=True)
class SqlLoad:
    """A sysbench script, run text and prepared at each thread count."""

    key: str  # metric key prefix (``select`` keeps the keys of earlier JSON files)
    name: str
    run: Callable[[Endpoint, int, float, bool, int], clients.Load]


_POINT_SELECT = SqlLoad("select", "point select", clients.point_selects)
_READ_ONLY = SqlLoad("read_only", "read-only", clients.read_only)


def _sql_metrics(load: SqlLoad, threads: int, prepared: bool) -> tuple[Metric, Metric, Metric]:
    name = f"{load.name} {'prepared' if prepared else 'text'}, {threads} thr"
    key = f"{load.key}_{'ps' if prepared else 'text'}_{threads}t"
    return (
        Metric(f"{key}_qps", f"{name}: queries/s", True, 0),
        Metric(f"{key}_p50_ms", f"{name}: p50 ms", False, 3),
        Metric(f"{key}_p95_ms", f"{name}: p95 ms", False, 3),
    )


def _measure_sql(run: Run, order: Sequence[str], load: SqlLoad) -> None:
    """One sysbench script, text and prepared, at each of --threads."""
    args = run.args
    for threads in args.threads:
        for prepared in (False, True):
            if prepared and not clients.has_sysbench():
                continue
            qps, p50, p95 = _sql_metrics(load, threads, prepared)
            p50_of = {}
            with _one_client_placement(run, threads == 1 and load is _POINT_SELECT):
                for target in order:
                    result = load.run(
                        run.endpoints[target], threads, args.seconds, prepared, args.table_size
                    )
                    log.info(
                        "%s %s: %.0f q/s, p95 %.3f ms",
                        qps.label,
                        target,
                        result.rate,
                        result.p95_ms,
                    )
                    run.results.add(qps, target, result.rate)
                    run.results.add(p50, target, result.p50_ms)
                    run.results.add(p95, target, result.p95_ms)
                    p50_of[target] = result.p50_ms
            if threads == 1:
                _add_latency_added(run, p50, p50_of)


@contextmanager
def _one_client_placement(run: Run, one_client_selects: bool) -> Iterator[None]:
    """With one client thread, sysbench (a child of this process) on the first CPU and
    the hop on the second, for every target alike. Left to the scheduler, three
    processes on two cores give each hop a bimodal latency (runs near 0.018 ms and runs
    near 0.030 ms added, by placement), and the median of a few runs follows the mix.
    Point selects only (the latency target's workload): oltp_read_only's heavier
    statements run slower for every hop with the hop on one CPU. Not with --no-pin,
    fewer than two CPUs, or proxy workers (their pids are not ours)."""
    cpus = os.sched_getaffinity(0)
    if (
        not one_client_selects
        or run.args.no_pin
        or len(cpus) < 2
        or (run.args.proxy_workers or 1) > 1
    ):
        yield
        return
    client_cpu, hop_cpu = sorted(cpus)[:2]
    os.sched_setaffinity(0, {client_cpu})
    for service in run.services.values():
        os.sched_setaffinity(service.pid, {hop_cpu})
    try:
        yield
    finally:
        os.sched_setaffinity(0, cpus)
        for service in run.services.values():
            os.sched_setaffinity(service.pid, cpus)


def _add_latency_added(run: Run, p50: Metric, p50_of: dict[str, float]) -> None:
    """What each hop adds to the direct p50 in this run: the 1-thread latency target
    (the proxy's addition at most 1.2x the relay's) is a ratio of these."""
    added = Metric(p50.key.replace("_p50_", "_added_p50_"), f"{p50.label} added", False, 3)
    # The best run too: the hop's own cost, whatever the placement (see
    # _one_client_placement).
    best = Metric(f"{added.key}_best", f"{added.label}, best run", False, 3, best_run=True)
    for target, value in p50_of.items():
        run.results.add(added, target, value - p50_of["direct"])
        run.results.add(best, target, value - p50_of["direct"])


def measure_selects(run: Run, order: Sequence[str]) -> None:
    """Point selects, text and prepared."""
    _measure_sql(run, order, _POINT_SELECT)


def measure_read_only(run: Run, order: Sequence[str]) -> None:
    """oltp_read_only, text and prepared (sysbench only: it has no fallback)."""
    if not clients.has_sysbench():
        log.warning("oltp_read_only needs sysbench: skipped")
        return
    _measure_sql(run, order, _READ_ONLY)


_STREAM_TIME = Metric("stream_s", "big SELECT: seconds", False, 3)
_STREAM_FIRST = Metric("stream_first_row_s", "big SELECT: first row, s", False, 3)
_STREAM_GROWTH = Metric("stream_rss_growth_mb", "big SELECT: peak RSS growth, MB", False, 1)
_IDLE_RSS = Metric("rss_before_mb", "RSS before the big SELECT, MB", False, 1)


def measure_stream(run: Run, order: Sequence[str]) -> None:
    """The big SELECT, and the hop's peak RSS during it (VmHWM reset just before)."""
    for target in order:
        service = run.services.get(target)
        before = 0
        if service is not None:
            reset_peak(service.pid)
            before = service.memory().rss
        result = clients.stream(run.endpoints[target])
        if result.rows != run.args.rows:
            raise RuntimeError(f"{target}: the big SELECT gave {result.rows} rows")
        run.results.add(_STREAM_TIME, target, result.total_s)
        run.results.add(_STREAM_FIRST, target, result.first_row_s)
        if service is not None:
            peak = service.memory().peak
            run.results.add(_IDLE_RSS, target, before / MB)
            run.results.add(_STREAM_GROWTH, target, (peak - before) / MB)
        log.info("big SELECT %s: %.3f s", target, result.total_s)


_CONNECTIONS = Metric("connections_per_s", "connect+close, 1 client: per s", True, 0)
_CONNECT_P50 = Metric("connect_p50_ms", "connect+close, 1 client: p50 ms", False, 3)


def measure_connections(run: Run, order: Sequence[str]) -> None:
    """Connections opened and closed per second, one client."""
    for target in order:
        load = clients.connections(run.endpoints[target], run.args.seconds)
        log.info("connections %s: %.0f/s", target, load.rate)
        run.results.add(_CONNECTIONS, target, load.rate)
        run.results.add(_CONNECT_P50, target, load.p50_ms)


_MEASURES: dict[str, Callable[[Run, Sequence[str]], None]] = {
    "select": measure_selects,
    "read_only": measure_read_only,
    "stream": measure_stream,
    "connect": measure_connections,
}


def warm_up(run: Run) -> None:
    """Load the big table into the buffer pool and every hop's code paths, unmeasured."""
    clients.stream(run.endpoints["direct"])
    for target in TARGETS:
        clients.point_selects(run.endpoints[target], 1, 1, False, run.args.table_size)


# -- report -------------------------------------------------------------------------------


def _cell(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def format_table(results: Results) -> str:
    """Medians per target and the ratios, one metric a line."""
    head = ("metric (median)", *TARGETS, "proxy/direct", "proxy/relay")
    rows: list[tuple[str, ...]] = [head]
    for key, metric in results.metrics.items():
        medians = [_cell(results.median(key, t), metric.digits) for t in TARGETS]
        ratios = [_cell(results.ratio(key, "proxy", base), 2) for base in ("direct", "relay")]
        rows.append((metric.label, *medians, *ratios))
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    lines = [
        "  ".join(
            cell.ljust(w) if i == 0 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in rows
    ]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


def _footer(args: argparse.Namespace, env: dict[str, Any]) -> str:
    before, after = env["load_average"][0], env["load_average_after"][0]
    return (
        f"medians of {args.repeat} runs, {args.seconds:g} s each; {env['cpus']} CPUs, load"
        f" average {before:.2f} before, {after:.2f} after; backend {env['backend']};"
        f" stream client {env['stream_client']}; ratios: proxy value / other value"
    )


def to_json(run: Run, environment: dict[str, Any]) -> dict[str, Any]:
    results = run.results
    return {
        "settings": {k: v for k, v in vars(run.args).items() if k != "backend"},
        "environment": environment,
        "metrics": {
            key: {
                "label": metric.label,
                "higher_is_better": metric.higher_is_better,
                "runs": results.values[key],
                "median": {t: results.median(key, t) for t in TARGETS},
                "proxy/direct": results.ratio(key, "proxy", "direct"),
                "proxy/relay": results.ratio(key, "proxy", "relay"),
            }
            for key, metric in results.metrics.items()
        },
    }


def _tool_version(cmd: Sequence[str]) -> str | None:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        return None


def environment(direct: Endpoint) -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg(),
        "python": platform.python_version(),
        "backend": server_version(direct),
        "sysbench": _tool_version(["sysbench", "--version"]),
        "stream_client": clients.cli_binary() or "PyMySQL SSCursor",
    }


# -- main ---------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.passthrough",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the big SELECT")
    parser.add_argument(
        "--threads", default="1,8,32", help="client thread counts for the sysbench workloads"
    )
    parser.add_argument("--seconds", type=float, default=5, help="seconds per measurement")
    parser.add_argument("--repeat", type=int, default=3, help="runs of everything; medians")
    parser.add_argument("--table-size", type=int, default=10_000, help="rows for point selects")
    parser.add_argument(
        "--backend", metavar="URL", help="mysql://admin:password@host:port (default: embedded)"
    )
    parser.add_argument(
        "--workloads", default=",".join(WORKLOADS), help=f"subset of {','.join(WORKLOADS)}"
    )
    parser.add_argument(
        "--proxy-loop", metavar="NAME", help="the proxy's --loop (default: the proxy's default)"
    )
    parser.add_argument(
        "--proxy-workers", type=int, metavar="N", help="the proxy's --workers (default: 1)"
    )
    parser.add_argument(
        "--no-pin",
        action="store_true",
        help="leave the 1-thread point selects' processes to the scheduler (default: "
        "sysbench on the first CPU, the hop on the second)",
    )
    parser.add_argument(
        "--relay-loop", default="auto", metavar="NAME", help="the relay's loop (default: auto)"
    )
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = parser.parse_args(argv)
    try:
        args.threads = [int(t) for t in args.threads.split(",") if t]
    except ValueError:
        parser.error(f"--threads must be a comma-separated list of numbers, not {args.threads!r}")
    args.workloads = [w for w in args.workloads.split(",") if w]
    unknown = set(args.workloads) - set(WORKLOADS)
    if unknown:
        parser.error(f"unknown workloads: {', '.join(sorted(unknown))}")
    return args


def measure(run: Run) -> None:
    """Every workload, --repeat times, rotating which target goes first."""
    warm_up(run)
    for repeat in range(run.args.repeat):
        order = TARGETS[repeat % 3 :] + TARGETS[: repeat % 3]
        log.info("run %d of %d, order %s", repeat + 1, run.args.repeat, ", ".join(order))
        for workload in run.args.workloads:
            _MEASURES[workload](run, order)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr
    )
    admin, stop_backend, embedded = open_backend(args.backend)
    services: dict[str, Service] = {}
    try:
        direct = prepare(admin, args.rows, args.table_size, embedded)
        services["relay"] = start_relay(direct.host, direct.port, args.relay_loop)
        services["proxy"] = start_proxy(
            direct.host, direct.port, loop=args.proxy_loop, workers=args.proxy_workers
        )
        endpoints = {"direct": direct}
        endpoints.update({name: direct.at(s.host, s.port) for name, s in services.items()})
        run = Run(args, endpoints, services)
        env = environment(direct)
        measure(run)
        env["load_average_after"] = os.getloadavg()
        print(format_table(run.results))
        print(_footer(args, env))
        if args.json:
            Path(args.json).write_text(json.dumps(to_json(run, env), indent=2) + "\n")
    finally:
        for service in services.values():
            service.stop()
        stop_backend()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
