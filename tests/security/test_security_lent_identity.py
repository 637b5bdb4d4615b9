"""The proxy's OS identity logs nobody in (proxy.auth.lent_identity): with the backend
reached over its unix socket, MariaDB's socket authentication would accept the account
named like the proxy's OS user with any password, since the peer it sees is the proxy.
The suite's MariaDB is set up like a fresh install: root@localhost by unix_socket (as the
OS user the suite runs as)."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pymysql
import pytest

from proxy.auth.lent_identity import os_user
from proxy.config import load_config
from tests.conftest import APP, TEST_DB, TEST_LOOP, RunningProxy
from tests.support.backend import BackendInfo


@pytest.fixture(scope="module")
def socket_proxy(backend: BackendInfo) -> Iterator[RunningProxy]:
    if backend.server is None:
        pytest.skip("needs the suite's own server (its unix socket)")
    url = f"mysql://localhost?unix_socket={backend.server.socket_path}"
    config = load_config(
        {"listen": "127.0.0.1:0", "backend": url, "shutdown_timeout": 5, "loop": TEST_LOOP},
        env={},
    )
    running = RunningProxy(config, backend).start()
    yield running
    running.stop()


def test_the_proxys_own_os_user_cannot_log_in_with_any_password(
    socket_proxy: RunningProxy, backend: BackendInfo, caplog: pytest.LogCaptureFixture
) -> None:
    assert backend.server is not None
    # the oracle: the account really is open to the proxy's OS identity over the socket
    direct = pymysql.connect(unix_socket=str(backend.server.socket_path), user=os_user())
    with direct.cursor() as cur:
        cur.execute("SELECT CURRENT_USER()")
        assert cur.fetchone()[0].startswith(f"{os_user()}@")
    direct.close()
    caplog.set_level(logging.WARNING, logger="mlproxy.proxy")
    for password in ("", "not-the-password"):
        with pytest.raises(pymysql.err.OperationalError) as refused:
            pymysql.connect(
                host=socket_proxy.host, port=socket_proxy.port, user=os_user(), password=password
            )
        assert refused.value.args[0] == 1045
    assert "socket authentication would accept any password" in caplog.text


def test_other_accounts_log_in_over_the_socket(socket_proxy: RunningProxy) -> None:
    with socket_proxy.connect(APP, database=TEST_DB) as conn, conn.cursor() as cur:
        cur.execute("SELECT CURRENT_USER()")
        assert cur.fetchone()[0].startswith(f"{APP.user}@")
