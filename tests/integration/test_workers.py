"""``mlproxy serve --workers 2``: two processes sharing one port (proxy/workers.py).

The proxy runs as a subprocess, as in production. Covered: many connections spread over
both workers (each worker's connection ids lie in its own slice of the id range); KILL
QUERY and KILL CONNECTION of a connection another worker owns, issued from any
connection; SIGTERM stops the supervisor and every worker; a worker that dies is
replaced; a start-up failure is the same one line and exit code as with one process.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeAlias

import pymysql
import pytest

from proxy.session.kill import worker_of
from proxy.workers import UNIX_PATH_MAX, peer_directory
from tests.conftest import TEST_DB, admin_connect, wait_until
from tests.integration.test_lifecycle import (
    EXIT_BACKEND,
    ProxyProcess,
    backend_thread,
    backend_url,
    free_port,
    one_clear_line,
    run_statement,
    run_to_exit,
    statement_running,
)
from tests.support.backend import BackendInfo

Connection: TypeAlias = "pymysql.Connection[Any]"

WORKERS = 2
PIDS = re.compile(r"mlproxy \S+ listening on \S+, 2 workers \(pids ([\d, ]+)\)")
REPLACED = re.compile(r"worker (\d) \(pid \d+\) exited")
ER_QUERY_INTERRUPTED = 1317
CR_SERVER_LOST = 2013


@pytest.fixture
def workers(backend: BackendInfo) -> Iterator[ProxyProcess]:
    with serving_workers(backend) as process:
        yield process


@contextlib.contextmanager
def serving_workers(backend: BackendInfo, *settings: str) -> Iterator[ProxyProcess]:
    args = ["--listen", "127.0.0.1:0", "--backend", backend_url(backend), *settings]
    process = ProxyProcess([*args, "--workers", str(WORKERS), "--shutdown-timeout", "5"])
    try:
        yield process.wait_ready()
    finally:
        if process.process.poll() is None:
            process.signal(signal.SIGTERM)
            with contextlib.suppress(Exception):
                process.wait_exit(20)
        process.stop()  # SIGKILL if SIGTERM was not enough
        for pid in worker_pids(process, wait=False):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


@pytest.fixture
def opened() -> Iterator[list[Connection]]:
    connections: list[Connection] = []
    yield connections
    for connection in connections:
        with contextlib.suppress(pymysql.err.Error):
            connection.close()


def worker_pids(process: ProxyProcess, wait: bool = True) -> list[int]:
    """The workers' pids, from the supervisor's "listening" line."""
    if not wait and not any(PIDS.search(line) for line in process.lines):
        return []
    match = process.wait_for_line(PIDS, 30)
    return [int(pid) for pid in match.group(1).split(", ")]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def one_per_worker(
    process: ProxyProcess, opened: list[Connection], tries: int = 100
) -> dict[int, Connection]:
    """Open connections until each worker holds one; the kernel picks the worker."""
    owners: dict[int, Connection] = {}
    for _ in range(tries):
        connection = process.connect()
        opened.append(connection)
        owner = worker_of(connection.thread_id(), WORKERS)
        assert owner is not None
        owners.setdefault(owner, connection)
        if len(owners) == WORKERS:
            return owners
    raise AssertionError(f"{tries} connections all went to workers {sorted(owners)}")


def test_many_connections_are_served_by_both_workers(
    workers: ProxyProcess, opened: list[Connection]
) -> None:
    served: dict[int, int] = {}
    for n in range(40):
        connection = workers.connect()
        opened.append(connection)
        assert run_statement(connection, f"SELECT {n}, CONNECTION_ID() < 1073741824") == ((n, 1),)
        owner = worker_of(connection.thread_id(), WORKERS)
        assert owner is not None
        served[owner] = served.get(owner, 0) + 1
    assert set(served) == {0, 1}, served
    assert len({c.thread_id() for c in opened}) == len(opened)  # ids never collide


def test_statements_from_many_threads_through_both_workers(workers: ProxyProcess) -> None:
    def session(n: int) -> tuple[int, int]:
        with workers.connect() as connection:
            for i in range(20):
                assert run_statement(connection, f"SELECT {n * 100 + i}") == ((n * 100 + i,),)
            owner = worker_of(connection.thread_id(), WORKERS)
            assert owner is not None
            return n, owner

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(session, range(32)))
    owners = {owner for _, owner in results}
    # The kernel picks the worker of each connection (SO_REUSEPORT); two runs in about
    # six under full-suite load gave all 32 to one worker. Both must serve: more sessions
    # until the other one has had some (2^-200 to miss a healthy worker by chance).
    extra = 0
    while owners != {0, 1} and extra < 200:
        owners.add(session(100 + extra)[1])
        extra += 1
    # (the supervisor's and workers' log, to tell a worker that restarted from bad luck)
    assert owners == {0, 1}, workers.lines[-30:]


@pytest.mark.parametrize("killer_worker", [0, 1])
def test_kill_query_of_another_workers_connection(
    workers: ProxyProcess,
    backend: BackendInfo,
    opened: list[Connection],
    killer_worker: int,
) -> None:
    by_worker = one_per_worker(workers, opened)
    killer, victim = by_worker[killer_worker], by_worker[1 - killer_worker]
    thread_id = backend_thread(victim)
    with ThreadPoolExecutor(max_workers=1) as pool:
        future = pool.submit(_outcome, victim, "SELECT SLEEP(30)")
        assert wait_until(lambda: statement_running(backend, thread_id) is not None, 10)
        assert _outcome(killer, f"KILL QUERY {victim.thread_id()}")[0] == "ok"
        assert future.result(timeout=5) == ("error", ER_QUERY_INTERRUPTED)
    assert _outcome(victim, "SELECT 1") == ("ok", ((1,),))  # only the statement ended


def test_kill_connection_of_another_workers_connection(
    workers: ProxyProcess, opened: list[Connection]
) -> None:
    by_worker = one_per_worker(workers, opened)
    killer, victim = by_worker[0], by_worker[1]
    assert _outcome(killer, f"KILL CONNECTION {victim.thread_id()}")[0] == "ok"
    assert wait_until(lambda: _outcome(victim, "SELECT 1")[0] == "error", 5)


ML_TEXTS = "workers_ml_texts"
ML_STATEMENT = f"SELECT aws_comprehend_detect_sentiment(txt, 'en') FROM {ML_TEXTS}"


@pytest.fixture
def ml_workers(backend: BackendInfo) -> Iterator[ProxyProcess]:
    """Workers whose model is slow (tests.support.slow_models: 0.3 s per batch, one in flight):
    the statement above takes 20 batches, about 6 s, unless stopped."""
    with admin_connect(backend, database=TEST_DB) as admin, admin.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS {ML_TEXTS}")
        cur.execute(f"CREATE TABLE {ML_TEXTS} (id INT PRIMARY KEY, txt VARCHAR(100))")
        cur.execute(f"INSERT INTO {ML_TEXTS} SELECT seq, CONCAT('text ', seq) FROM seq_1_to_500")
    settings = ["--comprehend-backend", "python:tests.support.slow_models:sentiment_async"]
    settings += ["--ml-max-in-flight", "1", "--ml-cache-entries", "0"]
    try:
        with serving_workers(backend, *settings) as process:
            yield process
    finally:
        with admin_connect(backend, database=TEST_DB) as admin, admin.cursor() as cur:
            cur.execute(f"DROP TABLE IF EXISTS {ML_TEXTS}")


def listed(watcher: Connection, thread_id: int) -> tuple[str, str] | None:
    """(State, Info) of a backend thread in the watcher's SHOW FULL PROCESSLIST."""
    for row in run_statement(watcher, "SHOW FULL PROCESSLIST"):
        if row[0] == thread_id:
            return row[6], row[7]
    return None


@pytest.mark.parametrize("named_by", ["proxy id", "backend thread id"])
def test_an_ml_statement_of_another_worker_is_listed_and_stopped_by_kill_query(
    ml_workers: ProxyProcess, opened: list[Connection], named_by: str
) -> None:
    by_worker = one_per_worker(ml_workers, opened)
    watcher, victim = by_worker[0], by_worker[1]
    thread_id = backend_thread(victim)
    target = victim.thread_id() if named_by == "proxy id" else thread_id
    with ThreadPoolExecutor(max_workers=1) as pool:
        future = pool.submit(_outcome, victim, ML_STATEMENT)
        busy = ("Batched machine learning", ML_STATEMENT)
        assert wait_until(lambda: listed(watcher, thread_id) == busy, 10)
        sent = time.monotonic()
        assert _outcome(watcher, f"KILL QUERY {target}")[0] == "ok"
        assert future.result(timeout=5) == ("error", ER_QUERY_INTERRUPTED)
        assert time.monotonic() - sent < 1.0
    assert _outcome(victim, "SELECT 1") == ("ok", ((1,),))


def test_kill_of_an_unknown_id_in_another_workers_slice_is_1094(
    workers: ProxyProcess, opened: list[Connection]
) -> None:
    by_worker = one_per_worker(workers, opened)
    unknown = by_worker[1].thread_id() + 999_983
    assert _outcome(by_worker[0], f"KILL QUERY {unknown}") == ("error", 1094)


def test_sigterm_stops_the_supervisor_and_every_worker(workers: ProxyProcess) -> None:
    pids = worker_pids(workers)
    with workers.connect() as connection:
        assert run_statement(connection, "SELECT 1") == ((1,),)
    workers.signal(signal.SIGTERM)
    assert workers.wait_exit(20) == 0
    assert wait_until(lambda: not any(alive(pid) for pid in pids), 5)


def test_a_worker_that_dies_is_replaced(workers: ProxyProcess, opened: list[Connection]) -> None:
    pids = worker_pids(workers)
    os.kill(pids[1], signal.SIGKILL)
    assert workers.wait_for_line(REPLACED, 10).group(1) == "1"
    # The replacement listens again: both workers serve, the port never stopped serving.
    assert wait_until(lambda: _serves_both(workers, opened), 30)


def test_unreachable_backend_with_workers_exits_1_with_one_line() -> None:
    port = free_port()
    args = ["--listen", "127.0.0.1:0", "--backend", f"mysql://127.0.0.1:{port}", "--workers", "2"]
    result = run_to_exit(args)
    assert result.returncode == EXIT_BACKEND
    assert f"127.0.0.1:{port}" in one_clear_line(result)


def test_workers_start_when_the_temporary_directory_is_too_deep_for_a_socket(
    backend: BackendInfo, tmp_path: Path
) -> None:
    """A TMPDIR whose path leaves no room for a socket's (108 bytes on Linux): the peer
    sockets go to /tmp instead (it used to fail with "the worker did not start in time")."""
    deep = tmp_path / ("deep" * 30)
    deep.mkdir()
    args = ["--listen", "127.0.0.1:0", "--backend", backend_url(backend), "--workers", "2"]
    process = ProxyProcess(args, env={"TMPDIR": str(deep)})
    try:
        process.wait_ready()
        with process.connect() as connection:
            assert run_statement(connection, "SELECT 1") == ((1,),)
        process.signal(signal.SIGTERM)
        assert process.wait_exit(20) == 0
    finally:
        process.stop()


def test_peer_directory_is_short_enough_for_every_workers_socket(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / ("deep" * 30)))
    (tmp_path / ("deep" * 30)).mkdir()
    directory = peer_directory(64)
    try:
        assert not directory.startswith(str(tmp_path))
        assert len(os.fsencode(os.path.join(directory, "worker-63.sock"))) <= UNIX_PATH_MAX
        assert os.stat(directory).st_mode & 0o777 == 0o700
    finally:
        os.rmdir(directory)
    short = tempfile.mkdtemp(dir="/tmp")
    monkeypatch.setattr(tempfile, "tempdir", short)
    directory = peer_directory(2)
    try:
        assert directory.startswith(short + "/")  # the temporary directory when it fits
    finally:
        os.rmdir(directory)
        os.rmdir(short)


def _serves_both(process: ProxyProcess, opened: list[Connection]) -> bool:
    with contextlib.suppress(AssertionError):
        one_per_worker(process, opened, tries=20)
        return True
    return False


def _outcome(connection: Connection, sql: str) -> tuple[str, Any]:
    try:
        return "ok", run_statement(connection, sql)
    except pymysql.err.MySQLError as exc:
        return "error", exc.args[0]
