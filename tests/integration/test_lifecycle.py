"""The proxy as a process: `python -m proxy serve` started, signalled and read like in production.

Covers graceful shutdown on SIGTERM/SIGINT (running statements finish within the shutdown
timeout, new connections are refused, exit code 0), statements cut by the timeout, the
connection cap (error 1040), start-up errors (exit codes 1 and 2 with one clear line on
stderr, no traceback) and the per-connection log lines.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeAlias

import pymysql
import pytest

from tests.conftest import APP, TEST_DB, admin_connect, wait_until
from tests.support.backend import BackendInfo

Connection: TypeAlias = "pymysql.Connection[Any]"

REPO = Path(__file__).resolve().parents[2]
LISTENING = re.compile(r"mlproxy \S+ listening on (\S+):(\d+),")
START_TIMEOUT = 30.0
ER_CON_COUNT_ERROR = 1040
EXIT_BACKEND = 1
EXIT_CONFIG = 2


def clean_env() -> dict[str, str]:
    """The test process's environment without any MLPROXY_* setting."""
    return {k: v for k, v in os.environ.items() if not k.startswith("MLPROXY_")}


def backend_url(backend: BackendInfo) -> str:
    return f"mysql://{backend.host}:{backend.port}"


def free_port() -> int:
    """A TCP port nobody listens on (bound, read, released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ProxyProcess:
    """`python -m proxy serve ...` in a subprocess; stderr is collected line by line."""

    def __init__(self, args: list[str], env: dict[str, str] | None = None) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "proxy", "serve", *args],
            cwd=REPO,
            env={**clean_env(), **(env or {})},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self._done = threading.Event()
        self._reader = threading.Thread(target=self._read_stderr, daemon=True)
        self._reader.start()
        self.port = 0

    def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line.rstrip("\n"))
        self._done.set()

    def wait_for_line(self, pattern: re.Pattern[str], timeout: float) -> re.Match[str]:
        """The first stderr line matching ``pattern`` (already logged or still to come)."""
        deadline = time.monotonic() + timeout
        checked = 0
        while True:
            finished = self._done.is_set()
            while checked < len(self.lines):
                match = pattern.search(self.lines[checked])
                checked += 1
                if match:
                    return match
            if finished:
                raise AssertionError(f"exited before {pattern.pattern!r}: {self.lines}")
            if time.monotonic() > deadline:
                raise AssertionError(f"no line matching {pattern.pattern!r}: {self.lines}")
            time.sleep(0.02)

    def wait_ready(self) -> ProxyProcess:
        match = self.wait_for_line(LISTENING, START_TIMEOUT)
        self.port = int(match.group(2))
        return self

    def signal(self, sig: int = signal.SIGTERM) -> float:
        self.process.send_signal(sig)
        return time.monotonic()

    def wait_exit(self, timeout: float) -> int:
        code = self.process.wait(timeout)
        self._reader.join(5)
        return code

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self._reader.join(5)
        if self.process.stderr is not None:
            self.process.stderr.close()

    def connect(self, **kwargs: Any) -> Connection:
        options: dict[str, Any] = {"database": TEST_DB, "autocommit": True, "connect_timeout": 10}
        options.update(kwargs)
        return pymysql.connect(
            host="127.0.0.1", port=self.port, user=APP.user, password=APP.password, **options
        )


@pytest.fixture
def spawn(backend: BackendInfo) -> Iterator[Callable[..., ProxyProcess]]:
    """Start proxies against the test backend; any still running at the end is killed."""
    started: list[ProxyProcess] = []

    def start(*args: str, ready: bool = True) -> ProxyProcess:
        process = ProxyProcess(
            ["--listen", "127.0.0.1:0", "--backend", backend_url(backend), *args]
        )
        started.append(process)
        return process.wait_ready() if ready else process

    yield start
    for process in started:
        process.stop()


@pytest.fixture(scope="module")
def pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="lifecycle") as executor:
        yield executor


def run_statement(connection: Connection, sql: str) -> Any:
    with connection.cursor() as cur:
        cur.execute(sql)
        return cur.fetchall()


def backend_thread(connection: Connection) -> int:
    (row,) = run_statement(connection, "SELECT CONNECTION_ID()")
    return int(row[0])


def statement_running(backend: BackendInfo, thread_id: int) -> str | None:
    with admin_connect(backend) as admin, admin.cursor() as cur:
        cur.execute(
            "SELECT INFO FROM information_schema.PROCESSLIST WHERE ID = %s AND COMMAND = 'Query'",
            (thread_id,),
        )
        row = cur.fetchone()
    return None if row is None else str(row[0])


def start_running(
    pool: ThreadPoolExecutor, backend: BackendInfo, connection: Connection, sql: str
) -> Future[Any]:
    """Run ``sql`` in a thread; return once the backend executes it."""
    thread_id = backend_thread(connection)
    future = pool.submit(run_statement, connection, sql)
    assert wait_until(lambda: statement_running(backend, thread_id) == sql, 10)
    return future


def refuses_connections(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


# -- SIGTERM ---------------------------------------------------------------------------------


def test_sigterm_lets_a_running_statement_finish_and_refuses_new_clients(
    spawn: Callable[..., ProxyProcess],
    backend: BackendInfo,
    pool: ThreadPoolExecutor,
) -> None:
    proxy = spawn("--shutdown-timeout", "15")
    client = proxy.connect()
    try:
        future = start_running(pool, backend, client, "SELECT SLEEP(2)")
        signalled = proxy.signal(signal.SIGTERM)
        assert wait_until(lambda: refuses_connections(proxy.port), 3)
        assert future.result(timeout=15) == ((0,),)  # SLEEP ran to its end: it returns 0
        assert proxy.wait_exit(15) == 0
        elapsed = time.monotonic() - signalled
        assert elapsed < 10  # it left once the statement was done, not at the timeout
    finally:
        client.close()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_with_an_idle_client_exits_promptly(
    spawn: Callable[..., ProxyProcess], sig: int
) -> None:
    proxy = spawn("--shutdown-timeout", "20")
    client = proxy.connect()
    try:
        assert run_statement(client, "SELECT 1") == ((1,),)
        signalled = proxy.signal(sig)
        assert proxy.wait_exit(20) == 0
        assert time.monotonic() - signalled < 6
        with pytest.raises(pymysql.err.OperationalError):
            run_statement(client, "SELECT 1")
    finally:
        client.close()


def test_statement_longer_than_the_shutdown_timeout_is_cut(
    spawn: Callable[..., ProxyProcess],
    backend: BackendInfo,
    pool: ThreadPoolExecutor,
) -> None:
    proxy = spawn("--shutdown-timeout", "1")
    client = proxy.connect()
    thread_id = backend_thread(client)
    try:
        future = start_running(pool, backend, client, "SELECT SLEEP(20)")
        signalled = proxy.signal(signal.SIGTERM)
        with pytest.raises(pymysql.err.OperationalError):
            future.result(timeout=10)
        assert proxy.wait_exit(10) == 0
        assert time.monotonic() - signalled < 8
    finally:
        client.close()
        kill_quietly(backend, thread_id)


def kill_quietly(backend: BackendInfo, thread_id: int) -> None:
    with (
        admin_connect(backend) as admin,
        admin.cursor() as cur,
        contextlib.suppress(pymysql.err.OperationalError),  # already gone
    ):
        cur.execute(f"KILL {thread_id}")


def test_statement_cut_at_shutdown_does_not_keep_running_on_the_backend(
    spawn: Callable[..., ProxyProcess],
    backend: BackendInfo,
    pool: ThreadPoolExecutor,
) -> None:
    lock = f"lifecycle_{os.getpid()}_{time.monotonic_ns()}"
    holder = admin_connect(backend)
    proxy = spawn("--shutdown-timeout", "1")
    client = proxy.connect()
    thread_id = backend_thread(client)
    statement = f"SELECT GET_LOCK('{lock}', 60)"
    try:
        assert run_statement(holder, f"SELECT GET_LOCK('{lock}', 0)") == ((1,),)
        future = start_running(pool, backend, client, statement)
        proxy.signal(signal.SIGTERM)
        assert proxy.wait_exit(10) == 0
        # The proxy KILLs the statement before it cancels the session: the client gets
        # either the backend's answer to an interrupted GET_LOCK (NULL, as with a direct
        # KILL QUERY) or a lost connection, never a lock acquired after the proxy exited.
        with contextlib.suppress(pymysql.err.OperationalError):
            assert future.result(timeout=5) == ((None,),)
        assert wait_until(lambda: statement_running(backend, thread_id) is None, 3)
    finally:
        client.close()
        kill_quietly(backend, thread_id)
        holder.close()


# -- the connection cap ------------------------------------------------------------------------


def first_packet(port: int) -> bytes:
    """The payload of the first packet the proxy sends a new connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        header = sock.recv(4, socket.MSG_WAITALL)
        length = int.from_bytes(header[:3], "little")
        return sock.recv(length, socket.MSG_WAITALL)


def test_connection_cap_refuses_the_next_client_with_1040(
    spawn: Callable[..., ProxyProcess],
) -> None:
    proxy = spawn("--max-connections", "2")
    first, second = proxy.connect(), proxy.connect()
    try:
        refusal = first_packet(proxy.port)
        assert refusal[:1] == b"\xff"
        assert struct.unpack("<H", refusal[1:3])[0] == ER_CON_COUNT_ERROR
        assert refusal[3:9] == b"#08004"
        with pytest.raises(pymysql.err.OperationalError) as caught:
            proxy.connect()
        assert caught.value.args[0] == ER_CON_COUNT_ERROR
        assert run_statement(first, "SELECT 1") == ((1,),)  # the admitted ones still work
    finally:
        first.close()
    # A freed slot admits a new client (the proxy needs a moment to see the close).
    admitted: list[Connection] = []

    def try_connect() -> bool:
        try:
            admitted.append(proxy.connect())
        except pymysql.err.OperationalError as exc:
            assert exc.args[0] == ER_CON_COUNT_ERROR
            return False
        return True

    try:
        assert wait_until(try_connect, 5)
        assert run_statement(admitted[0], "SELECT 2") == ((2,),)
    finally:
        for connection in [second, *admitted]:
            connection.close()


# -- start-up errors ---------------------------------------------------------------------------


def run_to_exit(args: list[str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "proxy", "serve", *args],
        cwd=REPO,
        env=clean_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ (\w+) ")


def one_clear_line(result: subprocess.CompletedProcess[str]) -> str:
    """The single error line of a failed start: no traceback, no warning or error log
    records; the only other lines allowed are ordinary INFO lines logged during start-up."""
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    log_levels = [m.group(1) for m in map(LOG_LINE.match, lines) if m]
    assert set(log_levels) <= {"INFO"}, result.stderr
    errors = [line for line in lines if not LOG_LINE.match(line)]
    assert len(errors) == 1, result.stderr
    assert errors[0].startswith("mlproxy: "), errors[0]
    return errors[0]


def test_unreachable_backend_exits_1_naming_the_address() -> None:
    port = free_port()
    result = run_to_exit(["--listen", "127.0.0.1:0", "--backend", f"mysql://127.0.0.1:{port}"])
    assert result.returncode == EXIT_BACKEND
    assert f"127.0.0.1:{port}" in one_clear_line(result)


def test_listen_port_in_use_exits_2_naming_the_address(backend: BackendInfo) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_to_exit(["--listen", f"127.0.0.1:{port}", "--backend", backend_url(backend)])
    assert result.returncode == EXIT_CONFIG
    assert f"127.0.0.1:{port}" in one_clear_line(result)


BAD_CONFIGS: dict[str, tuple[list[str], str]] = {
    "max-connections-0": (["--max-connections", "0"], "max_connections"),
    "max-connections-word": (["--max-connections", "lots"], "max_connections"),
    "backend-scheme": (["--backend", "http://127.0.0.1:3306"], "mysql://"),
    "backend-port": (["--backend", "mysql://127.0.0.1:port"], "port"),
    "listen-no-port": (["--listen", "127.0.0.1"], "listen"),
    "log-level": (["--log-level", "chatty"], "log_level"),
    "cert-without-key": (["--tls-cert", "cert.pem"], "tls_key"),
}


@pytest.mark.parametrize(("args", "mention"), BAD_CONFIGS.values(), ids=BAD_CONFIGS.keys())
def test_bad_setting_exits_2_with_one_line(
    backend: BackendInfo, args: list[str], mention: str
) -> None:
    base = ["--listen", "127.0.0.1:0", "--backend", backend_url(backend)]
    result = run_to_exit(base + args)
    assert result.returncode == EXIT_CONFIG
    assert mention in one_clear_line(result)


def test_missing_backend_setting_exits_2() -> None:
    result = run_to_exit(["--listen", "127.0.0.1:0"])
    assert result.returncode == EXIT_CONFIG
    assert "--backend" in one_clear_line(result)


def test_config_file_with_an_unknown_key_exits_2_naming_it(
    backend: BackendInfo, tmp_path: Path
) -> None:
    path = tmp_path / "mlproxy.toml"
    path.write_text(
        f'backend = "{backend_url(backend)}"\nlisten = "127.0.0.1:0"\nmax_conections = 5\n',
        encoding="utf-8",
    )
    result = run_to_exit(["--config", str(path)])
    assert result.returncode == EXIT_CONFIG
    assert "max_conections" in one_clear_line(result)


@pytest.mark.parametrize("setting", ["--users-file", "--tls-cert"])
def test_unreadable_file_setting_exits_2_naming_the_file(
    backend: BackendInfo, tmp_path: Path, setting: str
) -> None:
    missing = tmp_path / "missing.pem"
    args = ["--listen", "127.0.0.1:0", "--backend", backend_url(backend), setting, str(missing)]
    if setting == "--tls-cert":
        args += ["--tls-key", str(missing)]
    result = run_to_exit(args)
    assert result.returncode == EXIT_CONFIG
    line = one_clear_line(result)
    assert "missing.pem" in line or "certificate" in line


# -- log lines ---------------------------------------------------------------------------------


def test_open_and_close_are_logged_with_connection_id_and_user(
    spawn: Callable[..., ProxyProcess],
) -> None:
    proxy = spawn()
    client = proxy.connect()
    connection_id = client.thread_id()
    client.close()
    opened = proxy.wait_for_line(re.compile(rf" \[conn {connection_id}\]: opened: .*"), 10)
    closed = proxy.wait_for_line(re.compile(rf" \[conn {connection_id}\]: closed .*"), 10)
    for line in (opened.string, closed.string):
        assert f"user {APP.user}" in line
        # the id once, from the format; the message does not write it again
        assert line.count(f"conn {connection_id}") == 1, line
        assert "connection" not in line.partition(f"[conn {connection_id}]: ")[2], line
    proxy.signal(signal.SIGTERM)
    assert proxy.wait_exit(20) == 0


def test_refused_login_is_logged_with_connection_id(
    spawn: Callable[..., ProxyProcess],
) -> None:
    proxy = spawn()
    with pytest.raises(pymysql.err.OperationalError):
        pymysql.connect(
            host="127.0.0.1", port=proxy.port, user=APP.user, password="wrong", connect_timeout=10
        )
    line = proxy.wait_for_line(re.compile(r" \[conn \d+\]: login refused: .*"), 10).group(0)
    assert "Access denied" in line
    proxy.signal(signal.SIGTERM)
    assert proxy.wait_exit(20) == 0
