"""The HAProxy example (deploy/haproxy.cfg) for real: Debian's ``haproxy`` in front of two
replicas sharing one Redis, run from the example file with only its addresses replaced.

The mariadb CLI's Ctrl-C through HAProxy: the client opens a second connection to send
``KILL QUERY <id>``; with ``balance leastconn`` it lands on the other replica (the first
holds the client's session), which asks the owner through Redis and kills the query.
Needs ``haproxy`` (Debian package): skipped without it, except in CI (``CI=true``),
where ``./dev test`` installs it.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pymysql
import pytest

from proxy.replicas.kill_bridge import ReplicaPeers
from tests.conftest import APP, RunningProxy, start_proxy
from tests.integration.test_cli_client import CLIENT, interrupt_batch_sleep
from tests.support.backend import BackendInfo
from tests.support.redis_server import RedisServer, free_port

EXAMPLE = Path(__file__).resolve().parents[2] / "deploy" / "haproxy.cfg"
START_TIMEOUT = 10.0


def haproxy_binary() -> str:
    found = shutil.which("haproxy") or (
        "/usr/sbin/haproxy" if os.path.exists("/usr/sbin/haproxy") else None
    )
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI must run the HAProxy test: apt-get install haproxy")
        pytest.skip("haproxy is not installed (Debian package haproxy)")
    return found


def configured(port: int, first: RunningProxy, second: RunningProxy) -> str:
    """The example with the test's addresses in place of its own."""
    text = EXAMPLE.read_text(encoding="utf-8")
    for example, ours in [
        ("bind :6033", f"bind 127.0.0.1:{port}"),
        ("10.0.0.11:6033 check port 9104", f"127.0.0.1:{first.port} check port {ops(first)}"),
        ("10.0.0.12:6033 check port 9104", f"127.0.0.1:{second.port} check port {ops(second)}"),
    ]:
        assert text.count(example) == 1, f"the example no longer has {example!r}"
        text = text.replace(example, ours)
    return text


def ops(proxy: RunningProxy) -> int:
    """The replica's /readyz port (--metrics-listen)."""
    assert proxy.server is not None and proxy.server.ops.endpoint is not None
    return proxy.server.ops.endpoint.port


def accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


@pytest.fixture
def balanced(
    backend: BackendInfo, redis_session: RedisServer, tmp_path: Path
) -> Iterator[tuple[int, RunningProxy, RunningProxy]]:
    """HAProxy's port, and the two replicas behind it."""
    binary = haproxy_binary()
    if redis_session.process is None:
        redis_session.start()
    first = start_proxy(backend, ml_cache=redis_session.url, metrics_listen="127.0.0.1:0")
    second = start_proxy(backend, ml_cache=redis_session.url, metrics_listen="127.0.0.1:0")
    port = free_port()
    config = tmp_path / "haproxy.cfg"
    config.write_text(configured(port, first, second), encoding="utf-8")
    with (tmp_path / "haproxy.log").open("wb") as log:
        process = subprocess.Popen(
            [binary, "-db", "-f", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=log,
            stdin=subprocess.DEVNULL,
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not accepts(port):
            assert process.poll() is None, (tmp_path / "haproxy.log").read_text()
            assert time.monotonic() < deadline, "haproxy did not listen"
            time.sleep(0.05)
        yield port, first, second
    finally:
        process.terminate()
        process.wait(10)
        first.stop()
        second.stop()


def answered(proxy: RunningProxy) -> int:
    """KILL requests of other replicas this one answered."""
    assert proxy.server is not None and proxy.server.ctx is not None
    peers = proxy.server.ctx.peers
    assert isinstance(peers, ReplicaPeers)
    return peers.answered


@pytest.mark.skipif(CLIENT is None, reason="no mariadb/mysql command-line client")
def test_ctrl_c_in_the_mariadb_cli_through_haproxy_kills_the_query_on_the_other_replica(
    balanced: tuple[int, RunningProxy, RunningProxy], backend: BackendInfo, tmp_path: Path
) -> None:
    port, first, second = balanced
    before = answered(first) + answered(second)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "LANG": "C.UTF-8",
        "TERM": "dumb",
        "MYSQL_HISTFILE": "/dev/null",
    }
    interrupted, elapsed = interrupt_batch_sleep(env, port, backend, "through_haproxy")
    assert "Ctrl-C -- query killed." in interrupted.stdout, interrupted
    assert "ERROR 1317 (70100)" in interrupted.stderr
    assert elapsed < 10, "the client waited for the query instead of killing it"
    # The KILL went to the replica that does not hold the session, which asked the owner
    # twice: for the backend thread, then (the backend having killed the query) to stop
    # the session's ML statement if it runs one.
    assert answered(first) + answered(second) == before + 2


def test_haproxy_takes_a_replica_out_when_its_readyz_says_no(
    balanced: tuple[int, RunningProxy, RunningProxy], tmp_path: Path
) -> None:
    """The example's health check is each replica's /readyz: a replica starting its
    shutdown (503) is marked down, and new clients all reach the other one."""
    port, first, second = balanced
    assert first.server is not None and first.server.ops.readiness is not None
    first.server.ops.readiness.stopping = True  # what SIGTERM does first
    log = tmp_path / "haproxy.log"
    deadline = time.monotonic() + 15
    while "mlproxy-1 is DOWN" not in log.read_text(errors="replace"):
        assert time.monotonic() < deadline, log.read_text(errors="replace")
        time.sleep(0.2)
    clients = [
        pymysql.connect(host="127.0.0.1", port=port, user=APP.user, password=APP.password)
        for _ in range(4)
    ]
    try:
        assert second.server is not None and second.server.ctx is not None
        assert first.server.ctx is not None
        assert (len(first.server.ctx.sessions), len(second.server.ctx.sessions)) == (0, 4)
    finally:
        for client in clients:
            client.close()
