"""Shared fixtures: a real backend server, test accounts, and the proxy on port 0.

The proxy under test runs in-process on its own event loop in a background thread, so
tests drive it with ordinary blocking client libraries. Tests that need special settings
start their own with ``start_proxy(backend, **settings)``.

Event loops: proxies run on ``MLPROXY_TEST_LOOP`` (auto, asyncio or uvloop; default auto:
uvloop when installed, as in production). Where the loops differ in ways the proxy
depends on, the tests run under each installed loop (ids ``[asyncio]``, ``[uvloop]``):
TLS (the ClientHello hand-over in proxy/transport/stream.py works with each loop's own start_tls)
and the pass-through relay. That is every test of ``BOTH_LOOPS_MODULES`` and every test
with "tls" in its name that uses the ``proxy_loop`` fixture (directly or through
``proxy``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pymysql
import pytest

from proxy.config import Config, load_config
from proxy.server import ProxyServer
from proxy.transport import event_loop
from tests.support.backend import BackendInfo, provide_backend
from tests.support.redis_server import RedisServer, start_redis

TEST_DB = "mlproxy_test"

#: The loop in-process proxies run on unless a test is run under each (module docstring).
TEST_LOOP = os.environ.get("MLPROXY_TEST_LOOP", "auto")
BOTH_LOOPS_MODULES = frozenset(
    {
        "tests.integration.test_auth",
        "tests.integration.test_backend_tls",
        "tests.integration.test_passthrough",
    }
)


def installed_loops() -> tuple[str, ...]:
    return ("asyncio", "uvloop") if event_loop.uvloop_installed() else ("asyncio",)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run the TLS and pass-through tests under each installed event loop."""
    if "proxy_loop" not in metafunc.fixturenames:
        return
    if metafunc.module.__name__ in BOTH_LOOPS_MODULES or "tls" in metafunc.function.__name__:
        metafunc.parametrize("proxy_loop", installed_loops(), indirect=True, scope="session")


@pytest.fixture(scope="session")
def proxy_loop(request: pytest.FixtureRequest) -> str:
    """The event loop of this test's proxies: a parameter (above), else TEST_LOOP."""
    return str(getattr(request, "param", TEST_LOOP))


@dataclass(frozen=True)
class Account:
    user: str
    password: str


APP = Account("app", "app-pw")
OTHER = Account("other", "other-pw")


@pytest.fixture(scope="session")
def backend() -> Iterator[BackendInfo]:
    info, teardown = provide_backend()
    try:
        _create_accounts(info)
        yield info
    finally:
        teardown()


def admin_connect(backend: BackendInfo, **kwargs: Any) -> pymysql.Connection[Any]:
    """A direct connection to the backend as its admin (bypassing the proxy)."""
    return pymysql.connect(
        host=backend.host,
        port=backend.port,
        user=backend.admin_user,
        password=backend.admin_password,
        autocommit=True,
        **kwargs,
    )


def _create_accounts(backend: BackendInfo) -> None:
    with admin_connect(backend) as conn, conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE IF NOT EXISTS {TEST_DB} CHARACTER SET utf8mb4")
        for account in (APP, OTHER):
            cur.execute(f"DROP USER IF EXISTS '{account.user}'@'%'")
            cur.execute(f"CREATE USER '{account.user}'@'%' IDENTIFIED BY '{account.password}'")
            cur.execute(f"GRANT ALL ON {TEST_DB}.* TO '{account.user}'@'%'")


@dataclass
class RunningProxy:
    """A ProxyServer serving on its own loop in a background thread."""

    config: Config
    backend: BackendInfo
    server: ProxyServer | None = None
    loop: asyncio.AbstractEventLoop | None = None
    thread: threading.Thread | None = None
    error: BaseException | None = None
    _ready: threading.Event = field(default_factory=threading.Event)

    @property
    def host(self) -> str:
        return "127.0.0.1"

    @property
    def port(self) -> int:
        assert self.server is not None
        return self.server.port

    def start(self) -> RunningProxy:
        self.thread = threading.Thread(target=self._run, name="mlproxy-under-test", daemon=True)
        self.thread.start()
        if not self._ready.wait(30):
            raise RuntimeError("proxy did not start in 30 s")
        if self.error is not None:
            raise self.error
        return self

    def _run(self) -> None:
        event_loop.run(self._main(), self.config.loop)

    async def _main(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.server = ProxyServer(self.config)
        try:
            await self.server.start()
        except BaseException as exc:
            self.error = exc
            self._ready.set()
            return
        self._ready.set()
        await self.server.serve()

    def stop(self, timeout: float = 30) -> None:
        if self.loop is not None and self.server is not None and self.thread is not None:
            self.loop.call_soon_threadsafe(self.server.request_stop)
            self.thread.join(timeout)

    def session_count(self) -> int:
        assert self.server is not None and self.server.ctx is not None
        return len(self.server.ctx.sessions)

    def connect(self, account: Account = APP, **kwargs: Any) -> pymysql.Connection[Any]:
        """A PyMySQL connection through the proxy (autocommit on, test database)."""
        options: dict[str, Any] = {"database": TEST_DB, "autocommit": True}
        options.update(kwargs)
        return pymysql.connect(
            host=self.host, port=self.port, user=account.user, password=account.password, **options
        )


def start_proxy(backend: BackendInfo, **settings: Any) -> RunningProxy:
    """Start a proxy with extra settings (e.g. max_connections=2); stop() it afterwards."""
    values: dict[str, Any] = {
        "listen": "127.0.0.1:0",
        "backend": f"mysql://{backend.host}:{backend.port}",
        "shutdown_timeout": 5,
        "loop": TEST_LOOP,
    }
    values.update(settings)
    return RunningProxy(load_config(values, env={}), backend).start()


@pytest.fixture(scope="session")
def proxy(backend: BackendInfo, proxy_loop: str) -> Iterator[RunningProxy]:
    running = start_proxy(backend, loop=proxy_loop)
    yield running
    running.stop()


@pytest.fixture
def conn(proxy: RunningProxy) -> Iterator[pymysql.Connection[Any]]:
    connection = proxy.connect()
    yield connection
    connection.close()


@pytest.fixture
def direct(backend: BackendInfo) -> Iterator[pymysql.Connection[Any]]:
    """The same account straight to the backend, for side-by-side comparisons."""
    connection = pymysql.connect(
        host=backend.host,
        port=backend.port,
        user=APP.user,
        password=APP.password,
        database=TEST_DB,
        autocommit=True,
    )
    yield connection
    connection.close()


def unique(prefix: str = "t") -> str:
    """A table or object name no other test uses."""
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


def wait_until(condition: Callable[[], bool], within: float = 5.0) -> bool:
    """Poll ``condition`` every 50 ms for up to ``within`` seconds; its last answer."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


@pytest.fixture
def tables(direct: pymysql.Connection[Any]) -> Iterator[Callable[[str], str]]:
    """Create tables (columns given as SQL) via the direct connection; dropped afterwards."""
    made: list[str] = []

    def make(columns: str) -> str:
        name = unique()
        with direct.cursor() as cur:
            cur.execute(f"CREATE TABLE {name} ({columns}) ENGINE=InnoDB CHARACTER SET utf8mb4")
        made.append(name)
        return name

    yield make
    with direct.cursor() as cur:
        cur.execute("SET SESSION lock_wait_timeout = 10")  # fail, not hang, on a leaked lock
        for name in made:
            cur.execute(f"DROP TABLE IF EXISTS {name}")


@contextlib.contextmanager
def private_database(backend: BackendInfo, name: str) -> Iterator[str]:
    """A database of one test module's own that APP may use; dropped at the end with
    every table and function in it (other tests count what the shared one holds)."""
    with admin_connect(backend) as admin, admin.cursor() as cur:
        cur.execute(f"CREATE DATABASE IF NOT EXISTS {name}")
        cur.execute(f"GRANT ALL ON {name}.* TO '{APP.user}'@'%'")
    try:
        yield name
    finally:
        with admin_connect(backend) as admin, admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS {name}")
            cur.execute(f"REVOKE ALL ON {name}.* FROM '{APP.user}'@'%'")


@pytest.fixture(scope="session")
def redis_session() -> Iterator[RedisServer]:
    """One redis-server for the session (tests/support/redis_server.py); its data is
    flushed before each test by ``redis_server``."""
    server, directory = start_redis()
    try:
        yield server
    finally:
        server.stop()
        directory.cleanup()


@pytest.fixture
def redis_server(redis_session: RedisServer) -> RedisServer:
    """The session's redis-server, running and empty."""
    if redis_session.process is None:
        redis_session.start()  # a test stopped it
    redis_session.flush()
    return redis_session
