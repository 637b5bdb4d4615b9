"""Each client is greeted with a fresh backend greeting, and an abandoned login does not
count against the proxy's host on the backend.

The proxy opens its backend connection before greeting the client (to pass on the
backend's current version and status flags). A client that leaves before logging in
must not leave that connection as an interrupted handshake: MySQL and MariaDB count those
toward max_connect_errors and then block the proxy's host for every client.
"""

from __future__ import annotations

import socket
from typing import Any

import pymysql

from tests.backend import BackendInfo
from tests.conftest import RunningProxy, admin_connect, wait_until

CLIENTS = 5


def status(admin: pymysql.Connection[Any], name: str) -> int:
    with admin.cursor() as cur:
        cur.execute("SHOW GLOBAL STATUS LIKE %s", (name,))
        row = cur.fetchone()
    return int(row[1])


def leave_after_the_greeting(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        assert sock.recv(4)  # the greeting's header: the proxy has its backend connection


def test_clients_leaving_before_login_are_failed_logins_not_aborted_handshakes(
    proxy: RunningProxy, backend: BackendInfo
) -> None:
    with admin_connect(backend) as admin:
        aborted = status(admin, "Aborted_connects_preauth")
        denied = status(admin, "Access_denied_errors")
        for _ in range(CLIENTS):
            leave_after_the_greeting(proxy.port)
        assert wait_until(lambda: status(admin, "Access_denied_errors") >= denied + CLIENTS)
        assert status(admin, "Aborted_connects_preauth") == aborted


def test_the_greeting_carries_the_backends_version(
    proxy: RunningProxy, backend: BackendInfo
) -> None:
    with admin_connect(backend) as admin, proxy.connect() as conn:
        assert conn.get_server_info() == admin.get_server_info() + "-mlproxy"
