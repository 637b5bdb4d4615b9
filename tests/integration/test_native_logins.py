"""mysql_native_password logins as a server does them (issue 11, item 4;
proxy/auth/native_accounts.py).

With a backend URL account that may read ``mysql.user``, a client logging in without TLS
as a mysql_native_password account is switched to that plugin and checked against the
account's hash; the proxy logs in to the backend with SHA1(password) and never sees the
password. Clients that cannot take caching_sha2_password's full path without TLS log in
as directly: mysql-connector (pure Python) sends the password in clear there (the proxy
refuses it), MariaDB Connector/J has no RSA key (its case runs in test_client_matrix.py).
The backend is the oracle: the same login made directly.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import mysql.connector
import pymysql
import pytest

from proxy.config import load_config
from tests.conftest import TEST_DB, TEST_LOOP, Account, RunningProxy, admin_connect
from tests.support.backend import BackendInfo

READER = Account("native_reader", "native-reader-pw")
UNPRIVILEGED = Account("native_unprivileged", "native-unprivileged-pw")


def proxy_with_url_account(backend: BackendInfo, account: Account) -> RunningProxy:
    url = f"mysql://{account.user}:{account.password}@{backend.host}:{backend.port}"
    settings = {"listen": "127.0.0.1:0", "backend": url, "shutdown_timeout": 5, "loop": TEST_LOOP}
    return RunningProxy(load_config(settings, env={}), backend).start()


@pytest.fixture(scope="module")
def url_accounts(backend: BackendInfo) -> Iterator[None]:
    with admin_connect(backend) as admin, admin.cursor() as cur:
        for account in (READER, UNPRIVILEGED):
            cur.execute(f"DROP USER IF EXISTS '{account.user}'@'%'")
            cur.execute(f"CREATE USER '{account.user}'@'%' IDENTIFIED BY '{account.password}'")
        cur.execute(f"GRANT SELECT ON mysql.user TO '{READER.user}'@'%'")
    yield
    with admin_connect(backend) as admin, admin.cursor() as cur:
        for account in (READER, UNPRIVILEGED):
            cur.execute(f"DROP USER IF EXISTS '{account.user}'@'%'")


@pytest.fixture(scope="module")
def reading_proxy(backend: BackendInfo, url_accounts: None) -> Iterator[RunningProxy]:
    running = proxy_with_url_account(backend, READER)
    yield running
    running.stop()


@pytest.fixture
def accounts(backend: BackendInfo) -> Iterator[Callable[..., Account]]:
    """New accounts for one test (``hosts`` rows, each with its own password)."""
    made: list[str] = []

    def create(password: str, hosts: tuple[tuple[str, str], ...] = ()) -> Account:
        name = f"native_{uuid.uuid4().hex[:10]}"
        with admin_connect(backend) as admin, admin.cursor() as cur:
            for host, host_password in (("%", password), *hosts):
                if host_password:
                    at = host.replace("%", "%%")
                    cur.execute(f"CREATE USER '{name}'@'{at}' IDENTIFIED BY %s", (host_password,))
                else:
                    cur.execute(f"CREATE USER '{name}'@'{host}'")
                cur.execute(f"GRANT ALL ON {TEST_DB}.* TO '{name}'@'{host}'")
        made.append(name)
        return Account(name, password)

    yield create
    with admin_connect(backend) as admin, admin.cursor() as cur:
        for name in made:
            cur.execute("SELECT Host FROM mysql.user WHERE User = %s", (name,))
            for (host,) in cur.fetchall():
                cur.execute(f"DROP USER '{name}'@'{host}'")


def plaintext_pymysql(port: int, account: Account) -> pymysql.Connection[Any]:
    return pymysql.connect(
        host="127.0.0.1",
        port=port,
        user=account.user,
        password=account.password,
        database=TEST_DB,
        ssl_disabled=True,
    )


def plaintext_connector(port: int, account: Account) -> Any:
    return mysql.connector.connect(
        host="127.0.0.1",
        port=port,
        user=account.user,
        password=account.password,
        database=TEST_DB,
        use_pure=True,
        ssl_disabled=True,
        connection_timeout=10,
    )


def current_user(conn: Any) -> str:
    cursor = conn.cursor()
    cursor.execute("SELECT CURRENT_USER()")
    (user,) = cursor.fetchone()
    cursor.close()
    return str(user)


def connector_refusal(port: int, account: Account) -> tuple[int, str, str]:
    with pytest.raises(mysql.connector.Error) as caught:
        plaintext_connector(port, account).close()
    return caught.value.errno, str(caught.value.sqlstate), str(caught.value.msg)


def test_connector_without_tls_logs_in_as_directly(
    reading_proxy: RunningProxy, backend: BackendInfo, accounts: Callable[..., Account]
) -> None:
    """mysql-connector answers caching_sha2_password's full path in clear without TLS,
    which the proxy must refuse; switched to the account's mysql_native_password, it logs
    in (before: 1045 "password could not be decrypted")."""
    account = accounts("connector-pw")
    with plaintext_connector(reading_proxy.port, account) as through:
        assert current_user(through) == f"{account.user}@%"
    with plaintext_connector(backend.port, account) as direct:
        assert current_user(direct) == f"{account.user}@%"


def test_a_first_plaintext_login_needs_no_rsa_key(
    reading_proxy: RunningProxy, accounts: Callable[..., Account]
) -> None:
    account = accounts("first-pw")
    with plaintext_pymysql(reading_proxy.port, account) as conn:
        assert conn.server_public_key is None  # no RSA exchange: the native switch
        assert current_user(conn) == f"{account.user}@%"


def test_a_wrong_password_gets_the_backends_own_refusal(
    reading_proxy: RunningProxy, backend: BackendInfo, accounts: Callable[..., Account]
) -> None:
    account = accounts("right-pw")
    wrong = Account(account.user, "wrong-pw")
    through = connector_refusal(reading_proxy.port, wrong)
    assert through == connector_refusal(backend.port, wrong)
    assert through[:2] == (1045, "28000")
    no_password = Account(account.user, "")
    assert connector_refusal(reading_proxy.port, no_password) == connector_refusal(
        backend.port, no_password
    )


def test_a_changed_password_is_read_again(
    reading_proxy: RunningProxy, backend: BackendInfo, accounts: Callable[..., Account]
) -> None:
    account = accounts("old-pw")
    plaintext_pymysql(reading_proxy.port, account).close()  # the hash is now known
    with admin_connect(backend) as admin, admin.cursor() as cur:
        cur.execute(f"ALTER USER '{account.user}'@'%' IDENTIFIED BY 'new-pw'")
    with pytest.raises(pymysql.err.OperationalError) as caught:
        plaintext_pymysql(reading_proxy.port, account)
    assert caught.value.args[0] == 1045
    renewed = Account(account.user, "new-pw")
    with plaintext_pymysql(reading_proxy.port, renewed) as conn:
        assert conn.server_public_key is None
        assert current_user(conn) == f"{account.user}@%"


def test_a_password_set_on_an_account_that_had_none_is_read_again(
    reading_proxy: RunningProxy, backend: BackendInfo, accounts: Callable[..., Account]
) -> None:
    """The hash known is "no password" (read moments ago); the client now answers with
    one: the proxy reads the hash again before refusing (MariaDB's main.set_password)."""
    account = accounts("")
    plaintext_pymysql(reading_proxy.port, account).close()  # "no password" is now known
    with admin_connect(backend) as admin, admin.cursor() as cur:
        cur.execute(f"ALTER USER '{account.user}'@'%' IDENTIFIED BY 'now-one'")
    with plaintext_pymysql(reading_proxy.port, Account(account.user, "now-one")) as conn:
        assert current_user(conn) == f"{account.user}@%"
    with admin_connect(backend) as admin, admin.cursor() as cur:
        cur.execute(f"ALTER USER '{account.user}'@'%' IDENTIFIED BY ''")
    with plaintext_pymysql(reading_proxy.port, account) as conn:  # and back to none
        assert current_user(conn) == f"{account.user}@%"


def test_an_account_without_a_password(
    reading_proxy: RunningProxy, backend: BackendInfo, accounts: Callable[..., Account]
) -> None:
    account = accounts("")
    with plaintext_pymysql(reading_proxy.port, account) as conn:
        assert current_user(conn) == f"{account.user}@%"
    wrong = Account(account.user, "not-empty")
    assert connector_refusal(reading_proxy.port, wrong) == connector_refusal(backend.port, wrong)


def test_host_rows_that_disagree_fall_back_to_caching_sha2(
    reading_proxy: RunningProxy, backend: BackendInfo, accounts: Callable[..., Account]
) -> None:
    """Which row the backend picks depends on the client's host: the proxy does not guess,
    it takes the password itself (caching_sha2_password's full path, the RSA key)."""
    account = accounts("any-host-pw", hosts=(("127.0.0.1", "local-pw"),))
    local = Account(account.user, "local-pw")
    with plaintext_pymysql(reading_proxy.port, local) as conn:
        assert conn.server_public_key is not None
        assert current_user(conn) == current_user(plaintext_pymysql(backend.port, local))


def test_without_the_right_to_read_hashes_logins_fall_back(
    backend: BackendInfo,
    url_accounts: None,
    accounts: Callable[..., Account],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="mlproxy.proxy")
    running = proxy_with_url_account(backend, UNPRIVILEGED)
    try:
        account = accounts("fallback-pw")
        with plaintext_pymysql(running.port, account) as conn:
            assert conn.server_public_key is not None  # caching_sha2_password's full path
            assert current_user(conn) == f"{account.user}@%"
    finally:
        running.stop()
    assert "cannot read account hashes" in caplog.text


def test_change_user_to_a_native_account_without_tls(
    reading_proxy: RunningProxy, accounts: Callable[..., Account]
) -> None:
    first, second = accounts("first-pw"), accounts("second-pw")
    with plaintext_connector(reading_proxy.port, first) as conn:
        conn.cmd_change_user(second.user, second.password, TEST_DB)
        assert current_user(conn) == f"{second.user}@%"


def test_hashes_and_their_stages_never_reach_the_log(
    reading_proxy: RunningProxy,
    backend: BackendInfo,
    accounts: Callable[..., Account],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    account = accounts("secret-pw")
    with admin_connect(backend) as admin, admin.cursor() as cur:
        cur.execute("SELECT authentication_string FROM mysql.user WHERE User = %s", (account.user,))
        (stored,) = cur.fetchone()
    plaintext_pymysql(reading_proxy.port, account).close()
    with pytest.raises(pymysql.err.OperationalError):
        plaintext_pymysql(reading_proxy.port, Account(account.user, "wrong"))
    stage1 = hashlib.sha1(b"secret-pw").hexdigest()
    for secret in (stored.lstrip("*").lower(), stage1, "secret-pw"):
        assert secret not in caplog.text.lower()
