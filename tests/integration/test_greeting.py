"""A client that leaves before logging in does not count against the proxy's host on the
backend, and the greeting carries the backend's version.

The proxy greets clients from the latest backend greeting it has seen, and opens a
backend connection only once the client has said who it is (proxy.wire.greeting;
tests/security/test_security_prelogin.py has the floods). A client that leaves before logging in
must not leave an interrupted handshake on the backend (MySQL and MariaDB count those
toward max_connect_errors and then block the proxy's host for every client), nor a
failed login (an "Access denied" line in the backend's error log): it leaves nothing.
"""

from __future__ import annotations

import socket
from typing import Any

import pymysql

from tests.conftest import RunningProxy, admin_connect
from tests.support.backend import BackendInfo

CLIENTS = 5


def status(admin: pymysql.Connection[Any], name: str) -> int:
    with admin.cursor() as cur:
        cur.execute("SHOW GLOBAL STATUS LIKE %s", (name,))
        row = cur.fetchone()
    return int(row[1])


def leave_after_the_greeting(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        assert sock.recv(4)  # the greeting's header


def test_clients_leaving_before_login_leave_nothing_on_the_backend(
    proxy: RunningProxy, backend: BackendInfo
) -> None:
    """(Before issue 10 the proxy opened a backend connection per greeting and left it by
    a failed login: this test then checked Access_denied_errors grew by CLIENTS and
    Aborted_connects_preauth did not; now neither moves, nor does Connections.)"""
    with proxy.connect():
        pass  # the first login brings the alias poller its account (its connection is older)
    with admin_connect(backend) as admin:
        counters = ("Aborted_connects_preauth", "Access_denied_errors", "Connections")
        before = {name: status(admin, name) for name in counters}
        for _ in range(CLIENTS):
            leave_after_the_greeting(proxy.port)
        assert {name: status(admin, name) for name in counters} == before


def test_the_greeting_carries_the_backends_version(
    proxy: RunningProxy, backend: BackendInfo
) -> None:
    with admin_connect(backend) as admin, proxy.connect() as conn:
        assert conn.get_server_info() == admin.get_server_info() + "-mlproxy"
