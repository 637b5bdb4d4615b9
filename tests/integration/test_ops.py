"""Operations (issue 14): ``/metrics`` moves with the work (parsed with prometheus-client's
own parser), ``/healthz`` and ``/readyz`` say what a load balancer needs (503 when the
backend stops answering and from the start of a shutdown), ``--workers`` report as one
process group, JSON logs carry the session's context and an ML statement's summary, and
``--version`` answers."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pymysql
import pytest
from prometheus_client.parser import text_string_to_metric_families

from proxy import __version__
from proxy.logs import JSONFormatter
from tests.conftest import APP, TEST_DB, RunningProxy, start_proxy
from tests.support import switchable_backend
from tests.support.backend import BackendInfo

REPO = Path(__file__).resolve().parents[2]
SENTIMENT = "SELECT aws_comprehend_detect_sentiment(%s, 'en')"


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def scrape(base: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of /metrics: (name, sorted labels) -> value."""
    status, text = get(f"{base}/metrics")
    assert status == 200
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: dict[Any, float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def total(samples: dict[Any, float], name: str) -> float:
    return sum(v for (n, _), v in samples.items() if n == name)


class Forwarder:
    """A TCP forwarder between the proxy and the backend that a test can stop: the
    backend, as far as the proxy's readiness check can tell, goes away."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=_pipe, args=(a, b), daemon=True).start()

    def stop(self) -> None:
        self.listener.close()


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    """One direction; the thread reading a socket closes it once the other side is told."""
    with contextlib.suppress(OSError):
        while data := source.recv(65536):
            sink.sendall(data)
    with contextlib.suppress(OSError):
        sink.shutdown(socket.SHUT_WR)
    source.close()


@pytest.fixture
def ops_proxy(backend: BackendInfo) -> Iterator[tuple[RunningProxy, str]]:
    switchable_backend.reset()
    running = start_proxy(
        backend,
        metrics_listen="127.0.0.1:0",
        comprehend_backend=switchable_backend.SETTING,
    )
    assert running.server is not None and running.server.ops.endpoint is not None
    yield running, f"http://127.0.0.1:{running.server.ops.endpoint.port}"
    running.stop()


def test_metrics_move_with_the_work(ops_proxy: tuple[RunningProxy, str]) -> None:
    proxy, base = ops_proxy
    before = scrape(base)
    assert value(before, "mlproxy_client_connections") == 0
    with proxy.connect() as conn, conn.cursor() as cur:
        during = scrape(base)
        assert value(during, "mlproxy_client_connections") == 1
        cur.execute("SELECT 1")
        plain = value(scrape(base), "mlproxy_statements_total", path="plain")
        for _ in range(20):  # served from the sockets' callbacks: counted all the same
            cur.execute("SELECT 2")
        assert value(scrape(base), "mlproxy_statements_total", path="plain") == plain + 20
        cur.execute(SENTIMENT, ("metrics are fun",))
        cur.execute(SENTIMENT, ("metrics are fun",))  # the cache answers
    with pytest.raises(pymysql.err.OperationalError):
        pymysql.connect(host=proxy.host, port=proxy.port, user=APP.user, password="wrong")
    after = scrape(base)
    assert value(after, "mlproxy_client_connections") == 0
    # the connection's own set-up statements are plain too: at least our one
    assert value(after, "mlproxy_statements_total", path="plain") >= 1
    assert value(after, "mlproxy_statements_total", path="ml") == 2
    assert value(after, "mlproxy_login_failures_total") == 1
    backend = "python:tests.support.switchable_backend:sentiment"
    requests = value(after, "mlproxy_ml_backend_requests_total", backend=backend, outcome="ok")
    assert requests == len(switchable_backend.batches) == 1
    assert value(after, "mlproxy_ml_request_duration_seconds_count", backend=backend) == 1
    assert value(after, "mlproxy_ml_cache_hits_total") == 1
    assert value(after, "mlproxy_aurora_ml_actual_request_cnt_total") == 1
    assert value(after, "mlproxy_aurora_ml_logical_request_cnt_total") == 2


def test_throttled_requests_are_counted(backend: BackendInfo) -> None:
    """A service that always throttles: retried until the statement's time budget
    (ml_statement_timeout) runs out, every attempt counted as throttled."""
    switchable_backend.reset()
    switchable_backend.mode = "throttle"
    proxy = start_proxy(
        backend,
        metrics_listen="127.0.0.1:0",
        comprehend_backend=switchable_backend.SETTING,
        ml_statement_timeout=1,
    )
    try:
        assert proxy.server is not None and proxy.server.ops.endpoint is not None
        base = f"http://127.0.0.1:{proxy.server.ops.endpoint.port}"
        with (
            proxy.connect() as conn,
            conn.cursor() as cur,
            pytest.raises(pymysql.err.OperationalError),
        ):
            cur.execute(SENTIMENT, ("always throttled",))
        samples = scrape(base)
    finally:
        proxy.stop()
        switchable_backend.reset()
    backend_name = "python:tests.support.switchable_backend:sentiment"
    throttled = value(samples, "mlproxy_ml_throttled_total", backend=backend_name)
    assert throttled == value(
        samples, "mlproxy_ml_backend_requests_total", backend=backend_name, outcome="throttled"
    )
    assert throttled >= 1


def test_health_and_readiness_follow_the_backend(backend: BackendInfo) -> None:
    forwarder = Forwarder((backend.host, backend.port))
    via_forwarder = dataclasses.replace(backend, host="127.0.0.1", port=forwarder.port)
    proxy = start_proxy(via_forwarder, metrics_listen="127.0.0.1:0")
    try:
        assert proxy.server is not None and proxy.server.ops.endpoint is not None
        base = f"http://127.0.0.1:{proxy.server.ops.endpoint.port}"
        assert get(f"{base}/healthz") == (200, "ok\n")
        assert get(f"{base}/readyz") == (200, "ready\n")
        assert get(f"{base}/nothing")[0] == 404
        forwarder.stop()
        deadline = time.monotonic() + 5
        while (status := get(f"{base}/readyz"))[0] == 200 and time.monotonic() < deadline:
            time.sleep(0.2)  # the last answer is reused for a second
        assert status == (503, f"backend 127.0.0.1:{forwarder.port} unreachable\n")
        assert get(f"{base}/healthz")[0] == 200  # alive all the same
    finally:
        proxy.stop()


def test_readiness_turns_503_at_the_start_of_a_shutdown(backend: BackendInfo) -> None:
    proxy = start_proxy(backend, metrics_listen="127.0.0.1:0", shutdown_timeout=10)
    assert proxy.server is not None and proxy.server.ops.endpoint is not None
    base = f"http://127.0.0.1:{proxy.server.ops.endpoint.port}"
    conn = proxy.connect()
    running = threading.Thread(target=lambda: conn.cursor().execute("SELECT SLEEP(2)"))
    running.start()
    time.sleep(0.3)
    assert proxy.loop is not None
    proxy.loop.call_soon_threadsafe(proxy.server.request_stop)
    time.sleep(0.3)  # draining: the statement still runs
    assert get(f"{base}/readyz") == (503, "shutting down\n")
    running.join(10)
    conn.close()
    proxy.stop()


def test_json_logs_carry_the_session_and_the_ml_summary(
    ops_proxy: tuple[RunningProxy, str],
) -> None:
    proxy, _ = ops_proxy
    lines: list[str] = []
    handler = logging.Handler()
    formatter = JSONFormatter()
    handler.emit = lambda record: lines.append(formatter.format(record))  # type: ignore[method-assign]
    logger = logging.getLogger("mlproxy")
    logger.addHandler(handler)
    previous = logger.level
    logger.setLevel(logging.INFO)
    try:
        with proxy.connect() as conn, conn.cursor() as cur:
            cur.execute(SENTIMENT, ("log me as json",))
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)
    records = [json.loads(line) for line in lines]
    summaries = [r for r in records if "ml" in r]
    assert len(summaries) == 1, records
    (summary,) = summaries
    assert summary["ml"] | {"seconds": 0} == {
        "calls": 1,
        "backend_requests": 1,
        "cache_hits": 0,
        "retries": 0,
        "seconds": 0,
        "ok": True,
    }
    assert summary["user"] == APP.user and isinstance(summary["connection_id"], int)
    assert {"time", "level", "logger", "message"} <= summary.keys()
    assert all(APP.password not in line for line in lines)


def test_workers_report_as_one_process_group(backend: BackendInfo, tmp_path: Path) -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "proxy",
            "serve",
            "--listen=127.0.0.1:0",
            f"--backend=mysql://{backend.host}:{backend.port}",
            "--workers=2",
            "--metrics-listen=127.0.0.1:0",
            "--log-format=json",
        ],
        cwd=REPO,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        metrics_port = proxy_port = None
        deadline = time.monotonic() + 60
        while (metrics_port is None or proxy_port is None) and time.monotonic() < deadline:
            line = json.loads(process.stderr.readline())
            if found := re.search(r"http://127\.0\.0\.1:(\d+)/metrics", line["message"]):
                metrics_port = int(found.group(1))
            if found := re.search(r"listening on 127\.0\.0\.1:(\d+), 2 workers", line["message"]):
                proxy_port = int(found.group(1))
        assert metrics_port and proxy_port
        base = f"http://127.0.0.1:{metrics_port}"
        sessions = [
            pymysql.connect(
                host="127.0.0.1",
                port=proxy_port,
                user=APP.user,
                password=APP.password,
                database=TEST_DB,
            )
            for _ in range(6)
        ]
        for session in sessions:
            with session.cursor() as cur:
                cur.execute("SELECT 1")
        samples = scrape(base)
        assert value(samples, "mlproxy_client_connections") == 6
        assert value(samples, "mlproxy_statements_total", path="plain") >= 6
        assert get(f"{base}/readyz") == (200, "ready\n")
        for session in sessions:
            session.close()
    finally:
        process.terminate()
        process.wait(30)
        assert process.stderr is not None
        process.stderr.close()


def test_version() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "proxy", "--version"], capture_output=True, text=True, cwd=REPO
    )
    assert done.returncode == 0 and done.stdout == f"mlproxy {__version__}\n"
    assert re.fullmatch(r"\d+\.\d+\.\d+.*", __version__)
