"""The caching_sha2_password fast path for returning clients, and its invalidation.

PyMySQL fetches the server's RSA key (``server_public_key``) only on the full path, so
its absence on a plaintext login shows the fast path was taken.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pymysql
import pytest

from tests.conftest import TEST_DB, RunningProxy, admin_connect, start_proxy
from tests.support.backend import BackendInfo

USER = "cached_user"


@pytest.fixture
def cache_proxy(backend: BackendInfo) -> Iterator[RunningProxy]:
    with admin_connect(backend) as admin, admin.cursor() as cur:
        cur.execute(f"DROP USER IF EXISTS '{USER}'@'%'")
        cur.execute(f"CREATE USER '{USER}'@'%' IDENTIFIED BY 'first-pw'")
        cur.execute(f"GRANT SELECT ON {TEST_DB}.* TO '{USER}'@'%'")
    proxy = start_proxy(backend)
    yield proxy
    proxy.stop()


def login(proxy: RunningProxy, password: str) -> pymysql.Connection[Any]:
    return pymysql.connect(
        host=proxy.host, port=proxy.port, user=USER, password=password, ssl_disabled=True
    )


def current_user(connection: pymysql.Connection[Any]) -> str:
    with connection.cursor() as cur:
        cur.execute("SELECT CURRENT_USER()")
        return str(cur.fetchone()[0])


def test_second_login_takes_the_fast_path(cache_proxy: RunningProxy) -> None:
    with login(cache_proxy, "first-pw") as first:
        assert first.server_public_key  # full path: the RSA key was fetched
    with login(cache_proxy, "first-pw") as second:
        assert not second.server_public_key  # fast path: no RSA exchange
        assert current_user(second) == f"{USER}@%"


def test_a_wrong_password_is_refused_after_caching(cache_proxy: RunningProxy) -> None:
    login(cache_proxy, "first-pw").close()
    with pytest.raises(pymysql.err.OperationalError) as caught:
        login(cache_proxy, "not-the-pw")
    assert caught.value.args[0] == 1045


def test_a_password_changed_on_the_backend_is_forgotten(
    cache_proxy: RunningProxy, backend: BackendInfo
) -> None:
    login(cache_proxy, "first-pw").close()
    with admin_connect(backend) as admin, admin.cursor() as cur:
        cur.execute(f"ALTER USER '{USER}'@'%' IDENTIFIED BY 'second-pw'")
    with pytest.raises(pymysql.err.OperationalError) as caught:
        login(cache_proxy, "first-pw")  # matches the cache, but the backend says no
    assert caught.value.args[0] == 1045
    with login(cache_proxy, "second-pw") as fresh:
        assert fresh.server_public_key  # the stale entry is gone: full path again
        assert current_user(fresh) == f"{USER}@%"
