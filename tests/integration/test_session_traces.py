"""The statements the proxy runs on a client's own session at its login leave no trace
the client can read (issue 11: MariaDB's empty_table, grant_cache_no_prot,
nested_profiling and memory_used tests differed through the proxy).

At a login the proxy reads the alias names the account can see (proxy.ml.registry
``learn``). When its poller's account sees every routine, that read is skipped; when it
runs, it returns a row (an empty result counts in Empty_queries) and stays out of the
query cache's counters.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pymysql
import pytest

from proxy.config import load_config
from tests.conftest import TEST_DB, TEST_LOOP, RunningProxy, admin_connect, wait_until
from tests.support.backend import BackendInfo


def session_status(conn: pymysql.Connection[Any], name: str) -> str:
    with conn.cursor() as cur:
        cur.execute("SHOW SESSION STATUS LIKE %s", (name,))
        return str(cur.fetchone()[1])


@pytest.fixture(scope="module")
def admin_url_proxy(backend: BackendInfo) -> Iterator[RunningProxy]:
    """A proxy whose backend URL carries the admin account: its poller sees every routine."""
    url = f"mysql://{backend.admin_user}:{backend.admin_password}@{backend.host}:{backend.port}"
    settings = {"listen": "127.0.0.1:0", "backend": url, "shutdown_timeout": 5, "loop": TEST_LOOP}
    proxy = RunningProxy(load_config(settings, env={}), backend).start()
    yield proxy
    proxy.stop()


def test_a_new_session_has_no_empty_query_of_the_proxys(
    proxy: RunningProxy, backend: BackendInfo
) -> None:
    with admin_connect(backend, database=TEST_DB) as direct:
        expected = session_status(direct, "Empty_queries")
    with proxy.connect() as conn:
        assert session_status(conn, "Empty_queries") == expected == "0"


def test_with_a_poller_that_sees_every_routine_a_login_runs_nothing(
    admin_url_proxy: RunningProxy,
) -> None:
    server = admin_url_proxy.server
    assert server is not None and server.ctx is not None
    assert wait_until(lambda: server.ctx is not None and server.ctx.registry.sees_all)
    with admin_url_proxy.connect() as conn:
        assert session_status(conn, "Com_select") == "0"
